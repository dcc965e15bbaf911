// The fused DTNH passes of regularizers/cuda/dtnh_fused.h. The sums are ops::dot's terms
// (double(x)·y in double); the update rounds twice, as ops::scale_ then ops::axpy_ with alpha 1
// (rn:: intrinsics keep nvcc from fusing the product into the addition).
#include "regularizers/cuda/dtnh_fused.h"

#include "core/cuda/multi_tensor.cuh"
#include "core/cuda/rounding.cuh"

namespace tether::reg::cuda {
namespace {

namespace mt = tether::cuda::mt;
namespace rn = tether::cuda::rn;

struct DtnhExtra {
  double s;  // the correction's scale (dtnh_apply)
};
using DtnhPack = mt::Pack<2, DtnhExtra>;  // g_J, g_Ω (null: zero)
using DtnhItem = mt::Item<2, DtnhExtra>;

// a, b, c of a chunk into partial[j·slots + slot], j = 0, 1, 2.
template <typename T>
struct SumsOp {
  double* partial;
  int64_t slots;
  __device__ void operator()(const DtnhPack& pack, int t, int64_t chunk) const {
    const T* gj = static_cast<const T*>(pack.ptr[0][t]);
    const T* go = static_cast<const T*>(pack.ptr[1][t]);
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    double a = 0, b = 0, c = 0;
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      const double x = static_cast<double>(gj[i]);
      a += x * x;
      if (go) {
        const double y = static_cast<double>(go[i]);
        b += y * y;
        c += x * y;
      }
    }
    a = mt::block_sum(a);
    b = mt::block_sum(b);
    c = mt::block_sum(c);
    if (threadIdx.x == 0) {
      const int64_t at = pack.slot[t] + chunk;
      partial[at] = a;
      partial[slots + at] = b;
      partial[2 * slots + at] = c;
    }
  }
};

template <typename T>
struct ApplyOp {
  __device__ void operator()(const DtnhPack& pack, int t, int64_t chunk) const {
    T* gj = static_cast<T*>(pack.ptr[0][t]);
    const T* go = static_cast<const T*>(pack.ptr[1][t]);
    const double s = pack.extra[t].s;
    const T factor = static_cast<T>(1 - s);
    int64_t lo, hi;
    mt::chunk_range(pack, t, chunk, lo, hi);
    for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      T y = gj[i];
      if (s != 0) y = rn::mul(y, factor);
      if (go) y = rn::add(y, go[i]);
      gj[i] = y;
    }
  }
};

// Checks the pairs and calls body(T{}, items, indices) per dtype present, items in list order.
template <typename Body>
void per_dtype(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega, Body body) {
  TETHER_CHECK(g_j.size() == g_omega.size(), "dtnh: ", g_j.size(), " loss gradients but ", g_omega.size(),
               " penalty gradients");
  if (g_j.empty()) return;
  const Device device = g_j.front().device();
  for (size_t k = 0; k < g_j.size(); ++k) {
    const Tensor& x = g_j[k];
    TETHER_CHECK(x.device() == device && x.is_contiguous() && (x.dtype() == DType::f32 || x.dtype() == DType::f64),
                 "dtnh (CUDA): the loss gradient ", x.str(), " must be a contiguous f32/f64 tensor on ", device.str());
    const Tensor& y = g_omega[k];
    TETHER_CHECK(!y.defined() || (y.shape() == x.shape() && y.dtype() == x.dtype() && y.device() == device &&
                                  y.is_contiguous()),
                 "dtnh (CUDA): the penalty gradient ", y.defined() ? y.str() : "", " does not match the loss gradient ",
                 x.str(), " (same shape, dtype and device, contiguous)");
  }
  for (DType dtype : {DType::f32, DType::f64}) {
    std::vector<DtnhItem> items;
    std::vector<size_t> which;
    for (size_t k = 0; k < g_j.size(); ++k) {
      if (g_j[k].dtype() != dtype) continue;
      DtnhItem item;
      item.ptr[0] = g_j[k].raw_data();
      item.ptr[1] = g_omega[k].defined() ? g_omega[k].raw_data() : nullptr;
      item.units = g_j[k].numel();
      items.push_back(item);
      which.push_back(k);
    }
    if (items.empty()) continue;
    dispatch_float(dtype, "dtnh", [&](auto tag) { body(tag, items, which, device); });
  }
}

}  // namespace

std::vector<DtnhSums> dtnh_sums(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega) {
  std::vector<DtnhSums> out(g_j.size());
  per_dtype(g_j, g_omega, [&](auto tag, std::vector<DtnhItem>& items, const std::vector<size_t>& which, Device device) {
    using T = decltype(tag);
    const int64_t slots = mt::assign_slots(items);
    const Tensor partial = mt::scratch(3 * slots, device);
    mt::launch(items, tether::cuda::stream(device.index), SumsOp<T>{partial.data<double>(), slots}, "dtnh_sums");
    const std::vector<double> host = partial.to_vector<double>();
    const std::vector<double> a = mt::sum_slots(host, items), b = mt::sum_slots(host, items, slots),
                              c = mt::sum_slots(host, items, 2 * slots);
    for (size_t j = 0; j < which.size(); ++j) out[which[j]] = {a[j], b[j], c[j]};
  });
  return out;
}

void dtnh_apply(const std::vector<Tensor>& g_j, const std::vector<Tensor>& g_omega, const std::vector<double>& s) {
  TETHER_CHECK(s.size() == g_j.size(), "dtnh: ", s.size(), " scales for ", g_j.size(), " gradients");
  per_dtype(g_j, g_omega, [&](auto tag, std::vector<DtnhItem>& items, const std::vector<size_t>& which, Device device) {
    using T = decltype(tag);
    for (size_t j = 0; j < items.size(); ++j) {
      items[j].extra.s = s[which[j]];
      if (s[which[j]] == 0 && !items[j].ptr[1]) items[j].units = 0;  // nothing to change
    }
    mt::launch(items, tether::cuda::stream(device.index), ApplyOp<T>{}, "dtnh_apply");
  });
}

}  // namespace tether::reg::cuda
