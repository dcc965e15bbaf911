// Decoding: every format against the pixels written, channel conversion, EXIF orientation and
// the errors (DecodeError naming the file).
#include <cmath>
#include <cstring>

#include "data/image.h"
#include "tests/data/image_files.h"
#include "tests/test_util.h"

using namespace tether;
using namespace tether::data;
using tether::testing::TempDir;

namespace {

// The expected 3-channel planar image of interleaved 8-bit pixels, written out independently
// of image_from_u8: channel c of the output comes from input channel (1 or 2 channels: 0).
float expected_px(const std::vector<uint8_t>& px, int w, int channels, int c, int y, int x) {
  const int src = channels >= 3 ? c : 0;
  return static_cast<float>(px[(static_cast<size_t>(y) * w + x) * channels + src]) / 255.0f;
}

// Largest |decoded - source| over all pixels and channels.
float max_error(const Image& img, const std::vector<uint8_t>& px, int w, int h, int channels) {
  REQUIRE(img.channels == 3);
  REQUIRE(img.height == h);
  REQUIRE(img.width == w);
  float worst = 0;
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) worst = std::max(worst, std::abs(img.at(c, y, x) - expected_px(px, w, channels, c, y, x)));
  return worst;
}

bool channels_equal(const Image& img) {
  return std::memcmp(img.plane(0), img.plane(1), img.height * img.width * sizeof(float)) == 0 &&
         std::memcmp(img.plane(0), img.plane(2), img.height * img.width * sizeof(float)) == 0;
}

// Asserts that decoding `path` throws a DecodeError whose message names the path.
void check_decode_error(const std::string& path, const std::string& reason_part = "") {
  bool thrown = false;
  try {
    decode_image_file(path);
  } catch (const DecodeError& e) {
    thrown = true;
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("'" + path + "'") != std::string::npos);
    if (!reason_part.empty()) CHECK(msg.find(reason_part) != std::string::npos);
  }
  CHECK_MESSAGE(thrown, "no DecodeError for ", path);
}

// EXIF orientation fixtures: a JPEG with an APP1 Exif segment (IFD0 with one orientation
// entry) inserted right after SOI, in little- or big-endian TIFF byte order.
std::vector<uint8_t> with_exif(std::vector<uint8_t> jpeg, int orientation, bool big_endian) {
  auto u16 = [&](std::vector<uint8_t>& v, int x) {
    if (big_endian) v.insert(v.end(), {uint8_t(x >> 8), uint8_t(x)});
    else v.insert(v.end(), {uint8_t(x), uint8_t(x >> 8)});
  };
  auto u32 = [&](std::vector<uint8_t>& v, uint32_t x) {
    if (big_endian) u16(v, x >> 16), u16(v, x & 0xFFFF);
    else u16(v, x & 0xFFFF), u16(v, x >> 16);
  };
  std::vector<uint8_t> tiff;
  tiff.insert(tiff.end(), big_endian ? std::initializer_list<uint8_t>{'M', 'M'} : std::initializer_list<uint8_t>{'I', 'I'});
  u16(tiff, 42);
  u32(tiff, 8);       // IFD0 right after the header
  u16(tiff, 2);       // two entries: an unrelated one first, then the orientation
  u16(tiff, 0x010F);  // Make, ASCII, 4 bytes inline
  u16(tiff, 2);
  u32(tiff, 4);
  tiff.insert(tiff.end(), {'A', 'B', 'C', 0});
  u16(tiff, 0x0112);  // Orientation, SHORT, count 1, value left-aligned
  u16(tiff, 3);
  u32(tiff, 1);
  u16(tiff, orientation);
  u16(tiff, 0);
  u32(tiff, 0);  // no next IFD
  std::vector<uint8_t> app1 = {0xFF, 0xE1};
  const size_t length = 2 + 6 + tiff.size();
  app1.insert(app1.end(), {uint8_t(length >> 8), uint8_t(length)});
  app1.insert(app1.end(), {'E', 'x', 'i', 'f', 0, 0});
  app1.insert(app1.end(), tiff.begin(), tiff.end());
  jpeg.insert(jpeg.begin() + 2, app1.begin(), app1.end());
  return jpeg;
}

