// cuDNN convolutions: descriptors, the per-geometry algorithm cache, and the calls.
//
// Descriptors are fully packed NCHW, created and destroyed per call (RAII; cheap next to the
// convolution). The convolution is a cross-correlation (PyTorch's and the CPU kernel's: no
// flipped kernel) with cudnnSetConvolutionGroupCount for groups and depthwise. Math type:
// f32 under cuda_math().tf32_conv runs CUDNN_DEFAULT_MATH (cuDNN may use TF32 tensor ops),
// otherwise CUDNN_FMA_MATH (strict fp32); f64 CUDNN_DEFAULT_MATH.
//
// Algorithms (torch.backends.cudnn.benchmark = True): the first call of a geometry (device,
// direction, dtype, math type, x and w shapes, padding, stride, dilation, groups, and the
// buffers' alignments, since some kernels need 16-byte aligned data) times every algorithm
// with cudnnFind*AlgorithmEx, writing only into a scratch output placed at the real output's
// alignment (a caller's output may hold values to accumulate into), with a workspace of
// min(1 GiB, 90% of free memory). The fastest that succeeded within that workspace is cached
// under a mutex; later calls take its workspace from the caching allocator and run it with
// alpha 1 and beta 0 or 1.
#include "core/cuda/conv_cudnn.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "core/cuda/backend.h"
#include "core/cuda/common.h"

namespace tether::cuda {

namespace {

constexpr size_t kMaxSearchWorkspace = size_t{1} << 30;  // 1 GiB
constexpr uintptr_t kAlign = 16;                         // the widest alignment cuDNN kernels ask for

// A buffer's address modulo kAlign.
int64_t misalignment(const void* p) { return static_cast<int64_t>(reinterpret_cast<uintptr_t>(p) % kAlign); }

cudnnDataType_t data_type(DType dtype) {
  switch (dtype) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    default: break;
  }
  TETHER_FAIL("conv2d: expected f32/f64 tensors, got ", dtype_name(dtype));
}

// cuDNN's descriptors take int sizes.
int to_int(int64_t v, const char* what) {
  TETHER_CHECK(v >= 0 && v <= INT_MAX, "conv2d: ", what, " ", v, " is beyond cuDNN's int range");
  return static_cast<int>(v);
}

// 4-D packed NCHW shapes, checked against cuDNN's limits (no size 0, < 2^31 elements).
std::array<int, 4> dims4(const Shape& s, const char* what) {
  TETHER_CHECK(s.size() == 4 && shape_numel(s) > 0 && shape_numel(s) <= INT_MAX, "conv2d: ", what, " ",
               shape_str(s), " must be 4-D, non-empty and under 2^31 elements for cuDNN");
  return {to_int(s[0], what), to_int(s[1], what), to_int(s[2], what), to_int(s[3], what)};
}

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(DType dtype, const Shape& shape, const char* what) {
    const auto n = dims4(shape, what);
    TETHER_CHECK_CUDNN(cudnnCreateTensorDescriptor(&d));
    TETHER_CHECK_CUDNN(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, data_type(dtype), n[0], n[1], n[2], n[3]));
  }
  ~TensorDesc() {
    if (d) cudnnDestroyTensorDescriptor(d);
  }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc(DType dtype, const Shape& shape) {
    const auto n = dims4(shape, "weight");
    TETHER_CHECK_CUDNN(cudnnCreateFilterDescriptor(&d));
    TETHER_CHECK_CUDNN(cudnnSetFilter4dDescriptor(d, data_type(dtype), CUDNN_TENSOR_NCHW, n[0], n[1], n[2], n[3]));
  }
  ~FilterDesc() {
    if (d) cudnnDestroyFilterDescriptor(d);
  }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc(DType dtype, const ops::Conv2dParams& p, cudnnMathType_t math) {
    TETHER_CHECK_CUDNN(cudnnCreateConvolutionDescriptor(&d));
    TETHER_CHECK_CUDNN(cudnnSetConvolution2dDescriptor(
        d, to_int(p.padding[0], "padding"), to_int(p.padding[1], "padding"), to_int(p.stride[0], "stride"),
        to_int(p.stride[1], "stride"), to_int(p.dilation[0], "dilation"), to_int(p.dilation[1], "dilation"),
        CUDNN_CROSS_CORRELATION, data_type(dtype)));
    TETHER_CHECK_CUDNN(cudnnSetConvolutionGroupCount(d, to_int(p.groups, "groups")));
    TETHER_CHECK_CUDNN(cudnnSetConvolutionMathType(d, math));
  }
  ~ConvDesc() {
    if (d) cudnnDestroyConvolutionDescriptor(d);
  }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// Everything one convolution call describes.
