// Image transforms (data/transforms.h): crops, flips, blur, colour, normalisation, the random
// transforms and the protocol pipelines. The resampling kernels are in data/resize.cpp.
//
// Agreement with torchvision 0.14 transforms.functional on float tensors (Debian's; v2 computes
// the same), measured by tests/data/test_transforms_parity.cpp (max |difference| on [0, 1] images):
//   crop, center_crop (zero padding included), hflip, ten_crop    exact (bit-identical)
//   normalize                                                     exact (the same float ops)
//   resize / resize_shorter / resize_pad, bilinear and bicubic    1.8e-7 (test tolerance 1e-5)
//     (vs torch's plain, non-antialiased bilinear when upsampling: 8.3e-7)
//   gaussian_blur                                                 5.4e-7 (test tolerance 1e-6)
//   adjust_brightness / contrast / saturation                     1.2e-7 (test tolerance 1e-6)
// Against PIL (Image.resize on uint8, which rounds its result to 1/255 steps), bilinear resize
// of the uint8 image / 255 differs by at most 0.0039 (just under 1/255); the stated tolerance
// for PIL is 2/255. (PIL's bicubic also rounds and clips its intermediate horizontal pass to
// uint8, so on images with overshoot it differs by more: ~0.055 measured on uniform noise.)
//
// Random transforms draw from the Generator they are given, in a fixed order (below, per
// class), so a sample's augmentation depends only on that generator's state. None of these
// kernels is multi-threaded: the loader runs samples in parallel.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iomanip>
#include <sstream>

namespace tether::data {

// ---- deterministic functions ------------------------------------------------------------

Image crop(const Image& img, int top, int left, int height, int width) {
  TETHER_CHECK(height > 0 && width > 0, "crop: size must be positive, got ", height, "x", width);
  Image out(img.channels, height, width);  // zeros where the region leaves the image
  const int y0 = std::max(top, 0), y1 = std::min(top + height, img.height);
  const int x0 = std::max(left, 0), x1 = std::min(left + width, img.width);
  if (y0 >= y1 || x0 >= x1) return out;
  for (int c = 0; c < img.channels; ++c)
    for (int y = y0; y < y1; ++y)
      std::memcpy(&out.at(c, y - top, x0 - left), img.plane(c) + static_cast<size_t>(y) * img.width + x0,
                  sizeof(float) * (x1 - x0));
  return out;
}

namespace {
// Python's round(): half to even (the default rounding mode of nearbyint).
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

// torchvision center_crop's offset along one axis: round((size - crop) / 2) inside the image;
// when the crop is larger, the image is zero-padded by (crop - size) // 2 before it.
int center_offset(int size, int crop_size) {
  if (crop_size > size) return -((crop_size - size) / 2);
  return round_half_even((size - crop_size) / 2.0);
}
}  // namespace

Image center_crop(const Image& img, int height, int width) {
  TETHER_CHECK(height > 0 && width > 0, "center_crop: size must be positive, got ", height, "x", width);
  return crop(img, center_offset(img.height, height), center_offset(img.width, width), height, width);
}

Image hflip(const Image& img) {
  Image out(img.channels, img.height, img.width);
  const int rows = img.channels * img.height;
  for (int r = 0; r < rows; ++r) {
    const float* in = img.pixels.data() + static_cast<size_t>(r) * img.width;
    std::reverse_copy(in, in + img.width, out.pixels.data() + static_cast<size_t>(r) * img.width);
  }
  return out;
}

std::vector<Image> ten_crop(const Image& img, int size) {
  TETHER_CHECK(size > 0, "ten_crop: size must be positive, got ", size);
  TETHER_CHECK(size <= img.height && size <= img.width, "ten_crop: crop size ", size, " is larger than the image (",
               img.height, "x", img.width, ")");
  // torchvision five_crop: top-left, top-right, bottom-left, bottom-right, centre.
  auto five = [size](const Image& im, std::vector<Image>& out) {
    const int bottom = im.height - size, right = im.width - size;
    out.push_back(crop(im, 0, 0, size, size));
    out.push_back(crop(im, 0, right, size, size));
    out.push_back(crop(im, bottom, 0, size, size));
    out.push_back(crop(im, bottom, right, size, size));
    out.push_back(center_crop(im, size, size));
  };
  std::vector<Image> views;
  views.reserve(10);
  five(img, views);
  five(hflip(img), views);
  return views;
}

namespace {
// torchvision _get_gaussian_kernel1d in float32: exp(-0.5 (x / sigma)^2) at
// x = -(k-1)/2 .. (k-1)/2 (integers: linspace is exact there), divided by its sum.
std::vector<float> gaussian_kernel(int size, float sigma) {
  std::vector<float> k(size);
  float sum = 0.0f;
  for (int i = 0; i < size; ++i) {
    const float t = static_cast<float>(i - size / 2) / sigma;
    k[i] = std::exp(-0.5f * (t * t));
    sum += k[i];
  }
  for (float& v : k) v /= sum;
  return k;
}

// torch.nn.functional.pad(mode="reflect"): the edge pixel is not repeated (-1 -> 1). Indices
// further out keep reflecting (torch refuses padding >= size; small images still work here).
int reflect_index(int i, int n) {
  if (n == 1) return 0;
  const int period = 2 * (n - 1);
  i = std::abs(i) % period;
  return i < n ? i : period - i;
}
}  // namespace

Image gaussian_blur(const Image& img, int kernel_size, float sigma) {
  TETHER_CHECK(kernel_size > 0 && kernel_size % 2 == 1, "gaussian_blur: kernel_size must be odd and positive, got ",
               kernel_size);
  TETHER_CHECK(sigma > 0, "gaussian_blur: sigma must be positive, got ", sigma);
  // torchvision convolves with the outer product of the 1-D kernel; separable passes give the
  // same sums in a different float order (rows first, then columns).
  const std::vector<float> k = gaussian_kernel(kernel_size, sigma);
  const int r = kernel_size / 2, h = img.height, w = img.width;
  Image tmp(img.channels, h, w), out(img.channels, h, w);

  std::vector<float> padded(static_cast<size_t>(w) + 2 * r);  // one row with reflected borders
  for (int row = 0; row < img.channels * h; ++row) {
    const float* in = img.pixels.data() + static_cast<size_t>(row) * w;
    for (int x = -r; x < w + r; ++x) padded[x + r] = in[reflect_index(x, w)];
    float* o = tmp.pixels.data() + static_cast<size_t>(row) * w;
    for (int x = 0; x < w; ++x) {
      float acc = 0.0f;
      for (int j = 0; j < kernel_size; ++j) acc += k[j] * padded[x + j];
      o[x] = acc;
    }
  }
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < h; ++y) {
      float* o = &out.at(c, y, 0);
      for (int j = 0; j < kernel_size; ++j) {
        const float* src = tmp.plane(c) + static_cast<size_t>(reflect_index(y - r + j, h)) * w;
        for (int x = 0; x < w; ++x) o[x] += k[j] * src[x];
      }
    }
  return out;
}