Image flip_lr(const Image& a) {
  Image o(a.channels, a.height, a.width);
  for (int c = 0; c < a.channels; ++c)
    for (int y = 0; y < a.height; ++y)
      for (int x = 0; x < a.width; ++x) o.at(c, y, x) = a.at(c, y, a.width - 1 - x);
  return o;
}
Image flip_tb(const Image& a) {
  Image o(a.channels, a.height, a.width);
  for (int c = 0; c < a.channels; ++c)
    for (int y = 0; y < a.height; ++y)
      for (int x = 0; x < a.width; ++x) o.at(c, y, x) = a.at(c, a.height - 1 - y, x);
  return o;
}
Image transpose(const Image& a) {
  Image o(a.channels, a.width, a.height);
  for (int c = 0; c < a.channels; ++c)
    for (int y = 0; y < o.height; ++y)
      for (int x = 0; x < o.width; ++x) o.at(c, y, x) = a.at(c, x, y);
  return o;
}
// The EXIF spec's orientations as compositions of flips and a transpose (PIL's exif_transpose).
Image oriented(const Image& a, int orientation) {
  switch (orientation) {
    case 2: return flip_lr(a);
    case 3: return flip_tb(flip_lr(a));
    case 4: return flip_tb(a);
    case 5: return transpose(a);
    case 6: return flip_lr(transpose(a));            // rotate 90° clockwise
    case 7: return flip_tb(flip_lr(transpose(a)));   // transverse
    case 8: return flip_tb(transpose(a));            // rotate 90° counter-clockwise
    default: return a;
  }
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("decode: PNG gray, gray+alpha, RGB, RGBA are exact; gray replicated, alpha dropped") {
  TempDir dir;
  const int w = 7, h = 5;
  for (int channels : {1, 2, 3, 4}) {
    CAPTURE(channels);
    std::vector<uint8_t> px = tether::testing::test_pattern(w, h, channels, channels);
    if (channels == 2 || channels == 4)  // alpha: 0 and 255 and values between, must not matter
      for (size_t i = channels - 1; i < px.size(); i += channels) px[i] = static_cast<uint8_t>(i * 13);
    const std::string path = dir.file("img" + std::to_string(channels) + ".png");
    tether::testing::write_png(path, w, h, channels, px);
    const Image img = decode_image_file(path);
    CHECK(max_error(img, px, w, h, channels) == 0.0f);
    if (channels <= 2) CHECK(channels_equal(img));
  }
}

TEST_CASE("decode: JPEG RGB and gray within JPEG tolerance of the source") {
  TempDir dir;
  const int w = 40, h = 24;
  for (int channels : {1, 3}) {
    CAPTURE(channels);
    const std::vector<uint8_t> px = tether::testing::test_pattern(w, h, channels);
    const std::string path = dir.file("img.jpg");
    tether::testing::write_jpg(path, w, h, channels, px, 95);
    const Image img = decode_image_file(path);
    CHECK(max_error(img, px, w, h, channels) < 0.08f);  // smooth pattern, quality 95
    if (channels == 1) CHECK(channels_equal(img));
  }
}

TEST_CASE("decode: BMP and PNM exact") {
  TempDir dir;
  const int w = 6, h = 3;
  const std::vector<uint8_t> rgb = tether::testing::test_pattern(w, h, 3), gray = tether::testing::test_pattern(w, h, 1);
  tether::testing::write_bmp(dir.file("a.bmp"), w, h, 3, rgb);
  CHECK(max_error(decode_image_file(dir.file("a.bmp")), rgb, w, h, 3) == 0.0f);
  tether::testing::write_file(dir.file("a.ppm"), tether::testing::encode_pnm(w, h, 3, rgb));
  CHECK(max_error(decode_image_file(dir.file("a.ppm")), rgb, w, h, 3) == 0.0f);
  tether::testing::write_file(dir.file("a.pgm"), tether::testing::encode_pnm(w, h, 1, gray));
  const Image g = decode_image_file(dir.file("a.pgm"));
  CHECK(max_error(g, gray, w, h, 1) == 0.0f);
  CHECK(channels_equal(g));
}

TEST_CASE("decode: GIF (a hand-made 2x2 GIF89a; stb_image_write cannot write GIF)") {
  // PIL-written palette image (red, green, blue, white), header changed to GIF89a.
  const uint8_t gif[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x02, 0x00, 0x02, 0x00, 0x81, 0x00, 0x00, 0xff, 0x00, 0x00,
                         0x00, 0xff, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
                         0x02, 0x00, 0x00, 0x08, 0x07, 0x00, 0x01, 0x04, 0x10, 0x30, 0x20, 0x20, 0x00, 0x3b};
  const Image img = decode_image_memory(gif, sizeof(gif), "tiny.gif");
  REQUIRE(img.channels == 3);
  REQUIRE(img.height == 2);
  REQUIRE(img.width == 2);
  const float expect[4][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}};
  for (int p = 0; p < 4; ++p)
    for (int c = 0; c < 3; ++c) CHECK(img.at(c, p / 2, p % 2) == expect[p][c]);
}

