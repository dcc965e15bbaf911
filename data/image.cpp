// Decoding with stb_image (implementation compiled in data/stb_impl.cpp) plus JPEG EXIF
// orientation, which stb leaves out, and a clear message for a JPEG that was cut short (stb
// rejects those too, but says only "expected marker").
//
// 16-bit PNG/PNM keep their precision: they are read with stbi_load_16 and scaled by 1/65535
// (PIL would reduce them to 8 bits first; the difference is below 1/255).
#include "data/image.h"

#include <fcntl.h>
#include <stb_image.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>

namespace tether::data {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& reason) {
  throw DecodeError("cannot decode '" + name + "': " + reason);
}

std::vector<uint8_t> read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot open file (") + std::strerror(errno) + ")");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(path, std::string("cannot stat file (") + std::strerror(errno) + ")");
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail(path, std::string("read error (") + std::strerror(errno) + ")");
    if (got == 0) break;  // the file shrank while being read
    done += static_cast<size_t>(got);
  }
  bytes.resize(done);
  return bytes;
}

// ---- JPEG structure: EXIF orientation and completeness -------------------------------------
struct JpegInfo {
  int orientation = 1;    // EXIF tag 0x0112, 1..8
  bool truncated = false;  // a scan starts but no end-of-image marker follows it
};

// Reads the orientation tag from IFD0 of an EXIF TIFF block; 1 when absent or malformed.
int exif_orientation(const uint8_t* tiff, size_t n) {
  if (n < 8) return 1;
  const bool little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? tiff[at] | (tiff[at + 1] << 8) : (tiff[at] << 8) | tiff[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t { return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const uint32_t entries = u16(ifd);
  for (uint32_t k = 0; k < entries; ++k) {
    const size_t e = ifd + 2 + 12 * static_cast<size_t>(k);
    if (e + 12 > n) return 1;
    if (u16(e) == 0x0112 && u16(e + 2) == 3 /* SHORT */) {
      const uint32_t value = u16(e + 8);  // a single SHORT sits left-aligned in the value field
      return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
  }
  return 1;
}

// Walks the marker segments up to the first scan (SOS), then looks for the end-of-image
// marker after it. In entropy-coded data 0xFF is always followed by 0x00 or a restart marker,
// so FF D9 there is the real EOI (an EXIF thumbnail's EOI comes before the scan). stb fails
// without one as well; this only names the cause.
JpegInfo scan_jpeg(const uint8_t* b, size_t n) {
  JpegInfo info;
  size_t pos = 2;
  while (pos + 4 <= n) {
    if (b[pos] != 0xFF) return info;  // malformed: let stb report it
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) { ++pos; continue; }  // fill byte
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) { pos += 2; continue; }  // no length
    if (marker == 0xD9) return info;  // EOI before any scan
    const size_t length = (static_cast<size_t>(b[pos + 2]) << 8) | b[pos + 3];
    const size_t data = pos + 4, end = pos + 2 + length;
    if (length < 2 || end > n) return info;
    if (marker == 0xE1 && length >= 8 && std::memcmp(b + data, "Exif\0\0", 6) == 0)
      info.orientation = exif_orientation(b + data + 6, end - data - 6);
    if (marker == 0xDA) {
      info.truncated = true;  // searched from the back: EOI is normally the last two bytes
      for (size_t i = n - 1; i > end && info.truncated; --i) info.truncated = !(b[i - 1] == 0xFF && b[i] == 0xD9);
      return info;
    }
    pos = end;
  }
  return info;
}

// The EXIF orientations as PIL's ImageOps.exif_transpose applies them: out(y, x) = src(sy, sx).
Image apply_orientation(Image src, int orientation) {
  if (orientation <= 1 || orientation > 8) return src;  // moved, not copied
  const int h = src.height, w = src.width;
  const bool swap = orientation >= 5;  // transposing orientations exchange height and width
  Image out(src.channels, swap ? w : h, swap ? h : w);
  for (int c = 0; c < src.channels; ++c)
    for (int y = 0; y < out.height; ++y)
      for (int x = 0; x < out.width; ++x) {
        int sy = y, sx = x;
        switch (orientation) {
          case 2: sx = w - 1 - x; break;                  // mirror left-right
          case 3: sy = h - 1 - y, sx = w - 1 - x; break;  // rotate 180
          case 4: sy = h - 1 - y; break;                  // mirror top-bottom
          case 5: sy = x, sx = y; break;                  // transpose
          case 6: sy = h - 1 - x, sx = y; break;          // rotate 90 clockwise
          case 7: sy = h - 1 - x, sx = w - 1 - y; break;  // transverse
          case 8: sy = x, sx = w - 1 - y; break;          // rotate 90 counter-clockwise
        }
        out.at(c, y, x) = src.at(c, sy, sx);
      }
  return out;
}

// Interleaved pixels of any integer type to planar RGB; `scale` maps a value to [0, 1].
template <typename T, typename Scale>
Image planar_rgb(const T* hwc, int height, int width, int channels, Scale scale) {
  TETHER_CHECK(channels >= 1 && channels <= 4, "images have 1 to 4 channels, got ", channels);
  TETHER_CHECK(height > 0 && width > 0, "image size ", height, "x", width);
  Image img(3, height, width);
  const size_t n = static_cast<size_t>(height) * width;
  float *r = img.plane(0), *g = img.plane(1), *b = img.plane(2);
  if (channels >= 3) {  // RGB, RGBA (alpha dropped): one pass over the input
    for (size_t i = 0; i < n; ++i) {
      const T* p = hwc + i * channels;
      r[i] = scale(p[0]), g[i] = scale(p[1]), b[i] = scale(p[2]);
    }
  } else {  // gray, gray + alpha: gray replicated
    for (size_t i = 0; i < n; ++i) r[i] = scale(hwc[i * channels]);
    std::copy(r, r + n, g);
    std::copy(r, r + n, b);
  }
  return img;
}

struct StbFree {
  void operator()(void* p) const { stbi_image_free(p); }
};

}  // namespace