namespace {
// torchvision _blend(img, other, ratio) = clamp(ratio * img + (1 - ratio) * other, 0, 1) in
// float32; `other(i)` gives the blended-with value of pixel i of a plane.
template <typename Other>
Image blend(const Image& img, float ratio, Other other) {
  Image out(img.channels, img.height, img.width);
  const float keep = ratio, mix = static_cast<float>(1.0 - ratio);
  const size_t plane = static_cast<size_t>(img.height) * img.width;
  for (int c = 0; c < img.channels; ++c) {
    const float* in = img.plane(c);
    float* o = out.plane(c);
    for (size_t i = 0; i < plane; ++i) o[i] = std::clamp(keep * in[i] + mix * other(i), 0.0f, 1.0f);
  }
  return out;
}

// torchvision rgb_to_grayscale: 0.2989 R + 0.587 G + 0.114 B (float32, left to right).
std::vector<float> grayscale(const Image& img) {
  TETHER_CHECK(img.channels == 3, "grayscale needs 3 channels, got ", img.channels);
  const size_t n = static_cast<size_t>(img.height) * img.width;
  std::vector<float> g(n);
  const float *r = img.plane(0), *gr = img.plane(1), *b = img.plane(2);
  for (size_t i = 0; i < n; ++i) g[i] = 0.2989f * r[i] + 0.587f * gr[i] + 0.114f * b[i];
  return g;
}

void check_factor(const char* what, float factor) {
  TETHER_CHECK(factor >= 0 && std::isfinite(factor), what, ": factor must be finite and >= 0, got ", factor);
}
}  // namespace

Image adjust_brightness(const Image& img, float factor) {
  check_factor("adjust_brightness", factor);
  return blend(img, factor, [](size_t) { return 0.0f; });
}

