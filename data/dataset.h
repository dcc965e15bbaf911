// Datasets: an indexable collection of (image, label). Loading is lazy — the loader calls
// load(i) from worker threads, so implementations must be safe to call concurrently.
//
//   ImageFolder  root/<split>/<class>/<file>, SPEC 9 order (classes and files byte-wise sorted)
//   ListFile     "relative/path label" per line (Caltech-256, MIT-67 splits)
//   IdxDataset   MNIST/Fashion-MNIST IDX files, gzip'd or not
//   Subset       a selection of another dataset, optionally with labels remapped
// and the samplers of the papers' protocols: few-shot, Caltech "K train then M test",
// a seeded validation split.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/image.h"

namespace tether::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t label(int64_t i) const = 0;
  // Decodes sample i; throws DecodeError (naming the file) for a bad file.
  virtual Image load(int64_t i) const = 0;
  // What to call sample i in messages: its path, or "train-images-idx3-ubyte.gz[123]".
  virtual std::string describe(int64_t i) const = 0;
  virtual int64_t num_classes() const = 0;
  // Class names by label (folder names; "0".."K-1" where the data has none).
  virtual std::vector<std::string> class_names() const;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

// root/<split>/<class>/<file>. Checked on construction: the folder exists, has at least one
// class folder, and no class folder is empty (each a clear Error naming the path).
// Files are listed by extension (jpg jpeg png bmp gif ppm pgm pnm, any case).
std::shared_ptr<const Dataset> image_folder(const std::string& dir);
// root/train, or for split "val": root/val, else root/test (Error naming both when neither).
std::shared_ptr<const Dataset> image_folder_split(const std::string& root, const std::string& split);

// A list file of "relative/path label" lines, paths relative to `image_root`; blank lines and
// '#' comments are skipped. Checked on construction: every file exists, every label is an
// integer in [0, num_classes) (num_classes 0: 1 + the largest label); errors give file:line.
std::shared_ptr<const Dataset> list_file(const std::string& list_path, const std::string& image_root,
                                         int64_t num_classes = 0);

// IDX image (u8, [N, H, W]) and label (u8, [N]) files, gzip'd (.gz) or raw; validated (magic,
// sizes, counts agree) on construction. Images decode to 3-channel (gray replicated) [0, 1].
std::shared_ptr<const Dataset> idx_dataset(const std::string& images_path, const std::string& labels_path,
                                           int64_t num_classes = 10);
// Debian's dataset-fashion-mnist: split "train" (60,000) or "test" (10,000).
std::string fashion_mnist_dir();  // /usr/share/datasets/fashion-mnist (or $TETHER_FASHION_MNIST)
std::shared_ptr<const Dataset> fashion_mnist(const std::string& split);

// The samples `indices` of `base`, in that order. `label_map` (optional) maps base labels to
// new ones (-1: not allowed, an Error); num_classes is then 1 + the largest mapped label.
std::shared_ptr<const Dataset> subset(DatasetPtr base, std::vector<int64_t> indices,
                                      std::vector<int64_t> label_map = {});
// The samples whose label is in `classes`, relabelled 0..classes.size()-1 in that order
// (Fashion-MNIST classes 0–4 for the source task, 5–9 for the target).
std::shared_ptr<const Dataset> class_subset(DatasetPtr base, const std::vector<int64_t>& classes);

// ---- samplers (all seeded; results independent of anything but their arguments) -------------
// Indices grouped by label, each group in dataset order.
std::vector<std::vector<int64_t>> indices_by_class(const Dataset& ds);
// K random samples per class (all of a class when it has fewer than K: an Error unless
// allow_fewer). Returned in dataset order.
std::vector<int64_t> few_shot(const Dataset& ds, int64_t per_class, uint64_t seed, bool allow_fewer = false);
// The Caltech protocol: per class, a seeded permutation; its first K for training, the next M
// for testing (M = 0: all the rest). Both in dataset order.
std::pair<std::vector<int64_t>, std::vector<int64_t>> train_test_per_class(const Dataset& ds, int64_t k_train,
                                                                           int64_t m_test, uint64_t seed);
// A seeded, stratified split of the training set: `fraction` of each class (rounded, at least
// one per class when fraction > 0) goes to validation. Returns {train, val} in dataset order.
std::pair<std::vector<int64_t>, std::vector<int64_t>> validation_split(const Dataset& ds, double fraction,
                                                                       uint64_t seed);

}  // namespace tether::data
