// Datasets (ImageFolder, list files, IDX, subsets) and the protocol samplers.
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <thread>

#include "data/dataset.h"
#include "tests/data/image_files.h"
#include "tests/test_util.h"

using namespace tether;
using tether::testing::error_of;
using namespace tether::data;
using tether::testing::TempDir;

namespace {

// A 2x2 PNG whose red value identifies it (value / 255).
void write_tagged_png(const std::string& path, int value) {
  std::vector<uint8_t> px(2 * 2 * 3, 0);
  for (size_t i = 0; i < px.size(); i += 3) px[i] = static_cast<uint8_t>(value);
  tether::testing::write_png(path, 2, 2, 3, px);
}
int tag_of(const Image& img) { return static_cast<int>(std::lround(img.at(0, 0, 0) * 255)); }

// Labels only (the samplers never load images).
class LabelDataset : public Dataset {
 public:
  LabelDataset(std::vector<int64_t> labels, int64_t k) : labels_(std::move(labels)), k_(k) {}
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int64_t label(int64_t i) const override { return labels_.at(i); }
  Image load(int64_t) const override { return Image(3, 1, 1); }
  std::string describe(int64_t i) const override { return std::string("s").append(std::to_string(i)); }
  int64_t num_classes() const override { return k_; }

 private:
  std::vector<int64_t> labels_;
  int64_t k_;
};

// Class c has 10 + 3c samples, interleaved (labels 0,1,2,..,0,1,...) so dataset order matters.
LabelDataset uneven_dataset(int64_t k) {
  std::vector<int64_t> labels;
  std::vector<int64_t> left(k);
  for (int64_t c = 0; c < k; ++c) left[c] = 10 + 3 * c;
  for (bool any = true; any;) {
    any = false;
    for (int64_t c = 0; c < k; ++c)
      if (left[c]-- > 0) labels.push_back(c), any = true;
  }
  return LabelDataset(labels, k);
}

std::vector<int64_t> count_per_class(const Dataset& ds, const std::vector<int64_t>& idx) {
  std::vector<int64_t> n(ds.num_classes(), 0);
  for (int64_t i : idx) ++n[ds.label(i)];
  return n;
}

bool disjoint(std::vector<int64_t> a, std::vector<int64_t> b) {
  std::vector<int64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return both.empty();
}

// Sets an environment variable for a scope.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) { setenv(name.c_str(), value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name.c_str()); }
};

}  // namespace

