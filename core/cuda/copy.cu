// Copies with dtype conversion, and fill, within one CUDA device (core/cpu/copy.cpp on the
// GPU). A contiguous copy of one dtype is a cudaMemcpyAsync on the device's stream; every
// other copy is one thread per element converting with static_cast as the CPU does, without
// index math when both operands are contiguous, through StridedIndexer otherwise.
#include "core/cuda/common.h"
#include "core/cuda/elem_util.cuh"
#include "core/cuda/kernels.h"

namespace tether::cuda {

namespace {

template <typename D, typename S>
__global__ void copy_contiguous_kernel(D* dst, const S* src, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) dst[i] = static_cast<D>(src[i]);
}

template <typename D, typename S>
__global__ void copy_strided_kernel(D* dst, const S* src, StridedIndexer<2> ix, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = static_cast<D>(src[off[1]]);
  }
}

template <typename T>
__global__ void fill_contiguous_kernel(T* dst, T value, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) dst[i] = value;
}

template <typename T>
__global__ void fill_strided_kernel(T* dst, T value, StridedIndexer<1> ix, int64_t n) {
  for (int64_t i = grid_thread(); i < n; i += grid_threads()) {
    int64_t off[1];
    ix.offsets(i, off);
    dst[off[0]] = value;
  }
}

}  // namespace

void copy_(const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  cudaStream_t stream = stream_of(dst);
  if (n == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    TETHER_CHECK_CUDA(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), n * element_size(dst.dtype()),
                                      cudaMemcpyDeviceToDevice, stream));
    return;
  }
  dispatch_all(dst.dtype(), "copy_", [&](auto dst_tag) {
    using dst_t = decltype(dst_tag);
    dispatch_all(src.dtype(), "copy_", [&](auto src_tag) {
      using src_t = decltype(src_tag);
      dst_t* d = dst.data<dst_t>();
      const src_t* s = src.data<src_t>();
      if (dst.is_contiguous() && src.is_contiguous()) {
        copy_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(d, s, n);
        TETHER_CHECK_LAUNCH("copy_contiguous_kernel");
        return;
      }
      const StridedIndexer<2> ix = make_indexer<2>(dst.shape(), {dst.strides(), src.strides()});
      copy_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(d, s, ix, n);
      TETHER_CHECK_LAUNCH("copy_strided_kernel");
    });
  });
}

void fill_(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    const int64_t n = dst.numel();
    cudaStream_t stream = stream_of(dst);
    if (n == 0) return;
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t v = static_cast<scalar_t>(value);
    if (dst.is_contiguous()) {
      fill_contiguous_kernel<<<blocks_for(n), kThreads, 0, stream>>>(d, v, n);
      TETHER_CHECK_LAUNCH("fill_contiguous_kernel");
      return;
    }
    const StridedIndexer<1> ix = make_indexer<1>(dst.shape(), {dst.strides()});
    fill_strided_kernel<<<blocks_for(n), kThreads, 0, stream>>>(d, v, ix, n);
    TETHER_CHECK_LAUNCH("fill_strided_kernel");
  });
}

}  // namespace tether::cuda
