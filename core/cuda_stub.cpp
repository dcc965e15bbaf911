// Stand-ins for the CUDA back end when tether is built without it: every call that would
// need a GPU throws one clear message instead of failing to link.
#ifndef TETHER_WITH_CUDA
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

}  // namespace tether::cuda
#endif