TEST_SUITE("data") {

TEST_CASE("ImageFolder: byte-wise class and file order, labels, recursion, extensions") {
  TempDir dir;
  // Byte-wise: "B" (0x42) < "_x" (0x5F) < "a" (0x61); a locale sort would put "a" or "_x" first.
  // Files: "10" < "9" < "A" < "_c" < "b"; sub/ after the class folder's own files.
  int tag = 1;
  std::vector<std::pair<std::string, int>> expected;  // path, label in SPEC 9 order
  for (auto [cls, label] : {std::pair<std::string, int>{"B", 0}, {"_x", 1}, {"a", 2}})
    for (const char* f : {"10.png", "9.png", "A.PNG", "_c.png", "b.png", "sub/z.png"}) {
      const std::string path = dir.file("train/" + cls + "/" + f);
      write_tagged_png(path, tag++);
      expected.emplace_back(path, label);
    }
  std::ofstream(dir.file("train/a/notes.txt")) << "not an image";
  std::ofstream(dir.file("train/README")) << "a file beside the class folders is ignored";

  const auto ds = image_folder(dir.str() + "/train");
  CHECK(ds->class_names() == std::vector<std::string>{"B", "_x", "a"});
  CHECK(ds->num_classes() == 3);
  REQUIRE(ds->size() == static_cast<int64_t>(expected.size()));
  // Sorted file names within a class folder: 10.png 9.png A.PNG _c.png b.png, then sub/z.png.
  for (int64_t i = 0; i < ds->size(); ++i) {
    CAPTURE(i);
    CHECK(ds->describe(i) == expected[i].first);
    CHECK(ds->label(i) == expected[i].second);
    CHECK(tag_of(ds->load(i)) == i + 1);
  }
}

TEST_CASE("ImageFolder: errors name the path") {
  TempDir dir;
  CHECK(error_of([&] { image_folder(dir.str() + "/nope"); }).find(dir.str() + "/nope") != std::string::npos);
  std::ofstream(dir.file("flat/x.png")) << "x";
  CHECK(error_of([&] { image_folder(dir.str() + "/flat"); }).find("no class folders") != std::string::npos);
  write_tagged_png(dir.file("d/cat/1.png"), 1);
  std::filesystem::create_directories(dir.str() + "/d/dog");
  std::ofstream(dir.file("d/dog/readme.txt")) << "no images here";
  const std::string msg = error_of([&] { image_folder(dir.str() + "/d"); });
  CHECK(msg.find(dir.str() + "/d/dog") != std::string::npos);
  CHECK(msg.find("no image files") != std::string::npos);
}

TEST_CASE("image_folder_split: train, val falling back to test, error naming both") {
  TempDir dir;
  write_tagged_png(dir.file("r/train/c/1.png"), 1);
  write_tagged_png(dir.file("r/test/c/1.png"), 2);
  write_tagged_png(dir.file("r/test/c/2.png"), 3);
  CHECK(image_folder_split(dir.str() + "/r", "train")->size() == 1);
  CHECK(image_folder_split(dir.str() + "/r", "val")->size() == 2);
  CHECK(image_folder_split(dir.str() + "/r", "test")->size() == 2);
  write_tagged_png(dir.file("r/val/c/1.png"), 4);
  CHECK(tag_of(image_folder_split(dir.str() + "/r", "val")->load(0)) == 4);
  write_tagged_png(dir.file("s/train/c/1.png"), 1);
  const std::string msg = error_of([&] { image_folder_split(dir.str() + "/s", "val"); });
  CHECK(msg.find(dir.str() + "/s/val") != std::string::npos);
  CHECK(msg.find(dir.str() + "/s/test") != std::string::npos);
}

TEST_CASE("list_file: paths, labels, comments; errors with file:line") {
  TempDir dir;
  write_tagged_png(dir.file("img/a.png"), 1);
  write_tagged_png(dir.file("img/with space.png"), 2);
  write_tagged_png(dir.file("img/c.png"), 3);
  const std::string list = dir.file("list.txt");
  std::ofstream(list) << "# path label\n"
                      << "a.png 2\n"
                      << "\n"
                      << "with space.png\t0\r\n"
                      << "  c.png   1  \n";
  const auto ds = list_file(list, dir.str() + "/img");
  REQUIRE(ds->size() == 3);
  CHECK(ds->num_classes() == 3);
  CHECK(ds->label(0) == 2);
  CHECK(ds->label(1) == 0);
  CHECK(ds->label(2) == 1);
  CHECK(tag_of(ds->load(1)) == 2);
  CHECK(ds->describe(2) == dir.str() + "/img/c.png");
  CHECK(list_file(list, dir.str() + "/img", 5)->num_classes() == 5);

  auto check_error = [&](const std::string& content, const std::string& where, const std::string& what,
                         int64_t num_classes = 0) {
    std::ofstream(list) << content;
    const std::string msg = error_of([&] { list_file(list, dir.str() + "/img", num_classes); });
    INFO(msg);
    CHECK(msg.find(list + ":" + where) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  };
  check_error("a.png 0\n# c\nmissing.png 1\n", "3:", "missing.png");
  check_error("a.png 0\nc.png 5\n", "2:", "out of range", 3);
  check_error("a.png 0\nc.png\n", "2:", "expected 'path label'");
  check_error("a.png 0\nc.png x1\n", "2:", "not an integer");
  check_error("a.png\n", "1:", "expected 'path label'");
  check_error("a.png -1\n", "1:", "negative");
}

TEST_CASE("IDX: raw and gzip'd files round-trip; validation errors name the file") {
  TempDir dir;
  const uint32_t n = 3, h = 2, w = 3;
  std::vector<uint8_t> pixels(n * h * w);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 12);
  const std::vector<uint8_t> images = tether::testing::encode_idx({n, h, w}, pixels);
  const std::vector<uint8_t> labels = tether::testing::encode_idx({n}, {7, 0, 3});
  tether::testing::write_file(dir.file("img.idx"), images);
  tether::testing::write_file(dir.file("lab.idx"), labels);
  tether::testing::write_gzip(dir.file("img.idx.gz"), images);
  tether::testing::write_gzip(dir.file("lab.idx.gz"), labels);
  for (const char* ext : {"", ".gz"}) {
    CAPTURE(ext);
    const auto ds = idx_dataset(dir.str() + "/img.idx" + ext, dir.str() + "/lab.idx" + ext);
    REQUIRE(ds->size() == 3);
    CHECK(ds->num_classes() == 10);
    CHECK(ds->label(0) == 7);
    CHECK(ds->label(2) == 3);
    const Image img = ds->load(1);
    CHECK(img.channels == 3);
    CHECK(img.height == 2);
    CHECK(img.width == 3);
    for (int c = 0; c < 3; ++c) CHECK(img.at(c, 1, 2) == static_cast<float>((6 + 5) * 12) / 255.0f);
    CHECK(ds->describe(2) == std::string("img.idx") + ext + "[2]");
  }

  auto check_error = [&](const std::vector<uint8_t>& img_bytes, const std::vector<uint8_t>& lab_bytes, bool gz,
                         const std::string& what, int64_t k = 10) {
    const std::string ip = dir.file(gz ? "bad_img.gz" : "bad_img"), lp = dir.file("bad_lab");
    if (gz) tether::testing::write_gzip(ip, img_bytes);
    else tether::testing::write_file(ip, img_bytes);
    tether::testing::write_file(lp, lab_bytes);
    const std::string msg = error_of([&] { idx_dataset(ip, lp, k); });
    INFO(msg);
    CHECK(msg.find(what) != std::string::npos);
    return msg;
  };
  const std::vector<uint8_t> cut(images.begin(), images.end() - 5);
  CHECK(check_error(cut, labels, false, "truncated").find("bad_img") != std::string::npos);
  CHECK(check_error(cut, labels, true, "truncated").find("bad_img.gz") != std::string::npos);
  std::vector<uint8_t> longer = images;
  longer.push_back(1);
  check_error(longer, labels, false, "unexpected bytes");
  check_error(labels, labels, false, "dimensions");  // a label file given as images
  std::vector<uint8_t> bad_magic = images;
  bad_magic[2] = 0x0D;  // float data
  check_error(bad_magic, labels, false, "magic");
  check_error(images, tether::testing::encode_idx({2}, {0, 1}), false, "disagree");
  check_error(images, labels, false, "out of range", 5);  // label 7 with 5 classes
  // A gzip file cut short (its own truncation, before the IDX checks)
  tether::testing::write_gzip(dir.file("whole.gz"), images);
  std::vector<uint8_t> gz = tether::testing::read_file(dir.file("whole.gz"));
  gz.resize(gz.size() - 12);
  tether::testing::write_file(dir.file("cut.gz"), gz);
  CHECK(error_of([&] { idx_dataset(dir.file("cut.gz"), dir.str() + "/lab.idx"); }).find("cut.gz") != std::string::npos);
  CHECK(error_of([&] { idx_dataset(dir.str() + "/none.gz", dir.str() + "/lab.idx"); }).find("none.gz") !=
        std::string::npos);
}

TEST_CASE("IDX: TETHER_FASHION_MNIST overrides the folder") {
  TempDir dir;
  const std::vector<uint8_t> images = tether::testing::encode_idx({2, 1, 1}, {10, 20});
  tether::testing::write_gzip(dir.file("t10k-images-idx3-ubyte.gz"), images);
  tether::testing::write_file(dir.file("t10k-labels-idx1-ubyte"), tether::testing::encode_idx({2}, {4, 5}));  // not gzip'd
  ScopedEnv env("TETHER_FASHION_MNIST", dir.str());
  CHECK(fashion_mnist_dir() == dir.str());
  const auto ds = fashion_mnist("test");
  CHECK(ds->size() == 2);
  CHECK(ds->label(1) == 5);
  CHECK(error_of([] { fashion_mnist("train"); }).find("train-images-idx3-ubyte.gz") != std::string::npos);
  CHECK(error_of([] { fashion_mnist("validation"); }).find("validation") != std::string::npos);
}

TEST_CASE("IDX: Debian's Fashion-MNIST") {
  if (!std::filesystem::exists(fashion_mnist_dir() + "/train-images-idx3-ubyte.gz")) {
    MESSAGE("SKIP Fashion-MNIST: not installed (apt-get install dataset-fashion-mnist)");
    return;
  }
  const auto train = fashion_mnist("train"), test = fashion_mnist("test");
  REQUIRE(train->size() == 60000);
  REQUIRE(test->size() == 10000);
  CHECK(train->num_classes() == 10);
  CHECK(train->label(0) == 9);
  CHECK(train->label(3) == 3);
  CHECK(test->label(0) == 9);
  CHECK(test->label(1) == 2);
  for (int64_t k : count_per_class(*train, [&] {
         std::vector<int64_t> all(60000);
         for (int64_t i = 0; i < 60000; ++i) all[i] = i;
         return all;
       }()))
    CHECK(k == 6000);
  // Pixel sums of single images (numpy on the same files): train[0] 76247, train[-1] 16684, test[0] 33456.
  auto byte_sum = [](const Image& img) {
    REQUIRE(img.height == 28);
    REQUIRE(img.width == 28);
    double s = 0;
    for (int j = 0; j < 28 * 28; ++j) s += img.pixels[j] * 255.0;
    return std::llround(s);
  };
  CHECK(byte_sum(train->load(0)) == 76247);
  CHECK(byte_sum(train->load(59999)) == 16684);
  CHECK(byte_sum(test->load(0)) == 33456);
  CHECK(train->load(0).at(2, 10, 14) == 228 / 255.0f);
  CHECK(train->describe(5) == "train-images-idx3-ubyte.gz[5]");
}

TEST_CASE("datasets: concurrent loads equal serial loads") {
  TempDir dir;
  for (int i = 0; i < 12; ++i) write_tagged_png(dir.file("d/c" + std::to_string(i % 3) + "/" + std::to_string(i) + ".png"), i);
  std::vector<uint8_t> px(40 * 4 * 4);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> lab(40);
  for (int i = 0; i < 40; ++i) lab[i] = static_cast<uint8_t>(i % 10);
  tether::testing::write_file(dir.file("i.idx"), tether::testing::encode_idx({40, 4, 4}, px));
  tether::testing::write_file(dir.file("l.idx"), tether::testing::encode_idx({40}, lab));
  for (const auto& ds : {image_folder(dir.str() + "/d"), idx_dataset(dir.file("i.idx"), dir.file("l.idx"))}) {
    std::vector<std::vector<float>> serial, parallel(ds->size());
    for (int64_t i = 0; i < ds->size(); ++i) serial.push_back(ds->load(i).pixels);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&, t] {
        for (int64_t i = t; i < ds->size(); i += 4) parallel[i] = ds->load(i).pixels;
      });
    for (auto& th : threads) th.join();
    CHECK(serial == parallel);
  }
}

