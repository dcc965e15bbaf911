// Data pipeline throughput: writes N synthetic 500x375 JPEGs (quality 90, gradients + shapes +
// noise, so the entropy coder has real work) as an ImageFolder (ROOT/train/class0..3/imgI.jpg)
// in a temp dir, then measures
//   (a) decode only, one thread
//   (b) decode + the `rrc` train pipeline to 224 + normalize, one thread
//   (c) the Loader (decode + pipeline + batch assembly) with 1 and 2 workers, batch 64
// and prints img/s and img/s per core.
//
// Usage: bench_data [N=200] [--malloc-default] [--keep DIR]   (flags in any order)
//   --keep DIR: write the JPEGs to DIR/train/class0..3/ instead of a temp dir and leave them
//               there, so that another program reads the same files (tools/bench/
//               bench_data_torch.py DIR; tools/bench/run_data_bench.sh runs both). DIR/train
//               must not exist yet or be empty.
//
// Like `tether` (tools/main.cpp), the bench first raises glibc's mmap and trim thresholds:
// with the defaults, the multi-megabyte image buffers of decode → transform are returned to
// the kernel and page-faulted back in on nearly every image, which halves the throughput on
// this VM. --malloc-default measures without that.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include <malloc.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/random.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/transforms.h"

using namespace tether;
using namespace tether::data;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A photo-like 500x375 RGB image: two gradients, a few discs of flat colour, and noise.
std::vector<uint8_t> synthetic_photo(int w, int h, uint64_t seed) {
  Generator gen(seed);
  std::vector<uint8_t> px(static_cast<size_t>(w) * h * 3);
  struct Disc { double x, y, r; int c[3]; };
  std::vector<Disc> discs(4);
  for (Disc& d : discs) {
    d.x = gen.next_uniform() * w, d.y = gen.next_uniform() * h, d.r = 20 + gen.next_uniform() * 80;
    for (int& c : d.c) c = static_cast<int>(gen.next_below(256));
  }
  const double phase = gen.next_uniform() * 6.28;
  uint64_t noise_state = 0x9E3779B97F4A7C15ull ^ seed;  // cheap per-pixel noise (Philox per pixel is slow)
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      int rgb[3] = {x * 255 / w, y * 255 / h, static_cast<int>(127 + 100 * std::sin(phase + 0.03 * (x + y)))};
      for (const Disc& d : discs)
        if ((x - d.x) * (x - d.x) + (y - d.y) * (y - d.y) < d.r * d.r)
          for (int c = 0; c < 3; ++c) rgb[c] = d.c[c];
      for (int c = 0; c < 3; ++c) {
        noise_state ^= noise_state << 13, noise_state ^= noise_state >> 7, noise_state ^= noise_state << 17;  // xorshift64
        const int noise = static_cast<int>(noise_state % 25) - 12;
        px[(static_cast<size_t>(y) * w + x) * 3 + c] = static_cast<uint8_t>(std::clamp(rgb[c] + noise, 0, 255));
      }
    }
  return px;
}

void report(const char* what, int64_t images, double secs, int cores) {
  std::printf("%-58s %8.1f img/s  %8.1f img/s/core  (%lld images, %.2f s)\n", what, images / secs, images / secs / cores,
              static_cast<long long>(images), secs);
}

int usage(const char* msg, int code = 2) {
  std::fprintf(code ? stderr : stdout, "%s%susage: bench_data [N=200] [--malloc-default] [--keep DIR]\n",
               code ? "bench_data: " : "", msg);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  int n = 200;
  bool malloc_default = false;
  std::string keep;  // empty: a temp dir, removed at the end
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--malloc-default") {
      malloc_default = true;
    } else if (a == "--keep") {
      if (i + 1 >= argc || std::string(argv[i + 1]).empty()) return usage("--keep needs a directory\n");
      keep = argv[++i];
    } else if (a == "-h" || a == "--help") {
      return usage("data pipeline throughput, see tools/bench/bench_data.cpp\n", 0);
    } else if (!a.empty() && a.find_first_not_of("0123456789") == std::string::npos) {
      n = std::atoi(a.c_str());
    } else {
      return usage(("unknown argument '" + a + "'\n").c_str());
    }
  }
  if (n <= 0) return usage("N must be a positive number of images\n");
  const int w = 500, h = 375;
  std::string root;
  if (keep.empty()) {
    root = (std::filesystem::temp_directory_path() / "tether_bench_data_XXXXXX").string();
    if (!mkdtemp(root.data())) return 1;
  } else {
    root = keep;
    std::error_code ec;
    if (std::filesystem::exists(root + "/train", ec) && !std::filesystem::is_empty(root + "/train", ec))
      return usage(("'" + root + "/train' exists and is not empty: give a new or empty directory\n").c_str());
  }
  const std::string train_dir = root + "/train";
  if (!malloc_default) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);   // buffers up to 64 MB come from the heap...
    mallopt(M_TRIM_THRESHOLD, 512 << 20);  // ...which keeps up to 512 MB of free memory mapped
    std::printf("malloc: mmap threshold 64 MB, trim threshold 512 MB\n");
  }

  auto t0 = std::chrono::steady_clock::now();
  uintmax_t bytes = 0;
  for (int i = 0; i < n; ++i) {
    const std::string dir = train_dir + "/class" + std::to_string(i % 4);
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/img" + std::to_string(i) + ".jpg";
    const std::vector<uint8_t> px = synthetic_photo(w, h, static_cast<uint64_t>(i));
    if (!stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 90)) {
      std::fprintf(stderr, "bench_data: cannot write %s\n", path.c_str());
      return 1;
    }
    bytes += std::filesystem::file_size(path);
  }
  std::printf("wrote %d JPEGs %dx%d q90 (%.0f KB each) in %.1f s to %s; %u hardware threads\n", n, w, h,
              bytes / 1024.0 / n, seconds_since(t0), train_dir.c_str(), std::thread::hardware_concurrency());

  const auto ds = image_folder(train_dir);
  double checksum = 0;
  for (int64_t i = 0; i < std::min<int64_t>(ds->size(), 10); ++i) checksum += ds->load(i).pixels[0];  // warm-up
  // (a) decode only
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < ds->size(); ++i) checksum += ds->load(i).pixels[0];
  report("(a) decode, 1 thread", ds->size(), seconds_since(t0), 1);

  // (b) decode + rrc pipeline (224, flip, normalize)
  TransformOptions topt;
  topt.augment = "rrc";
  topt.input_size = 224;
  const Pipeline train = make_train_pipeline(topt);
  t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < ds->size(); ++i) {
    Generator gen(static_cast<uint64_t>(i));
    checksum += train.run(ds->load(i), gen)[0].pixels[0];
  }
  report(("(b) decode + " + train.describe() + ", 1 thread").c_str(), ds->size(), seconds_since(t0), 1);

  // (c) the loader
  for (int workers : {1, 2}) {
    Loader loader(ds, train, {.batch_size = 64, .drop_last = false, .workers = workers, .seed = 1});
    t0 = std::chrono::steady_clock::now();
    loader.start_epoch(0);
    int64_t images = 0;
    for (Batch b; loader.next(b);) images += b.size();
    const std::string what = "(c) Loader, batch 64, rrc pipeline, workers=" + std::to_string(workers);
    report(what.c_str(), images, seconds_since(t0), workers);
  }

  if (keep.empty())
    std::filesystem::remove_all(root);
  else
    std::printf("kept the JPEGs in %s\n", train_dir.c_str());
  std::printf("(checksum %.3f)\n", checksum);
  return 0;
}
