// Stand-ins for the CUDA back end when tether is built without it: every call that would
// need a GPU throws one clear message instead of failing to link.
#ifndef TETHER_WITH_CUDA
#include <cstdlib>

#include "core/check.h"
#include "core/cuda/backend.h"

namespace tether::cuda {

static constexpr const char* kNoCuda =
    "this tether was built without the CUDA back end (configure with -DTETHER_CUDA=ON on a "
    "machine with the CUDA toolkit and cuDNN)";

int device_count() { return 0; }
void* alloc(int, size_t) { TETHER_FAIL(kNoCuda); }
void free(int, void*, size_t) {}
void copy(void*, Device, const void*, Device, size_t) { TETHER_FAIL(kNoCuda); }
// Pinned memory degrades to plain host memory, so the loader's code path is the same.
void* alloc_pinned(size_t nbytes) { return std::malloc(nbytes == 0 ? 1 : nbytes); }
void free_pinned(void* ptr) { std::free(ptr); }
bool is_pinned(const void*) { return false; }
void synchronize(int) { TETHER_FAIL(kNoCuda); }
std::string describe_device(int) { TETHER_FAIL(kNoCuda); }
std::string library_versions() { return ""; }
MemoryStats memory_stats(int) { return {}; }
void reset_peak(int) {}
void empty_cache(int) {}

}  // namespace tether::cuda
#endif