TEST_CASE("subset and class_subset: selection, relabelling, names, errors") {
  const auto base = std::make_shared<LabelDataset>(std::vector<int64_t>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 4}, 5);
  const auto s = subset(base, {10, 2, 2});
  CHECK(s->size() == 3);
  CHECK(s->label(0) == 4);
  CHECK(s->describe(1) == "s2");
  CHECK(s->num_classes() == 5);
  CHECK_THROWS_AS(subset(base, {11}), Error);

  const auto target = class_subset(base, {3, 4, 2});  // Fashion-MNIST style: relabel 0..2 in that order
  CHECK(target->size() == 7);
  CHECK(target->num_classes() == 3);
  std::vector<int64_t> labels, described;
  for (int64_t i = 0; i < target->size(); ++i) labels.push_back(target->label(i));
  CHECK(labels == std::vector<int64_t>{2, 0, 1, 2, 0, 1, 1});  // dataset order kept
  CHECK(target->class_names() == std::vector<std::string>{"3", "4", "2"});
  CHECK(target->describe(0) == "s2");

  const auto merged = subset(base, {0, 1, 5}, {0, 0, -1, -1, -1});
  CHECK(merged->num_classes() == 1);
  CHECK(merged->class_names() == std::vector<std::string>{"0+1"});
  CHECK(error_of([&] { subset(base, {0, 2}, {0, 0, -1, -1, -1}); }).find("'s2'") != std::string::npos);
  CHECK_THROWS_AS(class_subset(base, {1, 1}), Error);
  CHECK_THROWS_AS(class_subset(base, {5}), Error);
}

