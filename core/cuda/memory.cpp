// Device memory: a caching allocator (PyTorch's idea, simplified to one stream per device).
//
// A freed block goes to a per-device free list instead of cudaFree; the next request of a
// fitting size takes it back. Because all work of a device runs on one stream (common.h), a
// block freed while a queued kernel still uses it can be handed out at once: the next user's
// kernels are queued after that kernel. Sizes are rounded (512 B up to 1 MiB, 2 MiB above) so
// a training loop's recurring shapes hit the cache exactly; a cached block serves a request
// only when it wastes at most 1/8 of it. Blocks are never split.
//
// Also here: pinned host buffers for asynchronous host->device copies, and copy().
#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda/backend.h"
#include "core/cuda/common.h"

namespace tether::cuda {

namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t{2} << 20;  // 2 MiB

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  if (n <= kSmallLimit) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (n + kLargeRound - 1) / kLargeRound * kLargeRound;
}

struct DevicePool {
  std::mutex mutex;
  std::multimap<size_t, void*> cached;        // free blocks by size
  std::unordered_map<void*, size_t> in_use;   // live blocks and their (rounded) sizes
  MemoryStats stats;
};

DevicePool& pool(int index) {
  static std::vector<DevicePool>* pools = new std::vector<DevicePool>(64);  // never destroyed: tensors
  TETHER_CHECK(index >= 0 && index < 64, "bad CUDA device index ", index);  // may outlive statics
  return (*pools)[index];
}

// cudaFree every cached block of the device (caller holds the pool's mutex).
void release_cached(int index, DevicePool& p) {
  if (p.cached.empty()) return;
  DeviceGuard guard(index);
  for (auto& [size, ptr] : p.cached) {
    cudaFree(ptr);
    p.stats.reserved -= static_cast<int64_t>(size);
  }
  p.cached.clear();
}

}  // namespace

void* alloc(int device_index, size_t nbytes) {
  const size_t size = round_size(nbytes);
  DevicePool& p = pool(device_index);
  std::lock_guard<std::mutex> lock(p.mutex);
  void* ptr = nullptr;
  size_t got = size;
  auto it = p.cached.lower_bound(size);
  if (it != p.cached.end() && it->first - size <= size / 8) {
    got = it->first;
    ptr = it->second;
    p.cached.erase(it);
  } else {
    DeviceGuard guard(device_index);
    stream(device_index);  // the context exists before the first kernel needs it
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {  // give the cache back and try once more
      cudaGetLastError();
      // Cached blocks may still be in use by queued kernels (freed blocks are reused in stream
      // order): let them finish before cudaFree.
      synchronize(device_index);
      release_cached(device_index, p);
      status = cudaMalloc(&ptr, size);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      TETHER_FAIL("CUDA out of memory on cuda:", device_index, ": cudaMalloc of ", size, " bytes (",
                  size / double(1 << 20), " MiB) failed; ", free_bytes / double(1 << 20), " MiB of ",
                  total / double(1 << 20), " MiB free, ", p.stats.allocated / double(1 << 20),
                  " MiB in tether's tensors");
    }
    TETHER_CHECK(status == cudaSuccess, "cudaMalloc(", size, " bytes) on cuda:", device_index,
                 " failed: ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ")");
    ++p.stats.cuda_mallocs;
    p.stats.reserved += static_cast<int64_t>(size);
    p.stats.peak_reserved = std::max(p.stats.peak_reserved, p.stats.reserved);
  }
  p.in_use[ptr] = got;
  p.stats.allocated += static_cast<int64_t>(got);
  p.stats.peak_allocated = std::max(p.stats.peak_allocated, p.stats.allocated);
  return ptr;
}

void free(int device_index, void* ptr, size_t) {
  if (!ptr) return;
  DevicePool& p = pool(device_index);
  std::lock_guard<std::mutex> lock(p.mutex);
  auto it = p.in_use.find(ptr);
  if (it == p.in_use.end()) return;  // not ours: never throw from a destructor path
  p.stats.allocated -= static_cast<int64_t>(it->second);
  p.cached.emplace(it->second, ptr);
  p.in_use.erase(it);
}

MemoryStats memory_stats(int device_index) {
  DevicePool& p = pool(device_index);
  std::lock_guard<std::mutex> lock(p.mutex);
  return p.stats;
}

void reset_peak(int device_index) {
  DevicePool& p = pool(device_index);
  std::lock_guard<std::mutex> lock(p.mutex);
  p.stats.peak_allocated = p.stats.allocated;
  p.stats.peak_reserved = p.stats.reserved;
}

void empty_cache(int device_index) {
  DevicePool& p = pool(device_index);
  std::lock_guard<std::mutex> lock(p.mutex);
  synchronize(device_index);
  release_cached(device_index, p);
}