Image image_from_u8(const uint8_t* hwc, int height, int width, int channels) {
  // v / 255 as a float division, as torchvision's to_tensor / to_dtype(scale=True) computes it.
  static const auto lut = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return planar_rgb(hwc, height, width, channels, [](uint8_t v) { return lut[v]; });
}

Image decode_image_memory(const uint8_t* bytes, size_t size, const std::string& name) {
  if (size == 0) fail(name, "empty file");
  if (size > static_cast<size_t>(INT_MAX)) fail(name, "file larger than 2 GiB");
  const int len = static_cast<int>(size);

  JpegInfo jpeg;
  const bool is_jpeg = size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  if (is_jpeg) {
    jpeg = scan_jpeg(bytes, size);
    if (jpeg.truncated) fail(name, "truncated JPEG (no end-of-image marker after the scan)");
  }

  int w = 0, h = 0, c = 0;
  Image img;
  if (stbi_is_16_bit_from_memory(bytes, len)) {
    std::unique_ptr<stbi_us, StbFree> px(stbi_load_16_from_memory(bytes, len, &w, &h, &c, 0));
    if (!px) fail(name, stbi_failure_reason() ? stbi_failure_reason() : "unknown error");
    img = planar_rgb(px.get(), h, w, c, [](stbi_us v) { return static_cast<float>(v) / 65535.0f; });
  } else {
    std::unique_ptr<stbi_uc, StbFree> px(stbi_load_from_memory(bytes, len, &w, &h, &c, 0));
    if (!px) {
      const std::string reason = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
      if (reason == "unknown image type") fail(name, "unknown image type (not JPEG, PNG, BMP, GIF or PNM)");
      fail(name, reason);
    }
    img = image_from_u8(px.get(), h, w, c);
  }
  if (is_jpeg) img = apply_orientation(std::move(img), jpeg.orientation);
  return img;
}

Image decode_image_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

}  // namespace tether::data
