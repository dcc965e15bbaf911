// Per-layer distance diagnostics (regularizers/diagnostics.h). Measured with the projections'
// own norms (projection.cpp), so the file shows exactly what the constraint saw.
#include "regularizers/diagnostics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace tether::reg {
namespace {

LayerDistance measure(const std::string& name, const Tensor& param, const Tensor& center, double radius,
                      const std::string& project) {
  const Tensor w = param.detach();
  LayerDistance d;
  d.name = name;
  d.set = center.defined() ? "S" : "head";
  d.numel = w.numel();
  const std::vector<double> row_norms = row_l1_norms(w, center);
  d.rows = static_cast<int64_t>(row_norms.size());
  d.frobenius = l2_ratio(w, center, 1.0);
  d.mars = row_norms.empty() ? 0.0 : *std::max_element(row_norms.begin(), row_norms.end());
  d.reference = center.defined() ? l2_ratio(center, Tensor(), 1.0) : 0.0;
  d.radius = project == "none" ? std::numeric_limits<double>::infinity() : radius;
  if (std::isfinite(d.radius)) {
    d.ratio = (project == "l2-pgm" ? d.frobenius : d.mars) / d.radius;
    d.active = d.ratio >= 1 - kActiveTolerance;
    if (project == "mars-pgm")
      d.active_rows = std::count_if(row_norms.begin(), row_norms.end(),
                                    [&](double n) { return n >= d.radius * (1 - kActiveTolerance); });
  }
  return d;
}

}  // namespace

std::vector<LayerDistance> layer_distances(const ParamSets& sets, const ProjectionOptions& projection) {
  std::vector<LayerDistance> out;
  for (const auto& [name, w] : sets.inherited)
    out.push_back(measure(name, w, sets.w0.at(name), projection.gamma, projection.project));
  for (const auto& [name, v] : sets.head) out.push_back(measure(name, v, Tensor(), projection.gamma_head, projection.project));
  return out;
}

const char* diagnostics_csv_header() {
  return "step,epoch,layer,set,numel,rows,frobenius,mars,reference,radius,ratio,active,active_rows";
}

std::string diagnostics_csv_row(int64_t step, int64_t epoch, const LayerDistance& d) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "%lld,%lld,%s,%s,%lld,%lld,%.9g,%.9g,%.9g,%.17g,%.9g,%d,%lld", static_cast<long long>(step),
                static_cast<long long>(epoch), d.name.c_str(), d.set.c_str(), static_cast<long long>(d.numel),
                static_cast<long long>(d.rows), d.frobenius, d.mars, d.reference, d.radius, d.ratio, d.active ? 1 : 0,
                static_cast<long long>(d.active_rows));
  return buf;
}

}  // namespace tether::reg