// ---- pinned host memory ------------------------------------------------------------------------
namespace {
struct PinnedBlock {
  size_t size = 0;
  cudaEvent_t last_use = nullptr;  // recorded after each async copy that reads the block
  int event_device = -1;           // the device last_use was created on (a stream's device must match)
};
std::mutex pinned_mutex;
std::map<const void*, PinnedBlock>& pinned_blocks() {
  static auto* blocks = new std::map<const void*, PinnedBlock>();
  return *blocks;
}
// The pinned block containing [ptr, ptr + n), or null (caller holds pinned_mutex).
PinnedBlock* find_pinned(const void* ptr, size_t n) {
  auto& blocks = pinned_blocks();
  auto it = blocks.upper_bound(ptr);
  if (it == blocks.begin()) return nullptr;
  --it;
  const char* base = static_cast<const char*>(it->first);
  const char* p = static_cast<const char*>(ptr);
  return p >= base && p + n <= base + it->second.size ? &it->second : nullptr;
}
}  // namespace

// Pinned blocks are cached too (cudaHostAlloc/cudaFreeHost are slow and synchronise): a freed
// block waits in `pinned_cache` and serves the next request of its rounded size once the copies
// that read it have finished.
namespace {
std::multimap<size_t, void*>& pinned_cache() {
  static auto* cache = new std::multimap<size_t, void*>();
  return *cache;
}
size_t round_pinned(size_t n) { return (std::max<size_t>(n, 1) + 4095) / 4096 * 4096; }
}  // namespace

void* alloc_pinned(size_t nbytes) {
  const size_t size = round_pinned(nbytes);
  std::lock_guard<std::mutex> lock(pinned_mutex);
  auto it = pinned_cache().find(size);
  if (it != pinned_cache().end()) {
    void* ptr = it->second;
    pinned_cache().erase(it);
    PinnedBlock& b = pinned_blocks()[ptr];
    if (b.last_use) TETHER_CHECK_CUDA(cudaEventSynchronize(b.last_use));  // its last copy has read it
    return ptr;
  }
  void* ptr = nullptr;
  // Portable: pinned for every GPU, whichever device a loader thread happens to have current.
  TETHER_CHECK_CUDA(cudaHostAlloc(&ptr, size, cudaHostAllocPortable));
  pinned_blocks()[ptr] = PinnedBlock{size, nullptr};
  return ptr;
}

void free_pinned(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(pinned_mutex);
  auto it = pinned_blocks().find(ptr);
  if (it == pinned_blocks().end()) return;
  pinned_cache().emplace(it->second.size, ptr);
}

bool is_pinned(const void* ptr) {
  std::lock_guard<std::mutex> lock(pinned_mutex);
  return find_pinned(ptr, 1) != nullptr;
}

// ---- copies ------------------------------------------------------------------------------------
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    if (dst_device == src_device) {
      TETHER_CHECK_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, stream(dst_device.index)));
      return;
    }
    synchronize(src_device.index);  // the source's queued writes land first
    TETHER_CHECK_CUDA(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, nbytes,
                                          stream(dst_device.index)));
    // The copy runs on dst's stream but reads src's memory: once we return, the source may be
    // freed to src's allocator (a temporary of ops::copy_) and rewritten by src's stream, which
    // knows nothing of dst's. Wait for the copy.
    synchronize(dst_device.index);
    return;
  }
  if (dst_device.is_cuda()) {  // host -> device
    cudaStream_t s = stream(dst_device.index);
    TETHER_CHECK_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, s));
    // Pageable sources are staged before cudaMemcpyAsync returns; a pinned one is read later
    // by the DMA engine, so its block remembers the copy (free_pinned waits for it).
    std::lock_guard<std::mutex> lock(pinned_mutex);
    if (PinnedBlock* b = find_pinned(src, nbytes)) {
      if (b->last_use && b->event_device != dst_device.index) {
        // An event records only on streams of its own device: the old device's copies finish
        // first, then the block gets an event of this device (stream() made it current).
        TETHER_CHECK_CUDA(cudaEventSynchronize(b->last_use));
        cudaEventDestroy(b->last_use);
        b->last_use = nullptr;
      }
      if (!b->last_use) {
        TETHER_CHECK_CUDA(cudaEventCreateWithFlags(&b->last_use, cudaEventDisableTiming));
        b->event_device = dst_device.index;
      }
      TETHER_CHECK_CUDA(cudaEventRecord(b->last_use, s));
    }
    return;
  }
  // device -> host: the host reads the result next, so wait for it.
  cudaStream_t s = stream(src_device.index);
  TETHER_CHECK_CUDA(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, s));
  TETHER_CHECK_CUDA(cudaStreamSynchronize(s));
}

}  // namespace tether::cuda
