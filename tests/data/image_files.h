// Test fixtures for the data suite: writers for image
// files (PNG/JPEG/BMP by stb_image_write, PNM and 16-bit PNG by hand) and IDX files.
#pragma once
#include <stb_image_write.h>
#include <zlib.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/image.h"
#include "tests/tools/files.h"  // TempDir (one definition for the whole test binary)

namespace tether::testing {

inline void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Interleaved HWC pixels with structure: gradients in x and y and a seed-dependent offset
// per channel (smooth, so JPEG keeps them close).
inline std::vector<uint8_t> test_pattern(int w, int h, int channels, int seed = 0) {
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * channels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        px[(static_cast<size_t>(y) * w + x) * channels + c] =
            static_cast<uint8_t>((x * 200 / std::max(1, w - 1) + y * 50 / std::max(1, h - 1) + 37 * c + 11 * seed) % 256);
  return px;
}

inline void write_png(const std::string& path, int w, int h, int channels, const std::vector<uint8_t>& px) {
  if (!stbi_write_png(path.c_str(), w, h, channels, px.data(), w * channels)) throw std::runtime_error("png " + path);
}
inline void write_jpg(const std::string& path, int w, int h, int channels, const std::vector<uint8_t>& px,
                      int quality = 95) {
  if (!stbi_write_jpg(path.c_str(), w, h, channels, px.data(), quality)) throw std::runtime_error("jpg " + path);
}
inline void write_bmp(const std::string& path, int w, int h, int channels, const std::vector<uint8_t>& px) {
  if (!stbi_write_bmp(path.c_str(), w, h, channels, px.data())) throw std::runtime_error("bmp " + path);
}

inline std::vector<uint8_t> encode_jpg(int w, int h, int channels, const std::vector<uint8_t>& px, int quality = 95) {
  std::vector<uint8_t> out;
  stbi_write_jpg_to_func(
      [](void* ctx, void* data, int size) {
        auto* v = static_cast<std::vector<uint8_t>*>(ctx);
        v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
      },
      &out, w, h, channels, px.data(), quality);
  return out;
}

// Binary PNM: P5 (gray) or P6 (RGB), 8-bit.
inline std::vector<uint8_t> encode_pnm(int w, int h, int channels, const std::vector<uint8_t>& px) {
  const std::string header = (channels == 1 ? "P5\n" : "P6\n") + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), px.begin(), px.end());
  return out;
}

// A 16-bit PNG (colour type 0 gray or 2 RGB), built chunk by chunk (stb cannot write one).
inline std::vector<uint8_t> encode_png16(int w, int h, int channels, const std::vector<uint16_t>& px) {
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto be32 = [](std::vector<uint8_t>& v, uint32_t x) {
    for (int s = 24; s >= 0; s -= 8) v.push_back(static_cast<uint8_t>(x >> s));
  };
  auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    std::vector<uint8_t> body(type, type + 4);
    body.insert(body.end(), data.begin(), data.end());
    out.insert(out.end(), body.begin(), body.end());
    be32(out, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
  };
  std::vector<uint8_t> ihdr;
  be32(ihdr, w);
  be32(ihdr, h);
  ihdr.insert(ihdr.end(), {16, static_cast<uint8_t>(channels == 1 ? 0 : 2), 0, 0, 0});
  chunk("IHDR", ihdr);
  std::vector<uint8_t> raw;  // filter byte 0, then big-endian samples
  for (int y = 0; y < h; ++y) {
    raw.push_back(0);
    for (int i = 0; i < w * channels; ++i) {
      const uint16_t v = px[static_cast<size_t>(y) * w * channels + i];
      raw.push_back(static_cast<uint8_t>(v >> 8));
      raw.push_back(static_cast<uint8_t>(v));
    }
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(size);
  compress(z.data(), &size, raw.data(), static_cast<uLong>(raw.size()));
  z.resize(size);
  chunk("IDAT", z);
  chunk("IEND", {});
  return out;
}

// An IDX file (u8): magic 00 00 08 <dims>, big-endian dims, then the data.
inline std::vector<uint8_t> encode_idx(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(d >> s));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f || gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) != static_cast<int>(bytes.size()))
    throw std::runtime_error("gzip " + path);
  gzclose(f);
}

}  // namespace tether::testing