TEST_CASE("samplers: indices_by_class and few_shot") {
  const LabelDataset ds = uneven_dataset(4);  // 10, 13, 16, 19 samples
  const auto groups = indices_by_class(ds);
  REQUIRE(groups.size() == 4);
  for (size_t c = 0; c < 4; ++c) {
    CHECK(static_cast<int64_t>(groups[c].size()) == 10 + 3 * static_cast<int64_t>(c));
    CHECK(std::is_sorted(groups[c].begin(), groups[c].end()));
    for (int64_t i : groups[c]) CHECK(ds.label(i) == static_cast<int64_t>(c));
  }

  const auto a = few_shot(ds, 5, 42), b = few_shot(ds, 5, 42), other = few_shot(ds, 5, 43);
  CHECK(a == b);
  CHECK(a != other);
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == a.size());
  CHECK(count_per_class(ds, a) == std::vector<int64_t>{5, 5, 5, 5});
  CHECK_THROWS_AS(few_shot(ds, 12, 1), Error);  // class 0 has 10
  CHECK(count_per_class(ds, few_shot(ds, 12, 1, true)) == std::vector<int64_t>{10, 12, 12, 12});
  // Varying the seed reaches every sample of a class (it is a shuffle, not a fixed prefix).
  std::set<int64_t> seen;
  for (uint64_t seed = 0; seed < 300; ++seed)
    for (int64_t i : few_shot(ds, 1, seed)) seen.insert(i);
  CHECK(seen.size() == static_cast<size_t>(ds.size()));
}