Image adjust_contrast(const Image& img, float factor) {
  check_factor("adjust_contrast", factor);
  // Blend with the mean of the grayscale image (of the image itself when not RGB).
  double sum = 0;
  if (img.channels == 3) {
    for (float v : grayscale(img)) sum += v;
    sum /= static_cast<double>(img.height) * img.width;
  } else {
    for (float v : img.pixels) sum += v;
    sum /= static_cast<double>(img.pixels.size());
  }
  const float mean = static_cast<float>(sum);
  return blend(img, factor, [mean](size_t) { return mean; });
}

Image adjust_saturation(const Image& img, float factor) {
  check_factor("adjust_saturation", factor);
  if (img.channels == 1) return img;
  const std::vector<float> gray = grayscale(img);
  return blend(img, factor, [&gray](size_t i) { return gray[i]; });
}

void normalize(Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& stddev) {
  TETHER_CHECK(img.channels == 3, "normalize: expected 3 channels, got ", img.channels);
  for (int c = 0; c < 3; ++c) {
    TETHER_CHECK(stddev[c] != 0, "normalize: std[", c, "] is 0");
    float* p = img.plane(c);
    const size_t n = static_cast<size_t>(img.height) * img.width;
    for (size_t i = 0; i < n; ++i) p[i] = (p[i] - mean[c]) / stddev[c];  // torchvision: sub_ then div_
  }
}

// ---- random parameters ------------------------------------------------------------------

namespace {
double uniform(Generator& gen, double lo, double hi) { return lo + (hi - lo) * gen.next_uniform(); }
int below(Generator& gen, int n) { return static_cast<int>(gen.next_below(static_cast<uint64_t>(n))); }

void check_range(const char* option, const std::array<float, 2>& r) {
  TETHER_CHECK(r[0] > 0 && r[0] <= r[1] && std::isfinite(r[1]), option, " must satisfy 0 < lo <= hi, got (", r[0],
               ", ", r[1], ")");
}
}  // namespace

// Draws: per try, area fraction then log-ratio (two next_uniform); on success top then left
// (two next_below). The fallback draws nothing.
CropBox random_resized_crop_box(int height, int width, const std::array<float, 2>& scale,
                                const std::array<float, 2>& ratio, Generator& gen) {
  TETHER_CHECK(height > 0 && width > 0, "RandomResizedCrop: empty image");
  check_range("scale", scale);
  check_range("ratio", ratio);
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(ratio[0]), log_hi = std::log(ratio[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target_area = area * uniform(gen, scale[0], scale[1]);
    const double aspect = std::exp(uniform(gen, log_lo, log_hi));
    const int w = round_half_even(std::sqrt(target_area * aspect));
    const int h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int top = below(gen, height - h + 1);
      const int left = below(gen, width - w + 1);
      return {top, left, h, w};
    }
  }
  // Fallback: the whole image, or its centre with the aspect ratio clamped into `ratio`.
  const double in_ratio = static_cast<double>(width) / height;
  const double lo = std::min(ratio[0], ratio[1]), hi = std::max(ratio[0], ratio[1]);
  int w = width, h = height;
  if (in_ratio < lo)
    h = round_half_even(w / lo);
  else if (in_ratio > hi)
    w = round_half_even(h * hi);
  return {(height - h) / 2, (width - w) / 2, h, w};
}

// ---- transforms ---------------------------------------------------------------------------

namespace {

std::string num(double v) {
  std::ostringstream os;
  os << std::setprecision(3) << v;
  return os.str();
}
template <size_t N>
std::string fmt_tuple(const std::array<float, N>& a) {
  std::string s = "(";
  for (size_t i = 0; i < N; ++i) s += (i ? ", " : "") + num(a[i]);
  return s + ")";
}
const char* interp_name(Interpolation interp) { return interp == Interpolation::bicubic ? "bicubic" : "bilinear"; }

// Resize to a fixed height x width (nothing to do when the image has that size already).
class Resize : public Transform {
 public:
  Resize(int size, Interpolation interp) : size_(size), interp_(interp) {}
  Image apply(Image img, Generator&) const override {
    if (img.height == size_ && img.width == size_) return img;
    return resize(img, size_, size_, interp_);
  }
  std::string describe() const override {
    return "Resize(" + std::to_string(size_) + "x" + std::to_string(size_) + ", " + interp_name(interp_) + ")";
  }

