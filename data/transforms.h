// Image transforms: the deterministic functions (resize, crops, flip, blur, colour, normalize)
// and the random transforms and pipelines built on them for the papers' protocols.
//
// Every function follows torchvision.transforms.v2.functional on float CHW tensors in [0, 1]:
// crops, flips, padding and normalisation are exact; resizes use torch's antialiased
// separable filters (the algorithm of PIL's ImagingResample) on floats and match within the
// tolerance stated in transforms.cpp. Random transforms draw their parameters from the
// Generator they are given (the loader gives each sample its own), with torchvision's
// algorithms for choosing them.
#pragma once
#include <array>
#include <memory>
#include <string>
#include <vector>

#include "core/random.h"
#include "data/image.h"

namespace tether::data {

enum class Interpolation { bilinear, bicubic };
Interpolation parse_interpolation(const std::string& name);  // "bilinear" | "bicubic"

// ---- deterministic functions ------------------------------------------------------------
Image resize(const Image& img, int height, int width, Interpolation interp = Interpolation::bilinear);
// Shorter side to `size`, the other side as torchvision computes it (int(size * long / short)).
Image resize_shorter(const Image& img, int size, Interpolation interp = Interpolation::bilinear);
// Aspect-preserving resize so the longer side is `size`, then zero padding to size×size,
// image centred (the PtR protocol).
Image resize_pad(const Image& img, int size, Interpolation interp = Interpolation::bilinear);
// Region [top, top+height) × [left, left+width); parts outside the image are zero (as torchvision).
Image crop(const Image& img, int top, int left, int height, int width);
Image center_crop(const Image& img, int height, int width);
Image hflip(const Image& img);
// torchvision gaussian_blur: odd kernel size, reflect padding, separable.
Image gaussian_blur(const Image& img, int kernel_size, float sigma);
Image adjust_brightness(const Image& img, float factor);
Image adjust_contrast(const Image& img, float factor);
Image adjust_saturation(const Image& img, float factor);
// (x - mean[c]) / std[c], in place.
void normalize(Image& img, const std::array<float, 3>& mean, const std::array<float, 3>& std);
// The four corner crops and the centre crop, then the same five of the flipped image
// (torchvision.transforms.TenCrop order).
std::vector<Image> ten_crop(const Image& img, int size);

// The box RandomResizedCrop cuts before resizing: torchvision's RandomResizedCrop.get_params
// (10 tries of area ~ U[scale] * h * w and log-uniform ratio, then a centre crop with the
// ratio clamped). Exposed so tests can check the drawn boxes against scale and ratio.
struct CropBox {
  int top = 0, left = 0, height = 0, width = 0;
};
CropBox random_resized_crop_box(int height, int width, const std::array<float, 2>& scale,
                                const std::array<float, 2>& ratio, Generator& gen);

// ---- transforms ---------------------------------------------------------------------------
// One step of a pipeline. Most map one image to one image; a multi-view step (TenCrop)
// expands one image into several views, and later steps apply to each view.
class Transform {
 public:
  virtual ~Transform() = default;
  virtual Image apply(Image img, Generator& gen) const = 0;
  virtual int views() const { return 1; }
  virtual std::vector<Image> expand(Image img, Generator& gen) const { return {apply(std::move(img), gen)}; }
  virtual std::string describe() const = 0;  // "RandomResizedCrop(224, scale=(0.08, 1))"
};

// A sequence of transforms: run() returns views() images of identical shape.
class Pipeline {
 public:
  Pipeline& add(std::shared_ptr<const Transform> step);
  std::vector<Image> run(Image img, Generator& gen) const;
  int views() const;
  std::string describe() const;
  bool empty() const { return steps_.empty(); }

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
};

// What `tether train` builds pipelines from. `augment` names a protocol:
//   none      SPEC 9: resize only if the size differs from input_size, normalize
//   flip      resize to input_size (if needed), random horizontal flip
//   crop-flip resize shorter side to resize_size, random input_size crop, flip (DTNH, MARS)
//   rrc       RandomResizedCrop(input_size, scale, ratio), flip (timm/torchvision default)
//   l2sp      crop-flip plus random Gaussian blur (the L2-SP protocol)
//   ptr       resize_pad to resize_size, random input_size crop, flip (the PtR protocol)
// Then optional colour jitter, then normalisation: `mean_subtract` uses train_mean only
// (L2-SP: per-channel training-set mean, no scaling), otherwise (x - mean) / std.
// Evaluation: none, flip → resize to input_size (if needed), normalize; others → resize shorter (resize_pad for ptr) to
// resize_size, centre crop input_size (or ten-crop), normalize.
struct TransformOptions {
  std::string augment = "rrc";
  int input_size = 224;
  int resize_size = 0;  // 0: input_size / 0.875 rounded down (256 for 224)
  Interpolation interpolation = Interpolation::bilinear;
  std::array<float, 2> scale{0.08f, 1.0f};           // rrc
  std::array<float, 2> ratio{3.0f / 4.0f, 4.0f / 3.0f};
  float flip_p = 0.5f;
  float blur_p = 0.5f;                                // l2sp: probability of a blur
  std::array<float, 2> blur_sigma{0.1f, 2.0f};        // sigma ~ U[lo, hi], kernel = 2*ceil(3 sigma)+1
  float brightness = 0, contrast = 0, saturation = 0;  // ColorJitter strengths (0 = off)
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f};
  std::array<float, 3> std{0.229f, 0.224f, 0.225f};
  bool mean_subtract = false;
  std::array<float, 3> train_mean{0, 0, 0};
  bool ten_crop = false;                              // evaluation only
};

Pipeline make_train_pipeline(const TransformOptions& opts);
Pipeline make_eval_pipeline(const TransformOptions& opts);
const std::vector<std::string>& augment_names();

}  // namespace tether::data
