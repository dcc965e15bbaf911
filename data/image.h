// A decoded image and the decoder (stb_image): JPEG, PNG, BMP, GIF (first frame), PNM.
// Images are float32, planar (CHW), values in [0, 1] — the layout a batch tensor has, so the
// transforms and the loader never reorder pixels. Grayscale is replicated to RGB and alpha is
// dropped on decode, so every decoded image has 3 channels.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/check.h"

namespace tether::data {

struct Image {
  int channels = 0, height = 0, width = 0;
  std::vector<float> pixels;  // [channels][height][width]

  Image() = default;
  Image(int c, int h, int w, float value = 0.0f)
      : channels(c), height(h), width(w), pixels(static_cast<size_t>(c) * h * w, value) {}
  float* plane(int c) { return pixels.data() + static_cast<size_t>(c) * height * width; }
  const float* plane(int c) const { return pixels.data() + static_cast<size_t>(c) * height * width; }
  float& at(int c, int y, int x) { return plane(c)[static_cast<size_t>(y) * width + x]; }
  float at(int c, int y, int x) const { return plane(c)[static_cast<size_t>(y) * width + x]; }
  bool empty() const { return pixels.empty(); }
};

// A file that cannot be decoded (corrupt, truncated, unsupported). Datasets and the loader
// catch this one type to skip-and-count (`--on-bad-image skip`); the message names the file.
class DecodeError : public Error {
 public:
  using Error::Error;
};

// Decodes a file or a buffer to a 3-channel image (gray replicated, alpha dropped).
// JPEG EXIF orientation is applied (see image.cpp). Throws DecodeError naming `name`.
Image decode_image_file(const std::string& path);
Image decode_image_memory(const uint8_t* bytes, size_t size, const std::string& name);

// Interleaved 8-bit pixels (HWC, 1 to 4 channels) to a 3-channel float image in [0, 1]
// (value / 255), gray replicated and alpha dropped. Used by decoding and by IDX datasets.
Image image_from_u8(const uint8_t* hwc, int height, int width, int channels);

}  // namespace tether::data
