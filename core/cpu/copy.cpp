// Strided copies with dtype conversion, and fill.
#include "core/cpu/kernels.h"
#include "core/cpu/strided.h"

namespace tether::cpu {

void copy_(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    using dst_t = scalar_t;
    dispatch_all(src.dtype(), "copy_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
      using src_t = scalar_t;
      dst_t* d = dst.data<dst_t>();
      const src_t* s = src.data<src_t>();
      for_each_row<2>(dst.shape(), {dst.strides(), src.strides()},
                      [&](const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                        dst_t* dp = d + off[0];
                        const src_t* sp = s + off[1];
                        if (st[0] == 1 && st[1] == 1) {
                          for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<dst_t>(sp[i]);
                        } else {
                          for (int64_t i = 0; i < n; ++i) dp[i * st[0]] = static_cast<dst_t>(sp[i * st[1]]);
                        }
                      });
    });
  });
}

void fill_(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), "fill_", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t v = static_cast<scalar_t>(value);
    for_each_row<1>(dst.shape(), {dst.strides()},
                    [&](const std::array<int64_t, 1>& off, int64_t n, const std::array<int64_t, 1>& st) {
                      for (int64_t i = 0; i < n; ++i) d[off[0] + i * st[0]] = v;
                    });
  });
}

}  // namespace tether::cpu
