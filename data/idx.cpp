// IDX files (MNIST, Fashion-MNIST): a 4-byte magic (0, 0, type 0x08 = u8, number of dims),
// big-endian u32 dims, then the packed data. The files are read whole (gzip'd or raw — zlib's
// gzread passes uncompressed files through) and kept in memory: Fashion-MNIST's training
// images are 47 MB, and load(i) is then a copy of 784 bytes.
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "data/dataset.h"

namespace tether::data {
namespace {

struct IdxArray {
  std::vector<uint8_t> bytes;  // the whole file; data starts at `offset`
  std::vector<int64_t> dims;
  size_t offset = 0;
  const uint8_t* data() const { return bytes.data() + offset; }
};

std::vector<uint8_t> read_maybe_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  TETHER_CHECK(f != nullptr, "IDX file '", path, "' cannot be opened: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  constexpr size_t kChunk = 1 << 20;
  for (;;) {
    const size_t have = bytes.size();
    bytes.resize(have + kChunk);
    const int got = gzread(f, bytes.data() + have, kChunk);
    if (got < 0) {
      int code = 0;
      const std::string reason = gzerror(f, &code);
      gzclose(f);
      TETHER_FAIL("IDX file '", path, "' cannot be read: ", reason, " (truncated or corrupt gzip?)");
    }
    bytes.resize(have + static_cast<size_t>(got));
    if (got == 0) break;
  }
  // A gzip stream cut short reads as a short, error-free stream in some zlib versions; the
  // size checks below catch it, and gzclose reports a bad trailer (CRC/length) here.
  const int closed = gzclose(f);
  TETHER_CHECK(closed == Z_OK, "IDX file '", path, "' is corrupt or truncated (zlib error ", closed, ")");
  return bytes;
}

IdxArray read_idx(const std::string& path, int expected_dims) {
  IdxArray a;
  a.bytes = read_maybe_gzip(path);
  const std::vector<uint8_t>& b = a.bytes;
  TETHER_CHECK(b.size() >= 4, "IDX file '", path, "' is truncated: ", b.size(), " bytes, no header");
  TETHER_CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0x08, "IDX file '", path,
               "': bad magic (expected 00 00 08 <dims> for unsigned bytes)");
  const int ndims = b[3];
  TETHER_CHECK(ndims == expected_dims, "IDX file '", path, "' has ", ndims, " dimensions, expected ", expected_dims,
               expected_dims == 1 ? " (a label file, magic 0x0801)" : " (an image file, magic 0x0803)");
  a.offset = 4 + 4 * static_cast<size_t>(ndims);
  TETHER_CHECK(b.size() >= a.offset, "IDX file '", path, "' is truncated inside its header");
  size_t expected = 1;
  for (int d = 0; d < ndims; ++d) {
    const uint8_t* p = b.data() + 4 + 4 * d;
    const int64_t dim = (int64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    a.dims.push_back(dim);
    TETHER_CHECK(!__builtin_mul_overflow(expected, static_cast<size_t>(dim), &expected), "IDX file '", path,
                 "': absurd dimensions in its header");
  }
  const size_t have = b.size() - a.offset;
  TETHER_CHECK(have >= expected, "IDX file '", path, "' is truncated: its header promises ", expected,
               " bytes of data, the file holds ", have);
  TETHER_CHECK(have == expected, "IDX file '", path, "' has ", have - expected, " unexpected bytes after its data");
  return a;
}

class IdxDataset : public Dataset {
 public:
  IdxDataset(const std::string& images_path, const std::string& labels_path, int64_t num_classes)
      : images_(read_idx(images_path, 3)), labels_(read_idx(labels_path, 1)), num_classes_(num_classes),
        name_(std::filesystem::path(images_path).filename().string()) {
    TETHER_CHECK(num_classes > 0, "idx_dataset: num_classes must be positive, got ", num_classes);
    TETHER_CHECK(images_.dims[0] == labels_.dims[0], "IDX files disagree: '", images_path, "' holds ",
                 images_.dims[0], " images, '", labels_path, "' ", labels_.dims[0], " labels");
    TETHER_CHECK(images_.dims[1] > 0 && images_.dims[2] > 0, "IDX file '", images_path, "' has empty images");
    for (int64_t i = 0; i < labels_.dims[0]; ++i)
      TETHER_CHECK(labels_.data()[i] < num_classes, "IDX file '", labels_path, "': label ", int{labels_.data()[i]},
                   " of sample ", i, " out of range [0, ", num_classes, ")");
  }

  int64_t size() const override { return labels_.dims[0]; }
  int64_t label(int64_t i) const override {
    check_index(i);
    return labels_.data()[i];
  }
  Image load(int64_t i) const override {
    check_index(i);
    const int64_t h = images_.dims[1], w = images_.dims[2];
    return image_from_u8(images_.data() + i * h * w, static_cast<int>(h), static_cast<int>(w), 1);
  }
  std::string describe(int64_t i) const override { return name_ + "[" + std::to_string(i) + "]"; }
  int64_t num_classes() const override { return num_classes_; }

 private:
  void check_index(int64_t i) const {
    TETHER_CHECK(i >= 0 && i < size(), name_, ": index ", i, " out of range [0, ", size(), ")");
  }
  IdxArray images_, labels_;
  int64_t num_classes_;
  std::string name_;
};

// `name` or, when only the other form exists, its gzip'd / gunzip'd sibling.
std::string existing_variant(const std::string& gz_path) {
  std::error_code ec;
  if (std::filesystem::exists(gz_path, ec)) return gz_path;
  const std::string raw = gz_path.substr(0, gz_path.size() - 3);
  return std::filesystem::exists(raw, ec) ? raw : gz_path;
}

}  // namespace

std::shared_ptr<const Dataset> idx_dataset(const std::string& images_path, const std::string& labels_path,
                                           int64_t num_classes) {
  return std::make_shared<IdxDataset>(images_path, labels_path, num_classes);
}

std::string fashion_mnist_dir() {
  const char* env = std::getenv("TETHER_FASHION_MNIST");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

std::shared_ptr<const Dataset> fashion_mnist(const std::string& split) {
  TETHER_CHECK(split == "train" || split == "test", "fashion_mnist: split must be 'train' or 'test', got '",
               split, "'");
  const std::string dir = fashion_mnist_dir();
  std::error_code ec;
  TETHER_CHECK(std::filesystem::is_directory(dir, ec), "Fashion-MNIST not found in '", dir,
               "' (install Debian's dataset-fashion-mnist, or set TETHER_FASHION_MNIST to its folder)");
  const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
  return idx_dataset(existing_variant(prefix + "-images-idx3-ubyte.gz"),
                     existing_variant(prefix + "-labels-idx1-ubyte.gz"), 10);
}

}  // namespace tether::data
