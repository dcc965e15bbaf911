// Antialiased separable resampling: torch.nn.functional.interpolate(..., antialias=True) as
// torchvision.transforms.functional.resize calls it on float tensors, which is the algorithm
// of PIL's ImagingResample (aten/src/ATen/native/cpu/UpSampleKernel.cpp, `_compute_weights_aa`
// and `separable_upsample_generic_Nd_kernel_impl`).
//
// Per axis, output index i has the centre `scale * (i + 0.5)` in input coordinates (scale =
// in / out), a filter support of `r * max(scale, 1)` (r = 1 bilinear triangle, 2 bicubic with
// a = -0.5) and taps at the input pixels within it, weights normalised to sum to 1 (which also
// handles the borders). Downsampling widens the filter (the antialiasing); upsampling keeps it,
// where bilinear equals plain align_corners=False interpolation and bicubic does not
// (torch's plain bicubic uses a = -0.75 and clamps indices instead of renormalising).
// The weight tables reproduce torch's float32 arithmetic step by step, and the passes run in
// torch's order — width first, then height, an axis whose size is unchanged skipped — with
// the same float accumulation order, so results agree with torch to a few float ulps
// (tolerance and measured error: transforms.cpp's header).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "data/transforms.h"

namespace tether::data {

namespace {

// PIL's filters, written as torch writes them (double arithmetic on a float argument).
float triangle_filter(float x) {
  if (x < 0.0f) x = -x;
  if (x < 1.0f) return static_cast<float>(1.0 - x);
  return 0.0f;
}

float cubic_filter(float x) {  // Keys' cubic convolution with a = -0.5 (PIL's, not OpenCV's -0.75)
  constexpr double a = -0.5;
  if (x < 0.0f) x = -x;
  if (x < 1.0f) return static_cast<float>(((a + 2.0) * x - (a + 3.0)) * x * x + 1);
  if (x < 2.0f) return static_cast<float>((((x - 5) * x + 8) * x - 4) * a);  // float, then * a
  return 0.0f;
}

// For each output index: the first input index, the number of taps and their weights
// (row-major, `taps` per output, unused ones zero). Built once per resize call.
struct AxisTable {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<float> weights;
  const float* weights_of(int i) const { return weights.data() + static_cast<size_t>(i) * taps; }
};

AxisTable axis_table(int in_size, int out_size, Interpolation interp) {
  const bool cubic = interp == Interpolation::bicubic;
  const double radius = cubic ? 2.0 : 1.0;  // torch: interp_size * 0.5
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float support = static_cast<float>(scale >= 1.0f ? radius * scale : radius);
  const float invscale = scale >= 1.0f ? static_cast<float>(1.0 / scale) : 1.0f;

  AxisTable t;
  t.taps = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.weights.assign(static_cast<size_t>(out_size) * t.taps, 0.0f);
  for (int i = 0; i < out_size; ++i) {
    const float center = static_cast<float>(scale * (i + 0.5));
    // Truncation toward zero, as torch's static_cast<int64_t> (the max() makes it a floor).
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = std::min(xmax - xmin, t.taps);
    float* w = t.weights.data() + static_cast<size_t>(i) * t.taps;
    float total = 0.0f;
    for (int j = 0; j < n; ++j) {
      const float x = static_cast<float>((static_cast<float>(j + xmin) - center + 0.5) * invscale);
      w[j] = cubic ? cubic_filter(x) : triangle_filter(x);
      total += w[j];
    }
    if (total != 0.0f)
      for (int j = 0; j < n; ++j) w[j] /= total;
    t.first[i] = xmin;
    t.count[i] = n;
  }
  return t;
}

// Width pass: every row of every plane, each output pixel a dot product with its taps.
Image resample_width(const Image& src, int out_w, Interpolation interp) {
  const AxisTable t = axis_table(src.width, out_w, interp);
  Image dst(src.channels, src.height, out_w);
  const int rows = src.channels * src.height;
  for (int r = 0; r < rows; ++r) {
    const float* in = src.pixels.data() + static_cast<size_t>(r) * src.width;
    float* out = dst.pixels.data() + static_cast<size_t>(r) * out_w;
    for (int x = 0; x < out_w; ++x) {
      const float* p = in + t.first[x];
      const float* w = t.weights_of(x);
      float acc = p[0] * w[0];
      for (int k = 1; k < t.count[x]; ++k) acc += p[k] * w[k];
      out[x] = acc;
    }
  }
  return dst;
}

// Height pass: each output row is a weighted sum of whole input rows (contiguous, vectorisable),
// accumulated in the same order as the width pass.
Image resample_height(const Image& src, int out_h, Interpolation interp) {
  const AxisTable t = axis_table(src.height, out_h, interp);
  const int w = src.width;
  Image dst(src.channels, out_h, w);
  for (int c = 0; c < src.channels; ++c) {
    const float* in = src.plane(c);
    float* out_plane = dst.plane(c);
    for (int y = 0; y < out_h; ++y) {
      float* out = out_plane + static_cast<size_t>(y) * w;
      const float* wt = t.weights_of(y);
      const float* row = in + static_cast<size_t>(t.first[y]) * w;
      for (int x = 0; x < w; ++x) out[x] = row[x] * wt[0];
      for (int k = 1; k < t.count[y]; ++k) {
        const float* rk = row + static_cast<size_t>(k) * w;
        const float wk = wt[k];
        for (int x = 0; x < w; ++x) out[x] += rk[x] * wk;
      }
    }
  }
  return dst;
}

// torchvision's _compute_resized_output_size for size = [s]: the shorter side becomes s, the
// longer int(s * long / short) (truncated, in double as Python computes it).
int scaled_side(int size, int side, int reference) {
  return std::max(1, static_cast<int>(static_cast<double>(size) * side / reference));
}

}  // namespace

Interpolation parse_interpolation(const std::string& name) {
  if (name == "bilinear") return Interpolation::bilinear;
  if (name == "bicubic") return Interpolation::bicubic;
  TETHER_FAIL("unknown interpolation '", name, "' (expected bilinear or bicubic)");
}

Image resize(const Image& img, int height, int width, Interpolation interp) {
  TETHER_CHECK(height > 0 && width > 0, "resize: size must be positive, got ", height, "x", width);
  TETHER_CHECK(!img.empty(), "resize: empty image");
  if (height == img.height && width == img.width) return img;
  if (width == img.width) return resample_height(img, height, interp);
  Image tmp = resample_width(img, width, interp);
  return height == img.height ? tmp : resample_height(tmp, height, interp);
}

Image resize_shorter(const Image& img, int size, Interpolation interp) {
  TETHER_CHECK(size > 0, "resize_shorter: size must be positive, got ", size);
  if (img.width <= img.height) return resize(img, scaled_side(size, img.height, img.width), size, interp);
  return resize(img, size, scaled_side(size, img.width, img.height), interp);
}

Image resize_pad(const Image& img, int size, Interpolation interp) {
  TETHER_CHECK(size > 0, "resize_pad: size must be positive, got ", size);
  // The longer side becomes `size`, the shorter one int(size * short / long) (the same
  // truncation as resize_shorter); then zero padding, the odd pixel after the image.
  const bool tall = img.height >= img.width;
  const int h = tall ? size : scaled_side(size, img.height, img.width);
  const int w = tall ? scaled_side(size, img.width, img.height) : size;
  const Image r = resize(img, h, w, interp);
  return crop(r, -((size - h) / 2), -((size - w) / 2), size, size);
}

}  // namespace tether::data