 private:
  int size_;
  Interpolation interp_;
};

class ResizeShorter : public Transform {
 public:
  ResizeShorter(int size, Interpolation interp) : size_(size), interp_(interp) {}
  Image apply(Image img, Generator&) const override { return resize_shorter(img, size_, interp_); }
  std::string describe() const override {
    return "ResizeShorter(" + std::to_string(size_) + ", " + interp_name(interp_) + ")";
  }

 private:
  int size_;
  Interpolation interp_;
};

class ResizePad : public Transform {
 public:
  ResizePad(int size, Interpolation interp) : size_(size), interp_(interp) {}
  Image apply(Image img, Generator&) const override { return resize_pad(img, size_, interp_); }
  std::string describe() const override {
    return "ResizePad(" + std::to_string(size_) + ", " + interp_name(interp_) + ")";
  }

 private:
  int size_;
  Interpolation interp_;
};

class CenterCrop : public Transform {
 public:
  explicit CenterCrop(int size) : size_(size) {}
  Image apply(Image img, Generator&) const override { return center_crop(img, size_, size_); }
  std::string describe() const override { return "CenterCrop(" + std::to_string(size_) + ")"; }

 private:
  int size_;
};

// torchvision RandomCrop (no padding). Draws top then left (two next_below), always.
class RandomCrop : public Transform {
 public:
  explicit RandomCrop(int size) : size_(size) {}
  Image apply(Image img, Generator& gen) const override {
    TETHER_CHECK(img.height >= size_ && img.width >= size_, "RandomCrop(", size_, "): the image (", img.height, "x",
                 img.width, ") is smaller than the crop");
    const int top = below(gen, img.height - size_ + 1);
    const int left = below(gen, img.width - size_ + 1);
    return crop(img, top, left, size_, size_);
  }
  std::string describe() const override { return "RandomCrop(" + std::to_string(size_) + ")"; }

 private:
  int size_;
};

// torchvision RandomResizedCrop: random_resized_crop_box, then resize to size x size.
class RandomResizedCrop : public Transform {
 public:
  RandomResizedCrop(int size, std::array<float, 2> scale, std::array<float, 2> ratio, Interpolation interp)
      : size_(size), scale_(scale), ratio_(ratio), interp_(interp) {}
  Image apply(Image img, Generator& gen) const override {
    const CropBox b = random_resized_crop_box(img.height, img.width, scale_, ratio_, gen);
    return resize(crop(img, b.top, b.left, b.height, b.width), size_, size_, interp_);
  }
  std::string describe() const override {
    return "RandomResizedCrop(" + std::to_string(size_) + ", scale=" + fmt_tuple(scale_) +
           ", ratio=" + fmt_tuple(ratio_) + (interp_ == Interpolation::bilinear ? "" : ", bicubic") + ")";
  }

 private:
  int size_;
  std::array<float, 2> scale_, ratio_;
  Interpolation interp_;
};

// torchvision RandomHorizontalFlip: one next_uniform, flip when it is < p.
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(float p) : p_(p) {}
  Image apply(Image img, Generator& gen) const override {
    if (gen.next_uniform() < p_) return hflip(img);
    return img;
  }
  std::string describe() const override { return "RandomHorizontalFlip(p=" + num(p_) + ")"; }

 private:
  float p_;
};

// RandomApply(GaussianBlur) with sigma ~ U[lo, hi] and kernel 2 ceil(3 sigma) + 1: one
// next_uniform (apply when < p), then, when applied, one next_uniform for sigma.
class RandomGaussianBlur : public Transform {
 public:
  RandomGaussianBlur(float p, std::array<float, 2> sigma) : p_(p), sigma_(sigma) {}
  Image apply(Image img, Generator& gen) const override {
    if (!(gen.next_uniform() < p_)) return img;
    const float sigma = static_cast<float>(uniform(gen, sigma_[0], sigma_[1]));
    return gaussian_blur(img, 2 * static_cast<int>(std::ceil(3.0f * sigma)) + 1, sigma);
  }
  std::string describe() const override {
    return "RandomGaussianBlur(p=" + num(p_) + ", sigma=" + fmt_tuple(sigma_) + ", kernel=2*ceil(3*sigma)+1)";
  }

 private:
  float p_;
  std::array<float, 2> sigma_;
};