struct Conv {
  ConvDirection dir;
  int device;
  DType dtype;
  cudnnMathType_t math;
  Shape x_shape, w_shape, y_shape;
  const ops::Conv2dParams& p;
  void* x_ptr;
  void* w_ptr;
  void* y_ptr;
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;

  Conv(ConvDirection dir_, int device_, DType dtype_, cudnnMathType_t math_, const Shape& xs, const Shape& ws,
       const Shape& ys, const ops::Conv2dParams& p_, void* x_, void* w_, void* y_)
      : dir(dir_), device(device_), dtype(dtype_), math(math_), x_shape(xs), w_shape(ws), y_shape(ys), p(p_),
        x_ptr(x_), w_ptr(w_), y_ptr(y_), x(dtype_, xs, "input"), y(dtype_, ys, "output"), w(dtype_, ws),
        conv(dtype_, p_, math_) {}

  using Key = std::array<int64_t, 22>;
  Key key() const {
    return {static_cast<int64_t>(dir), device, static_cast<int64_t>(dtype), static_cast<int64_t>(math),
            x_shape[0], x_shape[1], x_shape[2], x_shape[3], w_shape[0], w_shape[1], w_shape[2], w_shape[3],
            p.padding[0], p.padding[1], p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], p.groups,
            misalignment(x_ptr), misalignment(w_ptr), misalignment(y_ptr)};
  }
  const char* direction_name() const {
    return dir == ConvDirection::forward         ? "forward"
           : dir == ConvDirection::backward_data ? "backward-data"
                                                 : "backward-weight";
  }
  const Shape& output_shape() const {
    return dir == ConvDirection::forward ? y_shape : dir == ConvDirection::backward_data ? x_shape : w_shape;
  }
  void* output_ptr() const {
    return dir == ConvDirection::forward ? y_ptr : dir == ConvDirection::backward_data ? x_ptr : w_ptr;
  }
};

struct Algo {
  int algo = 0;          // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  size_t workspace = 0;  // bytes it needs
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;  // the math type it was timed with
};

// The search's workspace, from the caching allocator; none when that allocation fails.
class SearchWorkspace {
 public:
  SearchWorkspace(int device, size_t bytes) : device_(device) {
    if (bytes == 0) return;
    try {
      ptr_ = cuda::alloc(device, bytes);
      bytes_ = bytes;
    } catch (const Error&) {
      // out of memory: search among the algorithms that need no workspace
    }
  }
  ~SearchWorkspace() {
    if (ptr_) cuda::free(device_, ptr_, bytes_);
  }
  SearchWorkspace(const SearchWorkspace&) = delete;
  SearchWorkspace& operator=(const SearchWorkspace&) = delete;
  void* ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  int device_;
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// The fastest result (cuDNN sorts them by time) that succeeded within the workspace.
template <typename Perf>
Algo pick(const Conv& c, const std::vector<Perf>& perf, int returned, size_t limit) {
  for (int i = 0; i < returned; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= limit)
      return {static_cast<int>(perf[i].algo), perf[i].memory, perf[i].mathType};
  TETHER_FAIL("conv2d: cuDNN has no ", c.direction_name(), " algorithm for input ", shape_str(c.x_shape),
              ", weight ", shape_str(c.w_shape), ", ", dtype_name(c.dtype), " (", returned, " tried",
              returned > 0 ? ", the fastest failed with " : "",
              returned > 0 ? cudnnGetErrorString(perf[0].status) : "", ")");
}

Algo search(const Conv& c) {
  cudnnHandle_t h = cudnn(c.device);
  size_t free_bytes = 0, total_bytes = 0;
  TETHER_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  SearchWorkspace ws(c.device, std::min(kMaxSearchWorkspace, free_bytes / 10 * 9));
  // The timed runs write here, never into the caller's output, at the same alignment (the
  // allocator's blocks start at cudaMalloc addresses, aligned to 256 bytes).
  const int64_t out_bytes = shape_numel(c.output_shape()) * static_cast<int64_t>(element_size(c.dtype));
  const Tensor scratch = Tensor::empty({out_bytes + static_cast<int64_t>(kAlign)}, DType::u8, Device::cuda(c.device));
  void* out = static_cast<char*>(scratch.raw_data()) + misalignment(c.output_ptr());
  void* x = c.x_ptr;
  void* w = c.w_ptr;
  void* y = c.y_ptr;
  int max_count = 0, returned = 0;
  switch (c.dir) {
    case ConvDirection::forward: {
      TETHER_CHECK_CUDNN(cudnnGetConvolutionForwardAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      TETHER_CHECK_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(h, c.x.d, x, c.w.d, w, c.conv.d, c.y.d, out,
                                                                max_count, &returned, perf.data(), ws.ptr(),
                                                                ws.bytes()));
      return pick(c, perf, returned, ws.bytes());
    }
    case ConvDirection::backward_data: {
      TETHER_CHECK_CUDNN(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      TETHER_CHECK_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(h, c.w.d, w, c.y.d, y, c.conv.d, c.x.d, out,
                                                                     max_count, &returned, perf.data(), ws.ptr(),
                                                                     ws.bytes()));
      return pick(c, perf, returned, ws.bytes());
    }
    case ConvDirection::backward_weight: {
      TETHER_CHECK_CUDNN(cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, &max_count));
      std::vector<cudnnConvolutionBwdFilterAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
      TETHER_CHECK_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, c.x.d, x, c.y.d, y, c.conv.d, c.w.d,
                                                                       out, max_count, &returned, perf.data(),
                                                                       ws.ptr(), ws.bytes()));
      return pick(c, perf, returned, ws.bytes());
    }
  }
  TETHER_FAIL("conv2d: bad direction");
}

