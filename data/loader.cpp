// The loader: worker threads decode and transform samples of a bounded window of batches
// ahead of the consumer and assemble each finished batch into one NCHW tensor; next() hands
// the batches out in order.
//
// Seeds (documented, so a run can be reproduced outside tether):
//   mix(a, b)       = splitmix64(a ^ splitmix64(b))      (splitmix64: Steele et al., 2014)
//   epoch key       = mix(seed, epoch)
//   epoch order     = Fisher–Yates with Generator(epoch key): for i = n-1 .. 1, swap a[i] and
//                     a[next_below(i + 1)]; the identity when shuffle is off
//   sample i's draws = Generator(mix(epoch key, i)), i the dataset index
// Nothing depends on the worker count or on which thread built a batch, so batches are
// bitwise identical for workers = 0, 1, 2, ...
#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace tether::data {
namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
uint64_t mix(uint64_t a, uint64_t b) { return splitmix64(a ^ splitmix64(b)); }

std::string shape_text(const Image& img) {
  return std::to_string(img.channels) + "x" + std::to_string(img.height) + "x" + std::to_string(img.width);
}

// "cannot decode 'p': reason" → "reason" (the warning names the file itself).
std::string decode_reason(const std::string& message, const std::string& name) {
  const std::string prefix = "cannot decode '" + name + "': ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

// One sample's outcome: its views, or the reason it was skipped, or an error for next().
struct SampleResult {
  std::vector<Image> views;
  std::string bad_name, bad_reason;  // set when skipped as a bad file
  std::exception_ptr error;
};

// What next() receives: a batch (possibly empty), the files it left out, or an error.
struct BatchResult {
  Batch batch;
  std::vector<std::pair<std::string, std::string>> bad;  // (description, reason)
  std::exception_ptr error;
};

}  // namespace

OnBadImage parse_on_bad_image(const std::string& name) {
  if (name == "skip") return OnBadImage::skip;
  if (name == "error") return OnBadImage::error;
  TETHER_FAIL("--on-bad-image: expected 'skip' or 'error', got '", name, "'");
}

// Work is handed out per sample (epoch position), so workers share even a single batch; the
// worker that finishes a batch's last sample assembles the batch tensor.
struct Loader::State {
  DatasetPtr dataset;
  Pipeline pipeline;
  LoaderOptions options;

  // The current epoch. Replaced (never modified) by start_epoch, so a worker can keep using
  // the order it was given while a new epoch starts.
  int64_t epoch = -1;
  uint64_t epoch_key = 0;
  std::shared_ptr<const std::vector<int64_t>> order;
  int64_t num_batches = 0;

  // Consumer side (next()): not touched by workers.
  EpochReport report;
  std::set<std::string> warned;

  // Shared with the workers, under `mutex`.
  struct Pending {
    std::vector<SampleResult> samples;
    int64_t remaining = 0;
  };
  std::mutex mutex;
  std::condition_variable work_ready, batch_ready;
  int64_t next_claim = 0;    // the next epoch position a worker may take
  int64_t next_deliver = 0;  // the next batch next() returns
  std::map<int64_t, Pending> pending;   // batches with samples still in work
  std::map<int64_t, BatchResult> done;  // assembled batches waiting for next()
  uint64_t generation = 0;              // bumped by start_epoch and the destructor: stale work is dropped
  bool stopping = false;
  std::vector<std::thread> workers;

  int64_t window() const { return std::max<int64_t>(1, int64_t{options.workers} * options.prefetch); }
  int64_t batch_begin(int64_t b) const { return b * options.batch_size; }
  int64_t batch_end(int64_t b) const {
    return std::min(batch_begin(b) + options.batch_size, static_cast<int64_t>(order->size()));
  }
  int64_t end_position() const { return num_batches == 0 ? 0 : batch_end(num_batches - 1); }

