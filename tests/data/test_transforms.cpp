// data/transforms without torch: known pixel values, sizes, the random transforms'
// determinism and distributions, the protocol pipelines and the option errors.
// (Agreement with torchvision itself: test_transforms_parity.cpp.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/transforms.h"
#include "tests/test_util.h"

using namespace tether;
using tether::testing::error_of;
using namespace tether::data;

namespace {

// Pixel (c, y, x) = 100 c + 10 y + x: every value names its position.
Image coded(int c, int h, int w) {
  Image img(c, h, w);
  for (int k = 0; k < c; ++k)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) img.at(k, y, x) = static_cast<float>(100 * k + 10 * y + x);
  return img;
}

// Seeded values in [0, 1) from a Generator (no torch).
Image random_image(int c, int h, int w, uint64_t seed) {
  Generator gen(seed);
  Image img(c, h, w);
  for (float& v : img.pixels) v = static_cast<float>(gen.next_uniform());
  return img;
}

bool same(const Image& a, const Image& b) {
  return a.channels == b.channels && a.height == b.height && a.width == b.width && a.pixels == b.pixels;
}

// The crop of `img` at (top, left), size h x w, written out pixel by pixel.
Image window(const Image& img, int top, int left, int h, int w) {
  Image out(img.channels, h, w);
  for (int c = 0; c < img.channels; ++c)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) out.at(c, y, x) = img.at(c, top + y, left + x);
  return out;
}

TransformOptions identity_norm(TransformOptions o) {  // normalisation that changes nothing
  o.mean = {0, 0, 0};
  o.std = {1, 1, 1};
  return o;
}

}  // namespace