// torchvision ColorJitter without hue. Draws: the order of the three adjustments (a
// Fisher-Yates shuffle: next_below(3), next_below(2)), then the factor of each enabled one,
// brightness, contrast, saturation, each U[max(0, 1 - s), 1 + s] (one next_uniform).
class ColorJitter : public Transform {
 public:
  explicit ColorJitter(std::array<float, 3> strength) : strength_(strength) {}
  Image apply(Image img, Generator& gen) const override {
    std::array<int, 3> order{0, 1, 2};
    for (int i = 2; i > 0; --i) std::swap(order[i], order[below(gen, i + 1)]);
    std::array<float, 3> factor{1, 1, 1};
    for (int k = 0; k < 3; ++k)
      if (strength_[k] > 0)
        factor[k] = static_cast<float>(uniform(gen, std::max(0.0f, 1 - strength_[k]), 1 + strength_[k]));
    for (int k : order) {
      if (strength_[k] == 0) continue;
      if (k == 0) img = adjust_brightness(img, factor[k]);
      if (k == 1) img = adjust_contrast(img, factor[k]);
      if (k == 2) img = adjust_saturation(img, factor[k]);
    }
    return img;
  }
  std::string describe() const override {
    return "ColorJitter(brightness=" + num(strength_[0]) + ", contrast=" + num(strength_[1]) +
           ", saturation=" + num(strength_[2]) + ")";
  }

 private:
  std::array<float, 3> strength_;
};

// (x - mean) / std per channel; with mean_only (L2-SP) the std is 1 and only the mean goes.
class Normalize : public Transform {
 public:
  Normalize(std::array<float, 3> mean, std::array<float, 3> stddev, bool mean_only)
      : mean_(mean), std_(stddev), mean_only_(mean_only) {}
  Image apply(Image img, Generator&) const override {
    normalize(img, mean_, std_);
    return img;
  }
  std::string describe() const override {
    if (mean_only_) return "SubtractMean(mean=" + fmt_tuple(mean_) + ")";
    return "Normalize(mean=" + fmt_tuple(mean_) + ", std=" + fmt_tuple(std_) + ")";
  }

 private:
  std::array<float, 3> mean_, std_;
  bool mean_only_;
};

// torchvision TenCrop: one image in, ten views out (no draws).
class TenCrop : public Transform {
 public:
  explicit TenCrop(int size) : size_(size) {}
  Image apply(Image, Generator&) const override { TETHER_FAIL("TenCrop makes 10 views: the pipeline calls expand()"); }
  int views() const override { return 10; }
  std::vector<Image> expand(Image img, Generator&) const override { return ten_crop(img, size_); }
  std::string describe() const override { return "TenCrop(" + std::to_string(size_) + ")"; }

 private:
  int size_;
};

}  // namespace

// ---- pipelines ------------------------------------------------------------------------------

Pipeline& Pipeline::add(std::shared_ptr<const Transform> step) {
  TETHER_CHECK(step != nullptr, "Pipeline::add: null transform");
  steps_.push_back(std::move(step));
  return *this;
}

int Pipeline::views() const {
  int n = 1;
  for (const auto& step : steps_) n *= step->views();
  return n;
}

std::string Pipeline::describe() const {
  if (steps_.empty()) return "Identity";
  std::string s;
  for (const auto& step : steps_) s += (s.empty() ? "" : " -> ") + step->describe();
  return s;
}

std::vector<Image> Pipeline::run(Image img, Generator& gen) const {
  std::vector<Image> views;
  views.push_back(std::move(img));
  for (const auto& step : steps_) {
    if (step->views() == 1) {
      for (Image& v : views) v = step->apply(std::move(v), gen);
      continue;
    }
    std::vector<Image> expanded;
    expanded.reserve(views.size() * step->views());
    for (Image& v : views)
      for (Image& e : step->expand(std::move(v), gen)) expanded.push_back(std::move(e));
    views = std::move(expanded);
  }
  TETHER_CHECK(static_cast<int>(views.size()) == this->views(), "pipeline made ", views.size(), " views, expected ",
               this->views(), ": ", describe());
  for (const Image& v : views)
    TETHER_CHECK(v.channels == views[0].channels && v.height == views[0].height && v.width == views[0].width,
                 "pipeline views differ in shape (", v.channels, "x", v.height, "x", v.width, " vs ", views[0].channels,
                 "x", views[0].height, "x", views[0].width, "): ", describe());
  return views;
}

const std::vector<std::string>& augment_names() {
  static const std::vector<std::string> names{"none", "flip", "crop-flip", "rrc", "l2sp", "ptr"};
  return names;
}