  SampleResult process(int64_t i, uint64_t key) const;
  BatchResult finish(int64_t b, std::vector<SampleResult> samples, const std::vector<int64_t>& ord) const;
  Batch assemble(int64_t b, std::vector<std::vector<Image>>& images, std::vector<int64_t> indices) const;
  void worker_loop();
  void stop_workers();
};

SampleResult Loader::State::process(int64_t i, uint64_t key) const {
  SampleResult r;
  try {
    Generator sample_gen(mix(key, static_cast<uint64_t>(i)));
    r.views = pipeline.run(dataset->load(i), sample_gen);
    TETHER_CHECK(static_cast<int>(r.views.size()) == pipeline.views(), "pipeline returned ", r.views.size(),
                 " images for sample '", dataset->describe(i), "', expected ", pipeline.views());
  } catch (const DecodeError& e) {
    r.views.clear();
    if (options.on_bad_image == OnBadImage::error) {
      r.error = std::current_exception();
    } else {
      r.bad_name = dataset->describe(i);
      r.bad_reason = decode_reason(e.what(), r.bad_name);
    }
  } catch (...) {
    r.views.clear();
    r.error = std::current_exception();  // rethrown by next(), on the consumer's thread
  }
  return r;
}

// The batch from its samples' outcomes, in epoch order: the first error wins (as a serial
// loop would have stopped there); skipped files are listed; the rest become the batch.
BatchResult Loader::State::finish(int64_t b, std::vector<SampleResult> samples, const std::vector<int64_t>& ord) const {
  BatchResult r;
  std::vector<std::vector<Image>> images;
  std::vector<int64_t> indices;
  for (size_t s = 0; s < samples.size(); ++s) {
    SampleResult& sample = samples[s];
    if (sample.error) {
      r.error = sample.error;
      return r;
    }
    if (!sample.bad_name.empty()) {
      r.bad.emplace_back(std::move(sample.bad_name), std::move(sample.bad_reason));
      continue;
    }
    images.push_back(std::move(sample.views));
    indices.push_back(ord[batch_begin(b) + static_cast<int64_t>(s)]);
  }
  try {
    if (!indices.empty()) r.batch = assemble(b, images, std::move(indices));
  } catch (...) {
    r.error = std::current_exception();
  }
  return r;
}

Batch Loader::State::assemble(int64_t b, std::vector<std::vector<Image>>& images, std::vector<int64_t> indices) const {
  const Image& first = images[0][0];
  const std::string first_name = dataset->describe(indices[0]);
  for (size_t s = 0; s < images.size(); ++s)
    for (const Image& img : images[s])
      if (img.channels != first.channels || img.height != first.height || img.width != first.width)
        TETHER_FAIL("batch ", b, ": sample '", dataset->describe(indices[s]), "' is ", shape_text(img),
                    " but sample '", first_name, "' is ", shape_text(first),
                    "; a batch needs one shape: set an input size (--input-size) so the transforms resize every image");

  Batch batch;
  batch.views = static_cast<int>(images[0].size());
  const int64_t n = static_cast<int64_t>(indices.size());
  const Shape shape{n * batch.views, first.channels, first.height, first.width};
  batch.images = options.allocate ? options.allocate(shape, DType::f32) : Tensor::empty(shape, DType::f32);
  TETHER_CHECK(batch.images.shape() == shape && batch.images.dtype() == DType::f32 && batch.images.is_contiguous() &&
                   batch.images.device().is_cpu(),
               "LoaderOptions::allocate must return a contiguous f32 host tensor of shape ", shape_str(shape));
  float* out = batch.images.data<float>();
  const size_t per_image = first.pixels.size();
  for (auto& views : images)
    for (Image& img : views) {
      std::copy(img.pixels.begin(), img.pixels.end(), out);
      out += per_image;
      img = Image();  // free as we go: a batch of decoded images is the loader's peak memory
    }
  batch.labels = Tensor::empty({n}, DType::i64);
  for (int64_t s = 0; s < n; ++s) batch.labels.data<int64_t>()[s] = dataset->label(indices[s]);
  batch.indices = std::move(indices);
  return batch;
}