// The cached algorithm of c's geometry, searched on first use (under the lock, so one
// geometry is searched once even when threads race).
Algo algorithm(const Conv& c) {
  static std::mutex mutex;
  static auto* cache = new std::map<Conv::Key, Algo>();  // never destroyed, like the allocator's pools
  const Conv::Key key = c.key();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache->find(key);
  if (it != cache->end()) return it->second;
  const Algo algo = search(c);
  cache->emplace(key, algo);
  return algo;
}

// cuDNN's alpha (1) and beta (0, or 1 to accumulate) in host memory: double for f64 data,
// float otherwise.
struct Scaling {
  float f[2];
  double d[2];
  bool is_double;
  Scaling(DType dtype, bool accumulate)
      : f{1.0f, accumulate ? 1.0f : 0.0f}, d{1.0, accumulate ? 1.0 : 0.0}, is_double(dtype == DType::f64) {}
  const void* alpha() const { return is_double ? static_cast<const void*>(&d[0]) : &f[0]; }
  const void* beta() const { return is_double ? static_cast<const void*>(&d[1]) : &f[1]; }
};

}  // namespace

void cudnn_convolution(ConvDirection dir, int device, DType dtype, const Shape& x_shape, const Shape& w_shape,
                       const ops::Conv2dParams& p, void* x, void* w, void* y, bool accumulate) {
  const cudnnMathType_t math =
      dtype == DType::f32 && !cuda_math().tf32_conv ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
  const Conv c(dir, device, dtype, math, x_shape, w_shape, ops::conv2d_output_shape(x_shape, w_shape, p), p, x, w,
               y);
  const Algo algo = algorithm(c);
  // cuDNN picks the kernel from algorithm and math type together: run with the math type the
  // search timed (as PyTorch does), except that strict fp32 (FMA) is never widened to TF32
  // and nothing is narrowed to fp16 (ALLOW_CONVERSION).
  if (math != CUDNN_FMA_MATH && algo.math != math && algo.math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
    TETHER_CHECK_CUDNN(cudnnSetConvolutionMathType(c.conv.d, algo.math));
  const Tensor workspace =
      algo.workspace > 0 ? Tensor::empty({static_cast<int64_t>(algo.workspace)}, DType::u8, Device::cuda(device))
                         : Tensor();
  void* ws = workspace.defined() ? workspace.raw_data() : nullptr;
  const Scaling s(dtype, accumulate);
  cudnnHandle_t h = cudnn(device);
  switch (dir) {
    case ConvDirection::forward:
      TETHER_CHECK_CUDNN(cudnnConvolutionForward(h, s.alpha(), c.x.d, x, c.w.d, w, c.conv.d,
                                                 static_cast<cudnnConvolutionFwdAlgo_t>(algo.algo), ws,
                                                 algo.workspace, s.beta(), c.y.d, y));
      return;
    case ConvDirection::backward_data:
      TETHER_CHECK_CUDNN(cudnnConvolutionBackwardData(h, s.alpha(), c.w.d, w, c.y.d, y, c.conv.d,
                                                      static_cast<cudnnConvolutionBwdDataAlgo_t>(algo.algo), ws,
                                                      algo.workspace, s.beta(), c.x.d, x));
      return;
    case ConvDirection::backward_weight:
      TETHER_CHECK_CUDNN(cudnnConvolutionBackwardFilter(h, s.alpha(), c.x.d, x, c.y.d, y, c.conv.d,
                                                        static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo.algo),
                                                        ws, algo.workspace, s.beta(), c.w.d, w));
      return;
  }
}

}  // namespace tether::cuda
