// Matrix-product planning shared by the back ends (see core/matmul_plan.h).
#include "core/matmul_plan.h"

#include <utility>
#include <vector>

#include "core/shapes.h"

namespace tether {

MatmulPlan plan_matmul(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  MatmulPlan p;
  const bool a_vec = a_in.dim() == 1, b_vec = b_in.dim() == 1;
  p.a = a_vec ? ops::unsqueeze(a_in, 0) : a_in;
  p.b = b_vec ? ops::unsqueeze(b_in, 1) : b_in;
  p.ta = a_vec ? false : ta;
  p.tb = b_vec ? false : tb;
  const Tensor &a = p.a, &b = p.b;
  p.M = p.ta ? a.size(-1) : a.size(-2);
  p.K = p.ta ? a.size(-2) : a.size(-1);
  const int64_t Kb = p.tb ? b.size(-1) : b.size(-2);
  p.N = p.tb ? b.size(-2) : b.size(-1);
  TETHER_CHECK(p.K == Kb, "matmul: inner dimensions differ: ", shape_str(a_in.shape()), (p.ta ? "^T" : ""), " x ",
               shape_str(b_in.shape()), (p.tb ? "^T" : ""));
  p.batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2), Shape(b.shape().begin(), b.shape().end() - 2));
  p.count = shape_numel(p.batch);
  p.out_shape = p.batch;
  p.out_shape.push_back(p.M);
  p.out_shape.push_back(p.N);
  p.final_shape = p.batch;
  if (!a_vec) p.final_shape.push_back(p.M);
  if (!b_vec) p.final_shape.push_back(p.N);
  // Operands whose matrices are not row- or column-major (no unit stride, overlapping rows)
  // are copied once.
  auto needs_copy = [](const Tensor& t) {
    Mat<char> m;
    return !as_mat<char>(nullptr, t.size(-2), t.size(-1), t.stride(-2), t.stride(-1), m);
  };
  if (needs_copy(p.a)) p.a = ops::contiguous(p.a);
  if (needs_copy(p.b)) p.b = ops::contiguous(p.b);
  return p;
}

Shape batch_offsets(const Tensor& t, const Shape& batch) {
  const int nb = static_cast<int>(batch.size());
  const int lead = nb - (t.dim() - 2);
  Shape strides(nb, 0);
  for (int d = 0; d < t.dim() - 2; ++d)
    if (t.size(d) != 1) strides[d + lead] = t.stride(d);
  const int64_t count = shape_numel(batch);
  Shape off(count, 0);
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i, o = 0;
    for (int d = nb - 1; d >= 0; --d) {
      o += (rem % batch[d]) * strides[d];
      rem /= batch[d];
    }
    off[i] = o;
  }
  return off;
}

bool fold_batch_into_rows(const Tensor& t, const Shape& batch, int64_t& ld) {
  const int lead = static_cast<int>(batch.size()) - (t.dim() - 2);
  std::vector<std::pair<int64_t, int64_t>> dims;  // (size, stride), outermost first, size > 1
  for (size_t d = 0; d < batch.size(); ++d) {
    if (batch[d] == 1) continue;
    const int td = static_cast<int>(d) - lead;
    if (td < 0 || t.size(td) != batch[d]) return false;  // broadcast along this dim
    dims.push_back({batch[d], t.stride(td)});
  }
  if (t.size(-2) != 1) dims.push_back({t.size(-2), t.stride(-2)});
  for (size_t i = 0; i + 1 < dims.size(); ++i)
    if (dims[i].second != dims[i + 1].first * dims[i + 1].second) return false;
  ld = dims.empty() ? t.size(-1) : dims.back().second;
  // Rows closer than a row's length overlap (a batch dim broadcast with stride 0 to [B, 1, K]
  // has ld 0): not one matrix, so the caller takes the batched path.
  return ld >= t.size(-1);
}

}  // namespace tether