void Loader::State::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    work_ready.wait(lock, [&] {
      return stopping || (next_claim < end_position() && next_claim / options.batch_size < next_deliver + window());
    });
    if (stopping) return;
    const int64_t p = next_claim++, b = p / options.batch_size;
    const uint64_t gen = generation, key = epoch_key;
    const auto ord = order;
    Pending& slot = pending[b];
    if (slot.samples.empty()) {
      slot.samples.resize(static_cast<size_t>(batch_end(b) - batch_begin(b)));
      slot.remaining = static_cast<int64_t>(slot.samples.size());
    }
    lock.unlock();
    SampleResult r = process((*ord)[p], key);  // catches everything: no exception leaves a thread
    lock.lock();
    if (gen != generation) continue;  // the epoch was restarted (or the loader is closing)
    Pending& same = pending[b];
    same.samples[p - batch_begin(b)] = std::move(r);
    if (--same.remaining > 0) continue;
    std::vector<SampleResult> samples = std::move(same.samples);
    pending.erase(b);
    lock.unlock();
    BatchResult batch = finish(b, std::move(samples), *ord);
    lock.lock();
    if (gen != generation) continue;
    done.emplace(b, std::move(batch));
    batch_ready.notify_all();
  }
}

Loader::Loader(DatasetPtr dataset, Pipeline pipeline, LoaderOptions options) : state_(std::make_unique<State>()) {
  TETHER_CHECK(dataset != nullptr, "Loader: null dataset");
  TETHER_CHECK(options.batch_size > 0, "Loader: batch_size must be positive, got ", options.batch_size);
  TETHER_CHECK(options.workers >= 0, "Loader: workers must be >= 0, got ", options.workers);
  TETHER_CHECK(options.prefetch >= 1, "Loader: prefetch must be >= 1, got ", options.prefetch);
  state_->dataset = std::move(dataset);
  state_->pipeline = std::move(pipeline);
  state_->options = std::move(options);
  try {
    for (int w = 0; w < state_->options.workers; ++w)
      state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
  } catch (...) {  // no thread to spare: join the ones started, then report
    state_->stop_workers();
    throw;
  }
}

Loader::~Loader() { state_->stop_workers(); }

void Loader::State::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    ++generation;  // a worker drops the sample in hand
  }
  work_ready.notify_all();
  for (std::thread& t : workers) t.join();
  workers.clear();
}

void Loader::start_epoch(int64_t epoch, int64_t skip_batches) {
  TETHER_CHECK(epoch >= 0 && skip_batches >= 0, "start_epoch(", epoch, ", ", skip_batches, "): negative argument");
  State& s = *state_;
  const int64_t n = s.dataset->size();
  const uint64_t key = mix(s.options.seed, static_cast<uint64_t>(epoch));
  auto order = std::make_shared<std::vector<int64_t>>(n);
  for (int64_t i = 0; i < n; ++i) (*order)[i] = i;
  if (s.options.shuffle) {
    Generator gen(key);
    for (int64_t i = n - 1; i > 0; --i) std::swap((*order)[i], (*order)[gen.next_below(static_cast<uint64_t>(i) + 1)]);
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.generation;
    s.pending.clear();
    s.done.clear();
    s.epoch = epoch;
    s.epoch_key = key;
    s.order = std::move(order);
    s.num_batches = batches_per_epoch();
    s.next_claim = s.next_deliver = std::min(skip_batches, s.num_batches);
    s.report = EpochReport{};
  }
  s.work_ready.notify_all();
}