TEST_CASE("decode: 16-bit PNG keeps 16-bit precision (value / 65535)") {
  const int w = 3, h = 2;
  for (int channels : {1, 3}) {
    CAPTURE(channels);
    std::vector<uint16_t> px(static_cast<size_t>(w) * h * channels);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint16_t>(i * 9001 + 7);
    const std::vector<uint8_t> png = tether::testing::encode_png16(w, h, channels, px);
    const Image img = decode_image_memory(png.data(), png.size(), "deep.png");
    REQUIRE(img.height == h);
    REQUIRE(img.width == w);
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
          CHECK(img.at(c, y, x) == static_cast<float>(px[(y * w + x) * channels + (channels == 3 ? c : 0)]) / 65535.0f);
  }
}

TEST_CASE("image_from_u8: HWC to planar / 255 for 1 to 4 channels") {
  const uint8_t hwc[] = {0, 51, 102, 255, 10, 20, 30, 40};  // 1x2 pixels of 4 channels, or 1x4 of 2, ...
  const Image rgba = image_from_u8(hwc, 1, 2, 4);
  CHECK(rgba.at(0, 0, 0) == 0.0f);
  CHECK(rgba.at(1, 0, 0) == 51 / 255.0f);
  CHECK(rgba.at(2, 0, 0) == 102 / 255.0f);
  CHECK(rgba.at(0, 0, 1) == 10 / 255.0f);
  CHECK(rgba.at(2, 0, 1) == 30 / 255.0f);
  const Image ga = image_from_u8(hwc, 2, 2, 2);  // gray, alpha, gray, alpha, ...
  CHECK(ga.at(0, 0, 1) == 102 / 255.0f);
  CHECK(ga.at(2, 1, 0) == 10 / 255.0f);
  CHECK(channels_equal(ga));
  const Image g = image_from_u8(hwc, 2, 4, 1);
  CHECK(g.at(1, 1, 3) == 40 / 255.0f);
  CHECK(channels_equal(g));
  const Image rgb = image_from_u8(hwc, 1, 2, 3);
  CHECK(rgb.at(0, 0, 1) == 1.0f);
  CHECK(rgb.at(2, 0, 1) == 20 / 255.0f);
  CHECK_THROWS_AS(image_from_u8(hwc, 1, 1, 5), Error);
}

