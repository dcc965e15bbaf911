// data/transforms against torchvision 0.14 (tests/parity/ref_transforms.py): every case the
// script lists in its "cases" metadata is recomputed here and compared by max |difference|.
// Tolerances (the measured maxima are stated in data/transforms.cpp's header):
//   crop, center_crop, hflip, ten_crop: exact; normalize: 1e-7;
//   resize, resize_shorter, resize_pad (antialiased bilinear/bicubic): 1e-5;
//   gaussian_blur, adjust_*: 1e-6;
//   PIL's uint8 bilinear resize: 2/255 (PIL rounds to 1/255 steps; measured 0.0039, just under 1/255).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/transforms.h"
#include "tests/parity/parity_util.h"

using namespace tether;
using namespace tether::data;

namespace {

Image to_image(const Tensor& t) {
  REQUIRE(t.dim() == 3);
  Image img(static_cast<int>(t.size(0)), static_cast<int>(t.size(1)), static_cast<int>(t.size(2)));
  img.pixels = t.to_vector<float>();
  return img;
}

// Views stacked as the script stacks them: [views, C, H, W] (a single image: [C, H, W]).
Tensor to_tensor(const std::vector<Image>& views) {
  REQUIRE(!views.empty());
  const Image& v0 = views[0];
  std::vector<float> values;
  for (const Image& v : views) values.insert(values.end(), v.pixels.begin(), v.pixels.end());
  if (views.size() == 1) return Tensor::from_vector(values, {v0.channels, v0.height, v0.width});
  return Tensor::from_vector(values, {static_cast<int64_t>(views.size()), v0.channels, v0.height, v0.width});
}

Interpolation interp_arg(const nlohmann::json& args, size_t i) {
  return args.at(i).get<double>() != 0 ? Interpolation::bicubic : Interpolation::bilinear;
}

// Recomputes one case with tether.
std::vector<Image> compute(const std::string& op, const Image& in, const nlohmann::json& a) {
  auto i = [&a](size_t k) { return static_cast<int>(a.at(k).get<double>()); };
  auto f = [&a](size_t k) { return static_cast<float>(a.at(k).get<double>()); };
  if (op == "resize") return {resize(in, i(0), i(1), interp_arg(a, 2))};
  if (op == "pil_resize") return {resize(in, i(0), i(1), interp_arg(a, 2))};
  if (op == "resize_shorter") return {resize_shorter(in, i(0), interp_arg(a, 1))};
  if (op == "resize_pad") return {resize_pad(in, i(0), interp_arg(a, 1))};
  if (op == "center_crop") return {center_crop(in, i(0), i(1))};
  if (op == "crop") return {crop(in, i(0), i(1), i(2), i(3))};
  if (op == "hflip") return {hflip(in)};
  if (op == "ten_crop") return ten_crop(in, i(0));
  if (op == "gaussian_blur") return {gaussian_blur(in, i(0), f(1))};
  if (op == "adjust_brightness") return {adjust_brightness(in, f(0))};
  if (op == "adjust_contrast") return {adjust_contrast(in, f(0))};
  if (op == "adjust_saturation") return {adjust_saturation(in, f(0))};
  if (op == "normalize") {
    Image out = in;
    normalize(out, {f(0), f(1), f(2)}, {f(3), f(4), f(5)});
    return {out};
  }
  FAIL("no C++ counterpart for reference op '" << op << "'");
  return {};
}

double tolerance(const std::string& op) {
  static const std::map<std::string, double> tol{
      {"crop", 0},          {"center_crop", 0},       {"hflip", 0},          {"ten_crop", 0},
      {"normalize", 1e-7},  {"resize", 1e-5},         {"resize_shorter", 1e-5}, {"resize_pad", 1e-5},
      {"gaussian_blur", 1e-6}, {"adjust_brightness", 1e-6}, {"adjust_contrast", 1e-6},
      {"adjust_saturation", 1e-6}, {"pil_resize", 2.0 / 255 + 1e-6}};
  return tol.at(op);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  double worst = 0;
  for (size_t k = 0; k < x.size(); ++k) {
    const double d = std::abs(static_cast<double>(x[k]) - y[k]);
    if (!(d <= worst)) worst = std::isnan(d) ? INFINITY : d;
  }
  return worst;
}

}  // namespace

TEST_SUITE("data") {
  TEST_CASE("transforms match torchvision (and PIL within its uint8 rounding)") {
    auto ref = parity::reference("ref_transforms.py");
    if (!ref) return;
    const auto cases = nlohmann::json::parse(ref->metadata().at("cases"));
    std::map<std::string, double> worst;  // per op, reported below
    for (const auto& c : cases) {
      const std::string name = c.at("name"), op = c.at("op"), src = c.at("src");
      CAPTURE(name);
      const Tensor& want = ref->at(name + ".out");
      const Tensor got = to_tensor(compute(op, to_image(ref->at("img." + src)), c.at("args")));
      REQUIRE(got.shape() == want.shape());
      const double diff = max_abs_diff(got, want);
      worst[op] = std::max(worst[op], diff);
      INFO(name << ": max |tether - reference| = " << diff << ", tolerance " << tolerance(op));
      CHECK(diff <= tolerance(op));
    }
    for (const auto& [op, diff] : worst) MESSAGE(op << ": max |tether - reference| = " << diff);
    // Every family the script is meant to cover is there (an empty case list would pass above).
    for (const char* op : {"resize", "resize_shorter", "resize_pad", "center_crop", "crop", "hflip", "ten_crop",
                           "gaussian_blur", "adjust_brightness", "adjust_contrast", "adjust_saturation", "normalize",
                           "pil_resize"})
      CHECK_MESSAGE(worst.count(op) == 1, "no reference case for " << op);
  }
}
