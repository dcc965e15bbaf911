// The loader: bitwise determinism across worker counts, epochs and resume, drop_last, bad
// files (skip and error), exceptions, early destruction, multi-view batches, channel_mean.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "data/loader.h"
#include "tests/data/image_files.h"
#include "tests/test_util.h"

using namespace tether;
using namespace tether::data;

namespace {

// In-memory samples: image i is 3 x (4 + i % 3) x (5 + i % 2) (sizes differ on purpose),
// pixel values a function of i; some indices fail to "decode", one may throw another error.
class MemDataset : public Dataset {
 public:
  explicit MemDataset(int64_t n, int64_t k = 3) : n_(n), k_(k) {}
  std::set<int64_t> bad, boom;
  int sleep_us = 0;
  bool same_size = false;
  mutable std::atomic<int64_t> loads{0};

  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return i % k_; }
  Image load(int64_t i) const override {
    ++loads;
    if (sleep_us) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    if (bad.count(i)) throw DecodeError("cannot decode '" + describe(i) + "': synthetic corruption");
    if (boom.count(i)) throw std::runtime_error("boom at " + std::to_string(i));
    Image img(3, same_size ? 4 : 4 + static_cast<int>(i % 3), same_size ? 5 : 5 + static_cast<int>(i % 2));
    for (size_t j = 0; j < img.pixels.size(); ++j) img.pixels[j] = static_cast<float>(i) + 0.001f * j;
    return img;
  }
  std::string describe(int64_t i) const override { return std::string("mem[").append(std::to_string(i)).append("]"); }
  int64_t num_classes() const override { return k_; }

 private:
  int64_t n_, k_;
};

// Nearest-neighbour resize to a fixed size, so every batch has one shape.
class NearestResize : public Transform {
 public:
  explicit NearestResize(int size) : size_(size) {}
  Image apply(Image img, Generator&) const override {
    Image out(img.channels, size_, size_);
    for (int c = 0; c < img.channels; ++c)
      for (int y = 0; y < size_; ++y)
        for (int x = 0; x < size_; ++x) out.at(c, y, x) = img.at(c, y * img.height / size_, x * img.width / size_);
    return out;
  }
  std::string describe() const override { return "NearestResize(" + std::to_string(size_) + ")"; }

 private:
  int size_;
};

// Writes two draws of the sample's Generator into pixels: proves per-sample generators.
class RandomPixel : public Transform {
 public:
  Image apply(Image img, Generator& gen) const override {
    img.at(0, 0, 0) = static_cast<float>(gen.next_uniform());
    img.at(1, 0, 0) = static_cast<float>(gen.next_u32() % 1000);
    return img;
  }
  std::string describe() const override { return "RandomPixel"; }
};

// Two views per sample: the image and its negative.
class TwoViews : public Transform {
 public:
  Image apply(Image img, Generator&) const override { return img; }
  int views() const override { return 2; }
  std::vector<Image> expand(Image img, Generator&) const override {
    Image neg = img;
    for (float& v : neg.pixels) v = -v;
    return {img, neg};
  }
  std::string describe() const override { return "TwoViews"; }
};

class Throwing : public Transform {
 public:
  Image apply(Image img, Generator&) const override {
    if (img.at(0, 1, 1) >= 20 && img.at(0, 1, 1) < 21) throw std::logic_error("transform failed on sample 20");
    return img;
  }
  std::string describe() const override { return "Throwing"; }
};

Pipeline random_pipeline(int size = 4) {
  Pipeline p;
  p.add(std::make_shared<NearestResize>(size)).add(std::make_shared<RandomPixel>());
  return p;
}

std::vector<Batch> epoch_batches(Loader& loader, int64_t epoch, int64_t skip = 0) {
  loader.start_epoch(epoch, skip);
  std::vector<Batch> batches;
  for (Batch b; loader.next(b);) batches.push_back(std::move(b));
  return batches;
}