TEST_CASE("decode: JPEG EXIF orientation 1-8, both byte orders") {
  const int w = 16, h = 8;  // not square: orientations 5-8 swap height and width
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &px[(static_cast<size_t>(y) * w + x) * 3];
      const bool left = x < w / 2, top = y < h / 2;  // quadrants: red, green / blue, white
      p[0] = (left && top) || (!left && !top) ? 255 : 0;
      p[1] = (!left && top) || (!left && !top) ? 255 : 0;
      p[2] = (left && !top) || (!left && !top) ? 255 : 0;
    }
  const std::vector<uint8_t> jpeg = tether::testing::encode_jpg(w, h, 3, px, 100);
  const Image plain = decode_image_memory(jpeg.data(), jpeg.size(), "plain.jpg");
  for (bool big_endian : {false, true})
    for (int o = 1; o <= 8; ++o) {
      CAPTURE(big_endian);
      CAPTURE(o);
      const std::vector<uint8_t> bytes = with_exif(jpeg, o, big_endian);
      const Image img = decode_image_memory(bytes.data(), bytes.size(), "exif.jpg");
      const Image expect = oriented(plain, o);
      REQUIRE(img.height == expect.height);
      REQUIRE(img.width == expect.width);
      CHECK(img.pixels == expect.pixels);
    }
  // An independent look at two of them: where does the red (top-left) quadrant go?
  auto red_at = [](const Image& img, int y, int x) { return img.at(0, y, x) > 0.9f && img.at(1, y, x) < 0.1f && img.at(2, y, x) < 0.1f; };
  const std::vector<uint8_t> cw = with_exif(jpeg, 6, false), ccw = with_exif(jpeg, 8, true);
  const Image rot_cw = decode_image_memory(cw.data(), cw.size(), "cw.jpg");
  const Image rot_ccw = decode_image_memory(ccw.data(), ccw.size(), "ccw.jpg");
  CHECK(rot_cw.height == w);
  CHECK(red_at(rot_cw, 0, h - 1));  // rotated clockwise: top-left → top-right
  CHECK(red_at(rot_ccw, w - 1, 0)); // counter-clockwise: top-left → bottom-left
}

TEST_CASE("decode: errors are DecodeErrors naming the file") {
  TempDir dir;
  // random bytes
  std::vector<uint8_t> noise(4096);
  Generator gen(5);
  for (auto& b : noise) b = static_cast<uint8_t>(gen.next_u32());
  tether::testing::write_file(dir.file("noise.jpg"), noise);
  check_decode_error(dir.file("noise.jpg"), "unknown image type");
  // random bytes behind a JPEG signature
  std::vector<uint8_t> fake = {0xFF, 0xD8, 0xFF, 0xE0};
  fake.insert(fake.end(), noise.begin(), noise.end());
  tether::testing::write_file(dir.file("fake.jpg"), fake);
  check_decode_error(dir.file("fake.jpg"));
  // truncated JPEG and PNG (the first half of a valid file)
  const int w = 64, h = 48;
  const std::vector<uint8_t> px = tether::testing::test_pattern(w, h, 3);
  tether::testing::write_jpg(dir.file("whole.jpg"), w, h, 3, px);
  tether::testing::write_png(dir.file("whole.png"), w, h, 3, px);
  for (const char* name : {"whole.jpg", "whole.png"}) {
    CHECK_NOTHROW(decode_image_file(dir.file(name)));
    std::vector<uint8_t> bytes = tether::testing::read_file(dir.file(name));
    bytes.resize(bytes.size() / 2);
    const std::string cut = dir.file(std::string("half_") + name);
    tether::testing::write_file(cut, bytes);
    check_decode_error(cut, name == std::string("whole.jpg") ? "truncated JPEG" : "");
  }
  // a text file named .png, an empty file, a missing file, a folder
  std::ofstream(dir.file("text.png")) << "this is not an image\n";
  check_decode_error(dir.file("text.png"), "unknown image type");
  tether::testing::write_file(dir.file("empty.png"), {});
  check_decode_error(dir.file("empty.png"), "empty");
  check_decode_error(dir.str() + "/missing.jpg", "No such file");
  std::filesystem::create_directories(dir.file("folder.png"));
  check_decode_error(dir.file("folder.png"));
  // DecodeError is a tether::Error (what the loader's skip catches)
  CHECK_THROWS_AS(decode_image_file(dir.str() + "/missing.jpg"), Error);
}

}  // TEST_SUITE
