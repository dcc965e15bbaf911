// The loader: batches of transformed samples as contiguous NCHW float tensors, produced by
// worker threads into a bounded prefetch queue.
//
// Determinism: the epoch's order is a permutation drawn from (seed, epoch) only, and sample i
// of the epoch gets its own Generator keyed by (seed, epoch, dataset index), so a batch's
// contents are identical for any number of workers. Batches come out in order.
//
// Bad files: with OnBadImage::skip a sample whose decode throws DecodeError is left out of its
// batch (the batch is smaller), warned about once by name and counted; epoch_report() gives
// the count and the names. OnBadImage::error rethrows from next().
#pragma once
#include <cstdint>
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/dataset.h"
#include "data/transforms.h"

namespace tether::data {

enum class OnBadImage { skip, error };
OnBadImage parse_on_bad_image(const std::string& name);  // "skip" | "error"

struct Batch {
  Tensor images;                 // f32 [n * views, 3, H, W], sample-major (views of a sample adjacent)
  Tensor labels;                 // i64 [n]
  std::vector<int64_t> indices;  // dataset indices of the n samples
  int views = 1;
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  bool drop_last = true;    // SPEC 9: the last partial training batch is dropped
  int workers = 2;          // 0: decode on the calling thread
  int prefetch = 2;         // batches queued ahead, per worker
  uint64_t seed = 0;
  OnBadImage on_bad_image = OnBadImage::skip;
  // Allocates each batch's image tensor (shape, dtype). The CUDA back end passes one that
  // returns pinned host memory; the default is Tensor::empty on the CPU.
  std::function<Tensor(const Shape&, DType)> allocate = nullptr;  // (initialised: {.batch_size = 8} then draws no warning)
};

struct EpochReport {
  int64_t samples = 0;                // delivered
  int64_t skipped = 0;                // bad files left out
  std::vector<std::string> bad_files; // their descriptions
};

class Loader {
 public:
  Loader(DatasetPtr dataset, Pipeline pipeline, LoaderOptions options);
  ~Loader();  // stops and joins the workers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` (0-based), skipping its first `skip_batches` batches (resume).
  void start_epoch(int64_t epoch, int64_t skip_batches = 0);
  // The next batch of the epoch; false when the epoch is over.
  bool next(Batch& batch);
  int64_t batches_per_epoch() const;
  const EpochReport& epoch_report() const;
  const Dataset& dataset() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Per-channel mean of the dataset's decoded images (L2-SP mean subtraction), over at most
// `max_samples` samples chosen with `seed` (0: all).
std::array<float, 3> channel_mean(const Dataset& ds, int64_t max_samples = 0, uint64_t seed = 0, int workers = 2);

}  // namespace tether::data