TEST_CASE("samplers: train_test_per_class and validation_split") {
  const LabelDataset ds = uneven_dataset(3);  // 10, 13, 16
  const auto [train, test] = train_test_per_class(ds, 4, 3, 7);
  CHECK(count_per_class(ds, train) == std::vector<int64_t>{4, 4, 4});
  CHECK(count_per_class(ds, test) == std::vector<int64_t>{3, 3, 3});
  CHECK(std::is_sorted(train.begin(), train.end()));
  CHECK(std::is_sorted(test.begin(), test.end()));
  CHECK(disjoint(train, test));
  CHECK(train_test_per_class(ds, 4, 3, 7).first == train);
  CHECK(train_test_per_class(ds, 4, 3, 8).first != train);
  const auto [train_all, rest] = train_test_per_class(ds, 4, 0, 7);  // M = 0: all the rest
  CHECK(train_all == train);  // the same permutation's first K
  CHECK(count_per_class(ds, rest) == std::vector<int64_t>{6, 9, 12});
  CHECK(disjoint(train_all, rest));
  CHECK_THROWS_AS(train_test_per_class(ds, 8, 3, 7), Error);  // class 0: 10 < 11

  const auto [tr, val] = validation_split(ds, 0.2, 3);
  CHECK(count_per_class(ds, val) == std::vector<int64_t>{2, 3, 3});  // round(2), round(2.6), round(3.2)
  CHECK(tr.size() + val.size() == static_cast<size_t>(ds.size()));
  CHECK(disjoint(tr, val));
  CHECK(std::is_sorted(tr.begin(), tr.end()));
  CHECK(std::is_sorted(val.begin(), val.end()));
  CHECK(validation_split(ds, 0.2, 3).second == val);
  CHECK(validation_split(ds, 0.2, 4).second != val);
  // At least one per class when fraction > 0; a single-sample class keeps its sample.
  const LabelDataset tiny({0, 1, 1, 1, 1, 1}, 2);
  const auto [tiny_tr, tiny_val] = validation_split(tiny, 0.01, 1);
  CHECK(count_per_class(tiny, tiny_val) == std::vector<int64_t>{0, 1});
  CHECK(validation_split(ds, 0.0, 1).second.empty());
  CHECK_THROWS_AS(validation_split(ds, 1.0, 1), Error);
}

}  // TEST_SUITE