bool Loader::next(Batch& batch) {
  State& s = *state_;
  if (s.epoch < 0) start_epoch(0);  // next() without start_epoch: epoch 0
  for (;;) {
    BatchResult r;
    if (s.options.workers == 0) {
      if (s.next_deliver >= s.num_batches) return false;
      const int64_t b = s.next_deliver++;
      std::vector<SampleResult> samples;
      for (int64_t p = s.batch_begin(b); p < s.batch_end(b); ++p) samples.push_back(s.process((*s.order)[p], s.epoch_key));
      r = s.finish(b, std::move(samples), *s.order);
    } else {
      std::unique_lock<std::mutex> lock(s.mutex);
      if (s.next_deliver >= s.num_batches) return false;
      s.batch_ready.wait(lock, [&] { return s.done.count(s.next_deliver) > 0; });
      auto it = s.done.find(s.next_deliver);
      r = std::move(it->second);
      s.done.erase(it);
      ++s.next_deliver;
      lock.unlock();
      s.work_ready.notify_all();  // the window moved
    }
    for (auto& [name, reason] : r.bad) {
      ++s.report.skipped;
      s.report.bad_files.push_back(name);
      if (s.warned.insert(name).second)
        std::fprintf(stderr, "warning: skipping unreadable image '%s': %s\n", name.c_str(), reason.c_str());
    }
    if (r.error) std::rethrow_exception(r.error);
    if (r.batch.size() == 0) continue;  // every sample of this batch was bad
    s.report.samples += r.batch.size();
    batch = std::move(r.batch);
    return true;
  }
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = state_->dataset->size(), b = state_->options.batch_size;
  return state_->options.drop_last ? n / b : (n + b - 1) / b;
}

const EpochReport& Loader::epoch_report() const { return state_->report; }
const Dataset& Loader::dataset() const { return *state_->dataset; }

// ---- channel_mean -------------------------------------------------------------------------
// The mean over images of each image's per-channel mean (every image weighs the same,
// whatever its size — as the mean of images resized to one size would). Files that do not
// decode are skipped with a warning. Per-image means are summed in index order, so the result
// does not depend on `workers`.
std::array<float, 3> channel_mean(const Dataset& ds, int64_t max_samples, uint64_t seed, int workers) {
  std::vector<int64_t> chosen(static_cast<size_t>(ds.size()));
  for (int64_t i = 0; i < ds.size(); ++i) chosen[i] = i;
  if (max_samples > 0 && max_samples < ds.size()) {
    Generator gen(seed);  // the first max_samples steps of a Fisher–Yates shuffle run front to back
    for (int64_t i = 0; i < max_samples; ++i)
      std::swap(chosen[i], chosen[i + gen.next_below(static_cast<uint64_t>(ds.size() - i))]);
    chosen.resize(max_samples);
    std::sort(chosen.begin(), chosen.end());
  }
  const size_t n = chosen.size();
  TETHER_CHECK(n > 0, "channel_mean of an empty dataset");

  std::vector<std::array<double, 3>> means(n);
  std::vector<char> ok(n, 0);
  std::vector<std::string> errors(n);
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < n;) {
      try {
        const Image img = ds.load(chosen[k]);
        const size_t plane = static_cast<size_t>(img.height) * img.width;
        for (int c = 0; c < 3; ++c) {
          const float* p = img.plane(std::min(c, img.channels - 1));
          double sum = 0;
          for (size_t j = 0; j < plane; ++j) sum += p[j];
          means[k][c] = sum / static_cast<double>(plane);
        }
        ok[k] = 1;
      } catch (const DecodeError& e) {
        errors[k] = e.what();
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, workers); ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);

  std::array<double, 3> total{0, 0, 0};
  size_t count = 0;
  for (size_t k = 0; k < n; ++k) {
    if (!ok[k]) {
      std::fprintf(stderr, "warning: channel_mean: skipping unreadable image: %s\n", errors[k].c_str());
      continue;
    }
    for (int c = 0; c < 3; ++c) total[c] += means[k][c];
    ++count;
  }
  TETHER_CHECK(count > 0, "channel_mean: none of the ", n, " images could be decoded");
  return {static_cast<float>(total[0] / count), static_cast<float>(total[1] / count), static_cast<float>(total[2] / count)};
}

}  // namespace tether::data