TEST_SUITE("data") {
  TEST_CASE("crop: region with zeros outside; center_crop rounds half to even and pads") {
    const Image img = coded(1, 4, 5);
    CHECK(same(crop(img, 1, 2, 2, 3), window(img, 1, 2, 2, 3)));
    const Image partial = crop(img, -1, 3, 3, 4);  // one row above, two columns past the right edge
    CHECK(partial.height == 3);
    CHECK(partial.width == 4);
    CHECK(partial.at(0, 0, 0) == 0);
    CHECK(partial.at(0, 1, 0) == 3);   // img (0, 3)
    CHECK(partial.at(0, 2, 1) == 14);  // img (1, 4)
    CHECK(partial.at(0, 1, 2) == 0);
    // (4 - 3) / 2 = 0.5 rounds to 0, (5 - 2) / 2 = 1.5 to 2 (Python's round).
    CHECK(same(center_crop(img, 3, 2), window(img, 0, 2, 3, 2)));
    // Larger than the image: zero padding of (crop - size) // 2 before, the rest after.
    const Image padded = center_crop(img, 7, 5);
    CHECK(padded.at(0, 0, 0) == 0);
    CHECK(padded.at(0, 0, 4) == 0);  // 7 - 4 = 3: one zero row before, two after
    CHECK(padded.at(0, 1, 1) == 1);  // img (0, 1)
    CHECK(padded.at(0, 2, 3) == 13);
    CHECK(padded.at(0, 4, 4) == 34);
    CHECK(padded.at(0, 5, 4) == 0);
    CHECK(padded.at(0, 6, 0) == 0);
  }

  TEST_CASE("hflip and ten_crop on a tiny image with known values") {
    const Image img = coded(2, 4, 5);
    const Image f = hflip(img);
    CHECK(f.at(1, 2, 0) == img.at(1, 2, 4));
    CHECK(f.at(0, 3, 4) == img.at(0, 3, 0));

    const std::vector<Image> v = ten_crop(img, 3);
    REQUIRE(v.size() == 10);
    CHECK(same(v[0], window(img, 0, 0, 3, 3)));  // top-left
    CHECK(same(v[1], window(img, 0, 2, 3, 3)));  // top-right
    CHECK(same(v[2], window(img, 1, 0, 3, 3)));  // bottom-left
    CHECK(same(v[3], window(img, 1, 2, 3, 3)));  // bottom-right
    CHECK(same(v[4], window(img, 0, 1, 3, 3)));  // centre: round(0.5) = 0, round(1) = 1
    for (int k = 0; k < 5; ++k) CHECK(same(v[5 + k], ten_crop(f, 3)[k]));
    CHECK(v[5].at(0, 0, 0) == 4);  // the flipped image's top-left is the original's top-right corner
    CHECK_THROWS_AS(ten_crop(img, 5), Error);
  }

  TEST_CASE("resize: sizes, identity, constants stay constant, shorter side and pad") {
    const Image img = random_image(3, 30, 40, 1);
    CHECK(same(resize(img, 30, 40), img));
    for (auto interp : {Interpolation::bilinear, Interpolation::bicubic})
      for (auto [h, w] : {std::pair{7, 11}, std::pair{64, 90}, std::pair{15, 80}}) {
        const Image r = resize(Image(3, 30, 40, 0.25f), h, w, interp);
        CHECK(r.height == h);
        CHECK(r.width == w);
        const auto [lo, hi] = std::minmax_element(r.pixels.begin(), r.pixels.end());
        CHECK(*lo == doctest::Approx(0.25).epsilon(1e-6));
        CHECK(*hi == doctest::Approx(0.25).epsilon(1e-6));
      }
    // torchvision: shorter side = size, longer = int(size * long / short).
    const Image wide = resize_shorter(Image(3, 375, 500), 256);
    CHECK(wide.height == 256);
    CHECK(wide.width == 341);
    const Image tall = resize_shorter(Image(3, 500, 375), 256);
    CHECK(tall.height == 341);
    CHECK(tall.width == 256);
    // resize_pad: longer side to 16, shorter int(16 * 6 / 10) = 9, 7 zero rows: 3 above, 4 below.
    const Image p = resize_pad(Image(3, 6, 10, 1.0f), 16);
    CHECK(p.height == 16);
    CHECK(p.width == 16);
    CHECK(p.at(0, 2, 8) == 0);
    CHECK(p.at(0, 3, 8) == doctest::Approx(1));
    CHECK(p.at(2, 11, 15) == doctest::Approx(1));
    CHECK(p.at(0, 12, 8) == 0);
  }

  TEST_CASE("gaussian_blur keeps constants and the mean of a smooth image; colour adjustments") {
    const Image flat(3, 9, 12, 0.4f);
    for (float v : gaussian_blur(flat, 7, 1.5f).pixels) CHECK(v == doctest::Approx(0.4f).epsilon(1e-6));
    CHECK_THROWS_AS(gaussian_blur(flat, 4, 1.0f), Error);

    const Image img = random_image(3, 5, 6, 2);
    const Image b = adjust_brightness(img, 1.5f);
    for (size_t i = 0; i < img.pixels.size(); ++i) CHECK(b.pixels[i] == std::min(1.5f * img.pixels[i], 1.0f));
    // Saturation 0 gives the grayscale image in every channel.
    const Image g = adjust_saturation(img, 0.0f);
    CHECK(g.at(0, 2, 3) == g.at(1, 2, 3));
    CHECK(g.at(1, 2, 3) == g.at(2, 2, 3));
    const double gray = 0.2989 * img.at(0, 2, 3) + 0.587 * img.at(1, 2, 3) + 0.114 * img.at(2, 2, 3);
    CHECK(g.at(0, 2, 3) == doctest::Approx(gray));
    // Contrast 0 gives the mean of that grayscale image everywhere.
    double mean = 0;
    for (int i = 0; i < 30; ++i) mean += g.plane(0)[i];
    const Image c = adjust_contrast(img, 0.0f);
    for (float v : c.pixels) CHECK(v == doctest::Approx(mean / 30).epsilon(1e-6));
  }

  TEST_CASE("random transforms depend only on the generator state") {
    const Image img = random_image(3, 60, 80, 3);
    for (const std::string augment : {"flip", "crop-flip", "rrc", "l2sp", "ptr"}) {
      CAPTURE(augment);
      TransformOptions o;
      o.augment = augment;
      o.input_size = 32;
      o.resize_size = 40;
      o.brightness = o.contrast = o.saturation = 0.4f;
      o.blur_p = 0.7f;
      const Pipeline p = make_train_pipeline(o);
      Generator a(7), b(7), c(8);
      const Image ra = p.run(img, a)[0], rb = p.run(img, b)[0];
      CHECK(same(ra, rb));
      CHECK(a.offset() == b.offset());
      CHECK(ra.height == 32);
      CHECK(ra.width == 32);
      // Another seed gives another sample (5 tries: one pair may coincide for `flip`).
      bool differs = false;
      for (uint64_t s = 8; s < 13 && !differs; ++s) {
        Generator other(s);
        differs = !same(p.run(img, other)[0], ra);
      }
      CHECK(differs);
      // The state, not the seed alone: continuing the stream gives a new sample.
      CHECK(!same(p.run(img, a)[0], ra));
    }
  }

  TEST_CASE("RandomResizedCrop boxes respect scale and ratio (torchvision get_params)") {
    const int H = 375, W = 500;
    Generator gen(11);
    double min_area = 1, max_area = 0, min_ratio = 10, max_ratio = 0;
    for (int n = 0; n < 5000; ++n) {
      const CropBox b = random_resized_crop_box(H, W, {0.08f, 1.0f}, {3.0f / 4, 4.0f / 3}, gen);
      REQUIRE(b.top >= 0);
      REQUIRE(b.left >= 0);
      REQUIRE(b.top + b.height <= H);
      REQUIRE(b.left + b.width <= W);
      // w = round(sqrt(T r)), h = round(sqrt(T / r)) with T in [0.08, 1] H W and r in [3/4, 4/3]:
      // undo the rounding (each side within 0.5) before comparing with the bounds.
      const double w = b.width, h = b.height, area = static_cast<double>(H) * W;
      const double slack = 0.5 * (w + h + 1) + 0.25;
      CHECK(w * h >= 0.08 * area - slack);
      CHECK(w * h <= 1.0 * area + slack);
      CHECK((w - 0.5) / (h + 0.5) <= 4.0 / 3);
      CHECK((w + 0.5) / (h - 0.5) >= 3.0 / 4);
      min_area = std::min(min_area, w * h / area), max_area = std::max(max_area, w * h / area);
      min_ratio = std::min(min_ratio, w / h), max_ratio = std::max(max_ratio, w / h);
    }
    // The draws cover the ranges (a box stuck at the whole image would pass the bounds above).
    CHECK(min_area < 0.1);
    CHECK(max_area > 0.9);
    CHECK(min_ratio < 0.8);
    CHECK(max_ratio > 1.25);

    // A fixed scale and ratio: a square of half the area.
    Generator g2(3);
    const CropBox sq = random_resized_crop_box(100, 200, {0.5f, 0.5f}, {1.0f, 1.0f}, g2);
    CHECK(sq.height == 100);
    CHECK(sq.width == 100);

    // No try fits (every box is taller than 10): ten tries of two uniforms (4 words), then the
    // centre crop with the ratio clamped to 4/3: h = 10, w = round(13.33) = 13.
    Generator g3(5);
    const CropBox fb = random_resized_crop_box(10, 100, {0.9f, 1.0f}, {3.0f / 4, 4.0f / 3}, g3);
    CHECK(fb.top == 0);
    CHECK(fb.height == 10);
    CHECK(fb.width == 13);
    CHECK(fb.left == 43);
    CHECK(g3.offset() == 40);
  }

  TEST_CASE("horizontal flip happens with probability p") {
    const Image img = random_image(3, 6, 6, 4);
    const Image flipped = hflip(img);
    for (float p : {0.0f, 0.2f, 0.5f, 1.0f}) {
      CAPTURE(p);
      TransformOptions o = identity_norm({});
      o.augment = "flip";
      o.input_size = 6;
      o.flip_p = p;
      const Pipeline pipe = make_train_pipeline(o);
      Generator gen(21);
      int flips = 0;
      const int n = 2000;
      for (int k = 0; k < n; ++k) {
        const Image out = pipe.run(img, gen)[0];
        if (same(out, flipped)) ++flips;
        else REQUIRE(same(out, img));
      }
      // Binomial standard deviation <= sqrt(0.25 / 2000) = 0.011; allow 4 of them.
      CHECK(std::abs(static_cast<double>(flips) / n - p) <= 0.045);
    }
  }

  TEST_CASE("colour jitter scales brightness by one factor in [1 - s, 1 + s]") {
    const Image img = random_image(3, 8, 8, 5);  // 1.4 x clamps values above 1 / 1.4: check those below 0.7
    TransformOptions o = identity_norm({});
    o.augment = "none";
    o.input_size = 8;
    o.brightness = 0.4f;
    const Pipeline pipe = make_train_pipeline(o);
    for (uint64_t seed = 0; seed < 20; ++seed) {
      Generator gen(seed);
      const Image out = pipe.run(img, gen)[0];
      const size_t first = std::find_if(img.pixels.begin(), img.pixels.end(), [](float v) { return v < 0.7f; }) -
                           img.pixels.begin();
      const double f = out.pixels[first] / img.pixels[first];
      CHECK(f >= 0.6 - 1e-6);
      CHECK(f <= 1.4 + 1e-6);
      for (size_t i = 0; i < img.pixels.size(); ++i)
        if (img.pixels[i] < 0.7f) CHECK(out.pixels[i] == doctest::Approx(f * img.pixels[i]).epsilon(1e-5));
    }
  }

  TEST_CASE("augment none: only normalisation at input_size, a plain resize otherwise") {
    TransformOptions o;
    o.augment = "none";
    o.input_size = 8;
    o.mean = {0.5f, 0.25f, 0.125f};
    o.std = {0.5f, 2.0f, 0.25f};
    const Image img = random_image(3, 8, 8, 6);
    for (const Pipeline& p : {make_train_pipeline(o), make_eval_pipeline(o)}) {
      Generator gen(1);
      const std::vector<Image> out = p.run(img, gen);
      REQUIRE(out.size() == 1);
      CHECK(gen.offset() == 0);  // nothing random
      for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 64; ++i) CHECK(out[0].plane(c)[i] == (img.plane(c)[i] - o.mean[c]) / o.std[c]);
      // Another size is resized to input_size x input_size (aspect not kept), then normalised.
      Image other = resize(random_image(3, 12, 20, 7), 8, 8);
      normalize(other, o.mean, o.std);
      CHECK(same(p.run(random_image(3, 12, 20, 7), gen)[0], other));
    }
    // mean_subtract (L2-SP): the training mean only, no scaling.
    o.mean_subtract = true;
    o.train_mean = {0.1f, 0.2f, 0.3f};
    Generator gen(1);
    const Image m = make_train_pipeline(o).run(img, gen)[0];
    CHECK(m.at(2, 3, 4) == img.at(2, 3, 4) - 0.3f);
  }

  TEST_CASE("evaluation pipelines: centre crop, ten crop, PtR resize-pad") {
    TransformOptions o = identity_norm({});
    o.augment = "crop-flip";
    o.input_size = 16;
    o.resize_size = 20;
    const Image img = random_image(3, 30, 40, 8);
    Generator gen(0);
    const Image resized = resize_shorter(img, 20);  // 20 x 26
    const std::vector<Image> one = make_eval_pipeline(o).run(img, gen);
    REQUIRE(one.size() == 1);
    CHECK(same(one[0], center_crop(resized, 16, 16)));

    o.ten_crop = true;
    const Pipeline ten = make_eval_pipeline(o);
    CHECK(ten.views() == 10);
    const std::vector<Image> views = ten.run(img, gen);
    REQUIRE(views.size() == 10);
    const std::vector<Image> want = ten_crop(resized, 16);
    for (int k = 0; k < 10; ++k) CHECK(same(views[k], want[k]));

    o.ten_crop = false;
    o.augment = "ptr";
    CHECK(same(make_eval_pipeline(o).run(img, gen)[0], center_crop(resize_pad(img, 20), 16, 16)));
    CHECK(gen.offset() == 0);
  }

  TEST_CASE("describe() names every step") {
    TransformOptions o;
    CHECK(make_train_pipeline(o).describe() ==
          "RandomResizedCrop(224, scale=(0.08, 1), ratio=(0.75, 1.33)) -> RandomHorizontalFlip(p=0.5) -> "
          "Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))");
    CHECK(make_eval_pipeline(o).describe() ==
          "ResizeShorter(256, bilinear) -> CenterCrop(224) -> "
          "Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))");
    o.augment = "l2sp";
    o.mean_subtract = true;
    o.brightness = 0.4f;
    const std::string d = make_train_pipeline(o).describe();
    CHECK(d.find("RandomCrop(224)") != std::string::npos);
    CHECK(d.find("RandomGaussianBlur(p=0.5, sigma=(0.1, 2)") != std::string::npos);
    CHECK(d.find("ColorJitter(brightness=0.4, contrast=0, saturation=0)") != std::string::npos);
    CHECK(d.find("SubtractMean(mean=(0, 0, 0))") != std::string::npos);
  }

  TEST_CASE("Pipeline::run checks that every view has the same shape") {
    struct TwoSizes : Transform {
      Image apply(Image img, Generator&) const override { return img; }
      int views() const override { return 2; }
      std::vector<Image> expand(Image img, Generator&) const override { return {img, crop(img, 0, 0, 1, 1)}; }
      std::string describe() const override { return "TwoSizes"; }
    };
    Pipeline p;
    p.add(std::make_shared<TwoSizes>());
    Generator gen(0);
    CHECK(error_of([&] { p.run(Image(3, 4, 4), gen); }).find("differ in shape") != std::string::npos);
  }

  TEST_CASE("bad options give an error naming the option") {
    struct Bad {
      const char* option;
      std::function<void(TransformOptions&)> set;
      bool train = true;
    };
    const std::vector<Bad> bad{
        {"augment", [](auto& o) { o.augment = "mixup"; }},
        {"input_size", [](auto& o) { o.input_size = 0; }},
        {"resize_size", [](auto& o) { o.resize_size = -1; }},
        {"resize_size", [](auto& o) { o.augment = "crop-flip", o.resize_size = 100; }},
        {"resize_size", [](auto& o) { o.resize_size = 100; }, false},
        {"scale", [](auto& o) { o.scale = {0.9f, 0.1f}; }},
        {"scale", [](auto& o) { o.scale = {0.0f, 1.0f}; }},
        {"ratio", [](auto& o) { o.ratio = {2.0f, 0.5f}; }},
        {"flip_p", [](auto& o) { o.flip_p = 1.5f; }},
        {"blur_p", [](auto& o) { o.blur_p = -0.1f; }},
        {"blur_sigma", [](auto& o) { o.blur_sigma = {2.0f, 0.5f}; }},
        {"brightness", [](auto& o) { o.brightness = -1; }},
        {"contrast", [](auto& o) { o.contrast = NAN; }},
        {"saturation", [](auto& o) { o.saturation = -0.5f; }},
        {"std", [](auto& o) { o.std = {0.2f, 0.0f, 0.2f}; }},
        {"std", [](auto& o) { o.std = {0.2f, 0.2f, 0.0f}; }, false},
        {"ten_crop", [](auto& o) { o.ten_crop = true; }},
        {"ten_crop", [](auto& o) { o.augment = "none", o.ten_crop = true; }, false},
    };
    for (const Bad& b : bad) {
      CAPTURE(b.option);
      TransformOptions o;
      b.set(o);
      const std::string what = error_of([&] { b.train ? make_train_pipeline(o) : make_eval_pipeline(o); });
      INFO(what);
      CHECK(what.find(b.option) != std::string::npos);
    }
    CHECK(error_of([] { parse_interpolation("nearest"); }).find("interpolation") != std::string::npos);
    CHECK(parse_interpolation("bicubic") == Interpolation::bicubic);
    CHECK(error_of([] { resize(Image(3, 4, 4), 0, 4); }).find("resize") != std::string::npos);
    CHECK(error_of([] { resize_shorter(Image(3, 4, 4), -2); }).find("resize_shorter") != std::string::npos);
    CHECK(error_of([] { Image i(3, 2, 2); normalize(i, {0, 0, 0}, {1, 0, 1}); }).find("std") != std::string::npos);
    CHECK(error_of([] { adjust_contrast(Image(3, 2, 2), -1); }).find("adjust_contrast") != std::string::npos);
    CHECK(error_of([] {
            Generator g(0);
            random_resized_crop_box(10, 10, {0.1f, 1.0f}, {0.0f, 1.0f}, g);
          }).find("ratio") != std::string::npos);
    // A crop protocol needs images at least input_size after the resize.
    TransformOptions o;
    o.augment = "crop-flip";
    o.input_size = 8;
    o.resize_size = 8;
    Generator gen(0);
    CHECK(make_train_pipeline(o).run(Image(3, 8, 8), gen)[0].width == 8);
    CHECK(augment_names().size() == 6);
  }
}