void check_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    CAPTURE(k);
    CHECK(a[k].indices == b[k].indices);
    CHECK(a[k].views == b[k].views);
    REQUIRE(a[k].images.shape() == b[k].images.shape());
    CHECK(a[k].images.to_vector<float>() == b[k].images.to_vector<float>());  // bitwise
    CHECK(a[k].labels.to_vector<int64_t>() == b[k].labels.to_vector<int64_t>());
  }
}

std::vector<int64_t> all_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> all;
  for (const Batch& b : batches) all.insert(all.end(), b.indices.begin(), b.indices.end());
  return all;
}

// Captures what is written to stderr (fd 2) while it lives.
class StderrCapture {
 public:
  StderrCapture() : path_(std::filesystem::temp_directory_path() / ("tether_stderr_" + std::to_string(getpid()))) {
    std::fflush(stderr);
    saved_ = dup(2);
    FILE* f = std::fopen(path_.c_str(), "w");
    dup2(fileno(f), 2);
    std::fclose(f);
  }
  std::string finish() {
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    std::ifstream in(path_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(path_);
    return text;
  }

 private:
  std::filesystem::path path_;
  int saved_ = -1;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_SUITE("data") {

TEST_CASE("loader: batches are bitwise identical for 0, 1, 2 and 4 workers") {
  auto ds = std::make_shared<MemDataset>(53);
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 2, 4}) {
    Loader loader(ds, random_pipeline(), {.batch_size = 7, .shuffle = true, .drop_last = false, .workers = workers, .seed = 11});
    CHECK(loader.batches_per_epoch() == 8);
    runs.push_back(epoch_batches(loader, 3));
  }
  for (size_t r = 1; r < runs.size(); ++r) check_same(runs[0], runs[r]);
  // Every sample once; the transform's draws differ between samples.
  std::vector<int64_t> all = all_indices(runs[0]);
  CHECK(std::set<int64_t>(all.begin(), all.end()).size() == 53);
  const Batch& b = runs[0][0];
  CHECK(b.images.shape() == Shape{7, 3, 4, 4});
  CHECK(b.labels.shape() == Shape{7});
  const float* px = b.images.data<float>();
  CHECK(px[0] != px[3 * 16]);  // RandomPixel of samples 0 and 1
  for (int64_t s = 0; s < b.size(); ++s) {
    CHECK(b.labels.data<int64_t>()[s] == b.indices[s] % 3);
    CHECK(px[s * 48 + 2 * 16 + 5] == ds->load(b.indices[s]).at(2, 1, 1));  // an untouched pixel: the right sample
  }
}

TEST_CASE("loader: shuffle differs across epochs, reproducible from (seed, epoch)") {
  auto ds = std::make_shared<MemDataset>(40);
  LoaderOptions opt{.batch_size = 8, .shuffle = true, .workers = 2, .seed = 5};
  Loader a(ds, random_pipeline(), opt), b(ds, random_pipeline(), opt);
  const auto e0 = epoch_batches(a, 0), e1 = epoch_batches(a, 1), e0_again = epoch_batches(a, 0);
  check_same(e0, e0_again);
  check_same(e1, epoch_batches(b, 1));  // another loader, epoch 1 straight away
  CHECK(all_indices(e0) != all_indices(e1));
  std::vector<int64_t> sorted = all_indices(e0);
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> identity(40);
  for (int64_t i = 0; i < 40; ++i) identity[i] = i;
  CHECK(sorted == identity);
  CHECK(all_indices(e0) != identity);
  opt.seed = 6;
  Loader c(ds, random_pipeline(), opt);
  CHECK(all_indices(epoch_batches(c, 0)) != all_indices(e0));
  // The same sample gets other random draws in another epoch (augmentation varies).
  auto value_of = [](const std::vector<Batch>& batches, int64_t index) {
    for (const Batch& bt : batches)
      for (int64_t s = 0; s < bt.size(); ++s)
        if (bt.indices[s] == index) return bt.images.data<float>()[s * 48];
    return -1.0f;
  };
  CHECK(value_of(e0, 7) != value_of(e1, 7));
}

TEST_CASE("loader: shuffle off gives dataset order; drop_last") {
  auto ds = std::make_shared<MemDataset>(50);
  for (bool drop_last : {true, false}) {
    CAPTURE(drop_last);
    Loader loader(ds, random_pipeline(), {.batch_size = 8, .shuffle = false, .drop_last = drop_last, .workers = 2});
    CHECK(loader.batches_per_epoch() == (drop_last ? 6 : 7));
    const auto batches = epoch_batches(loader, 4);
    REQUIRE(batches.size() == (drop_last ? 6u : 7u));
    const std::vector<int64_t> all = all_indices(batches);
    REQUIRE(all.size() == (drop_last ? 48u : 50u));
    for (size_t i = 0; i < all.size(); ++i) CHECK(all[i] == static_cast<int64_t>(i));
    CHECK(batches.back().size() == (drop_last ? 8 : 2));
    CHECK(loader.epoch_report().samples == static_cast<int64_t>(all.size()));
  }
  Loader small(std::make_shared<MemDataset>(5), random_pipeline(), {.batch_size = 8, .drop_last = true});
  CHECK(small.batches_per_epoch() == 0);
  Batch b;
  small.start_epoch(0);
  CHECK_FALSE(small.next(b));
}

TEST_CASE("loader: start_epoch(e, skip) gives the tail of the full epoch") {
  auto ds = std::make_shared<MemDataset>(61);
  LoaderOptions opt{.batch_size = 6, .shuffle = true, .drop_last = true, .workers = 2, .seed = 9};
  Loader full(ds, random_pipeline(), opt), resumed(ds, random_pipeline(), opt);
  const auto all = epoch_batches(full, 2);
  REQUIRE(all.size() == 10);
  const auto tail = epoch_batches(resumed, 2, 3);
  check_same(std::vector<Batch>(all.begin() + 3, all.end()), tail);
  CHECK(epoch_batches(resumed, 2, 99).empty());
  // Restarting in the middle of an epoch discards the batches already prefetched.
  resumed.start_epoch(1);
  Batch b;
  REQUIRE(resumed.next(b));
  const auto again = epoch_batches(resumed, 2, 3);
  check_same(tail, again);
}

TEST_CASE("loader: bad files are skipped, counted, reported and warned about once") {
  auto ds = std::make_shared<MemDataset>(40);
  ds->bad = {3, 4, 10, 16, 17, 18, 19, 20, 21, 22, 23};  // batch 2 (16..23) is entirely bad
  Loader loader(ds, random_pipeline(), {.batch_size = 8, .shuffle = false, .drop_last = true, .workers = 2});
  StderrCapture capture;
  const auto e0 = epoch_batches(loader, 0);
  const EpochReport report = loader.epoch_report();
  const auto e1 = epoch_batches(loader, 1);
  const std::string err = capture.finish();
  REQUIRE(e0.size() == 4);  // 5 batches, one of them empty
  CHECK(e0[0].size() == 6);
  CHECK(e0[0].images.shape()[0] == 6);
  CHECK(e0[1].size() == 7);
  CHECK(e0[2].indices.front() == 24);
  CHECK(report.skipped == 11);
  CHECK(report.samples == 29);
  CHECK(report.bad_files.size() == 11);
  CHECK(report.bad_files[0] == "mem[3]");
  CHECK(loader.epoch_report().skipped == 11);  // counted again in epoch 1...
  CHECK(count_of(err, "warning: skipping unreadable image 'mem[3]': synthetic corruption\n") == 1);  // ...warned once
  CHECK(count_of(err, "warning: skipping unreadable image") == 11);
  CHECK(e1.size() == 4);
}

TEST_CASE("loader: on_bad_image error rethrows the DecodeError naming the file") {
  auto ds = std::make_shared<MemDataset>(40);
  ds->bad = {13};
  for (int workers : {0, 2}) {
    CAPTURE(workers);
    Loader loader(ds, random_pipeline(), {.batch_size = 8, .shuffle = false, .workers = workers, .on_bad_image = OnBadImage::error});
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
    std::string msg;
    try {
      loader.next(b);
    } catch (const DecodeError& e) {
      msg = e.what();
    }
    CHECK(msg.find("mem[13]") != std::string::npos);
    CHECK(loader.next(b));  // the loader goes on with the next batch
    CHECK(b.indices.front() == 16);
  }
  CHECK(parse_on_bad_image("skip") == OnBadImage::skip);
  CHECK(parse_on_bad_image("error") == OnBadImage::error);
  CHECK_THROWS_AS(parse_on_bad_image("ignore"), Error);
}

TEST_CASE("loader: other exceptions from datasets and transforms reach next()") {
  auto ds = std::make_shared<MemDataset>(40);
  ds->boom = {11};
  for (int workers : {0, 1, 3}) {
    CAPTURE(workers);
    Loader loader(ds, random_pipeline(), {.batch_size = 8, .shuffle = false, .workers = workers});
    loader.start_epoch(0);
    Batch b;
    CHECK(loader.next(b));
    CHECK_THROWS_WITH_AS(loader.next(b), "boom at 11", std::runtime_error);
  }
  auto fine = std::make_shared<MemDataset>(40);
  fine->same_size = true;
  Pipeline p;
  p.add(std::make_shared<Throwing>());
  Loader loader(fine, p, {.batch_size = 8, .shuffle = false, .workers = 2});
  loader.start_epoch(0);
  Batch b;
  CHECK(loader.next(b));
  CHECK(loader.next(b));
  CHECK_THROWS_AS(loader.next(b), std::logic_error);
}

TEST_CASE("loader: destroying a loader mid-epoch joins promptly") {
  auto ds = std::make_shared<MemDataset>(100000);
  ds->sleep_us = 200;
  const auto start = std::chrono::steady_clock::now();
  {
    Loader loader(ds, random_pipeline(), {.batch_size = 64, .workers = 3, .prefetch = 4});
    loader.start_epoch(0);
    Batch b;
    REQUIRE(loader.next(b));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 3.0);
  CHECK(ds->loads.load() < 64 * 14);  // the window (3 workers x 4) bounds the work done
  // A loader that never started, and one destroyed before its first batch.
  { Loader idle(ds, random_pipeline(), {.workers = 2}); }
  {
    Loader started(ds, random_pipeline(), {.workers = 2});
    started.start_epoch(0);
  }
}

TEST_CASE("loader: multi-view pipelines give [n * views, 3, H, W] sample-major") {
  auto ds = std::make_shared<MemDataset>(10);
  Pipeline p;
  p.add(std::make_shared<NearestResize>(3)).add(std::make_shared<TwoViews>());
  Loader loader(ds, p, {.batch_size = 4, .shuffle = true, .workers = 2, .seed = 1});
  loader.start_epoch(0);
  Batch b;
  REQUIRE(loader.next(b));
  CHECK(b.views == 2);
  CHECK(b.size() == 4);
  REQUIRE(b.images.shape() == Shape{8, 3, 3, 3});
  const float* px = b.images.data<float>();
  for (int64_t s = 0; s < 4; ++s) {
    CHECK(px[(2 * s) * 27] == static_cast<float>(b.indices[s]));  // view 0, pixel (0, 0, 0): the sample's
    CHECK(px[(2 * s + 1) * 27 + 5] == -px[(2 * s) * 27 + 5]);      // view 1: its negative
  }
}

TEST_CASE("loader: a batch of mixed shapes is an Error naming the samples and shapes") {
  auto ds = std::make_shared<MemDataset>(10);
  Loader loader(ds, Pipeline(), {.batch_size = 4, .shuffle = false, .workers = 1});
  loader.start_epoch(0);
  Batch b;
  std::string msg;
  try {
    loader.next(b);
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO(msg);
  CHECK(msg.find("'mem[1]' is 3x5x6") != std::string::npos);
  CHECK(msg.find("'mem[0]' is 3x4x5") != std::string::npos);
  CHECK(msg.find("input size") != std::string::npos);
}

TEST_CASE("loader: batch images come from options.allocate") {
  auto ds = std::make_shared<MemDataset>(20);
  std::atomic<int> calls{0};
  LoaderOptions opt{.batch_size = 5, .workers = 2};
  opt.allocate = [&](const Shape& shape, DType dtype) {
    ++calls;
    return Tensor::empty(shape, dtype);
  };
  Loader loader(ds, random_pipeline(), opt);
  CHECK(epoch_batches(loader, 0).size() == 4);
  CHECK(calls.load() == 4);
  opt.allocate = [](const Shape& shape, DType) { return Tensor::empty(shape, DType::f64); };
  Loader wrong(ds, random_pipeline(), opt);
  wrong.start_epoch(0);
  Batch b;
  CHECK_THROWS_AS(wrong.next(b), Error);
}

TEST_CASE("loader: an ImageFolder with a corrupt file") {
  tether::testing::TempDir dir;
  for (int i = 0; i < 6; ++i) {
    const std::string rel = std::string(i % 2 ? "c1/" : "c0/").append(std::to_string(i)).append(".png");
    tether::testing::write_png(dir.file(rel), 4, 4, 3, tether::testing::test_pattern(4, 4, 3, i));
  }
  tether::testing::write_file(dir.file("c1/broken.png"), {0x89, 'P', 'N', 'G', 1, 2, 3});
  auto ds = image_folder(dir.str());
  Loader loader(ds, Pipeline(), {.batch_size = 7, .drop_last = false, .workers = 2});
  StderrCapture capture;
  const auto batches = epoch_batches(loader, 0);
  const std::string err = capture.finish();
  REQUIRE(batches.size() == 1);
  CHECK(batches[0].size() == 6);
  REQUIRE(loader.epoch_report().bad_files.size() == 1);
  CHECK(loader.epoch_report().bad_files[0] == dir.str() + "/c1/broken.png");
  CHECK(err.find("warning: skipping unreadable image '" + dir.str() + "/c1/broken.png': ") != std::string::npos);
}

TEST_CASE("channel_mean: per-image channel means averaged; worker count and sampling") {
  auto ds = std::make_shared<MemDataset>(9);
  ds->same_size = true;
  // image i: pixel j = i + 0.001 j over 3 x 4 x 5; channel c covers j in [20c, 20c + 20)
  auto expect = [](const std::vector<int64_t>& idx, int c) {
    double s = 0;
    for (int64_t i : idx) s += static_cast<double>(i) + 0.001 * (20 * c + 9.5);
    return s / static_cast<double>(idx.size());
  };
  const std::vector<int64_t> all{0, 1, 2, 3, 4, 5, 6, 7, 8};
  const auto m1 = channel_mean(*ds, 0, 0, 1), m3 = channel_mean(*ds, 0, 0, 3);
  CHECK(m1 == m3);
  for (int c = 0; c < 3; ++c) CHECK(m1[c] == doctest::Approx(expect(all, c)).epsilon(1e-6));
  const auto part = channel_mean(*ds, 4, 2, 2);
  CHECK(part == channel_mean(*ds, 4, 2, 1));
  CHECK(part != m1);
  ds->bad = {0};
  StderrCapture capture;
  const auto skipped = channel_mean(*ds, 0, 0, 2);
  capture.finish();
  CHECK(skipped[0] == doctest::Approx(expect({1, 2, 3, 4, 5, 6, 7, 8}, 0)).epsilon(1e-6));
}

}  // TEST_SUITE