namespace {

void check_probability(const char* option, float p) {
  TETHER_CHECK(p >= 0 && p <= 1, option, " must be in [0, 1], got ", p);
}

void validate(const TransformOptions& o) {
  const auto& names = augment_names();
  if (std::find(names.begin(), names.end(), o.augment) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    TETHER_FAIL("unknown augment '", o.augment, "' (expected one of: ", list, ")");
  }
  TETHER_CHECK(o.input_size > 0, "input_size must be positive, got ", o.input_size);
  TETHER_CHECK(o.resize_size >= 0, "resize_size must be positive (or 0 for input_size / 0.875), got ", o.resize_size);
  check_range("scale", o.scale);
  check_range("ratio", o.ratio);
  check_range("blur_sigma", o.blur_sigma);
  check_probability("flip_p", o.flip_p);
  check_probability("blur_p", o.blur_p);
  for (auto [option, v] : {std::pair{"brightness", o.brightness}, std::pair{"contrast", o.contrast},
                           std::pair{"saturation", o.saturation}})
    TETHER_CHECK(v >= 0 && std::isfinite(v), option, " must be finite and >= 0, got ", v);
  for (int c = 0; c < 3; ++c) {
    TETHER_CHECK(std::isfinite(o.mean[c]) && std::isfinite(o.train_mean[c]), "mean[", c, "] must be finite");
    TETHER_CHECK(o.mean_subtract || (o.std[c] > 0 && std::isfinite(o.std[c])), "std[", c,
                 "] must be positive and finite, got ", o.std[c]);
  }
}

// The resize before a crop: resize_size, or input_size / 0.875 rounded down (256 for 224).
int pre_crop_size(const TransformOptions& o) {
  const int size = o.resize_size > 0 ? o.resize_size : static_cast<int>(o.input_size / 0.875);
  TETHER_CHECK(size >= o.input_size, "resize_size (", size, ") must be >= input_size (", o.input_size, ") for augment ",
               o.augment);
  return size;
}

void add_normalize(Pipeline& p, const TransformOptions& o) {
  if (o.mean_subtract)
    p.add(std::make_shared<Normalize>(o.train_mean, std::array<float, 3>{1, 1, 1}, true));
  else
    p.add(std::make_shared<Normalize>(o.mean, o.std, false));
}

}  // namespace

Pipeline make_train_pipeline(const TransformOptions& o) {
  validate(o);
  TETHER_CHECK(!o.ten_crop, "ten_crop is for evaluation only (not a training transform)");
  const std::string& a = o.augment;
  Pipeline p;
  if (a == "none" || a == "flip") {
    p.add(std::make_shared<Resize>(o.input_size, o.interpolation));
  } else if (a == "rrc") {
    p.add(std::make_shared<RandomResizedCrop>(o.input_size, o.scale, o.ratio, o.interpolation));
  } else if (a == "ptr") {
    p.add(std::make_shared<ResizePad>(pre_crop_size(o), o.interpolation));
    p.add(std::make_shared<RandomCrop>(o.input_size));
  } else {  // crop-flip, l2sp
    p.add(std::make_shared<ResizeShorter>(pre_crop_size(o), o.interpolation));
    p.add(std::make_shared<RandomCrop>(o.input_size));
  }
  if (a != "none") p.add(std::make_shared<RandomHorizontalFlip>(o.flip_p));
  if (a == "l2sp") p.add(std::make_shared<RandomGaussianBlur>(o.blur_p, o.blur_sigma));
  if (o.brightness > 0 || o.contrast > 0 || o.saturation > 0)
    p.add(std::make_shared<ColorJitter>(std::array<float, 3>{o.brightness, o.contrast, o.saturation}));
  add_normalize(p, o);
  return p;
}

Pipeline make_eval_pipeline(const TransformOptions& o) {
  validate(o);
  Pipeline p;
  if (o.augment == "none" || o.augment == "flip") {  // protocols without crops: resize only
    TETHER_CHECK(!o.ten_crop, "ten_crop needs a cropping protocol; augment ", o.augment, " only resizes to input_size");
    p.add(std::make_shared<Resize>(o.input_size, o.interpolation));
  } else {
    if (o.augment == "ptr")
      p.add(std::make_shared<ResizePad>(pre_crop_size(o), o.interpolation));
    else
      p.add(std::make_shared<ResizeShorter>(pre_crop_size(o), o.interpolation));
    if (o.ten_crop)
      p.add(std::make_shared<TenCrop>(o.input_size));
    else
      p.add(std::make_shared<CenterCrop>(o.input_size));
  }
  add_normalize(p, o);
  return p;
}

}  // namespace tether::data
