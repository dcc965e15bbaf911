// CPU 2-D convolution (NCHW, weight [O, C/groups, kh, kw]): forward, backward-data,
// backward-weight and backward-bias, with stride, padding, dilation and groups.
//
// General convolutions are im2col + GEMM (Eigen): per group, the column matrix
// col[C/g * kh * kw, OH * OW] of an image turns the convolution into
//   forward        y_g   = w_g col                  [O/g, OH*OW]
//   backward-data  dcol  = w_g^T dy_g, then col2im (scatter-add into dx)
//   backward-weight dw_g += dy_g col^T
// A 1x1, stride-1, unpadded convolution needs no im2col: the image is already col.
// Depthwise convolutions (one input channel per group) use direct loops instead, since
// their GEMMs would have a single row.
//
// Parallel schemes (chosen per call, see Plan):
// - by image: each thread takes whole images, with its own column buffer and single-threaded
//   GEMMs; the column matrix is built a band of output pixels at a time so it stays in the
//   L2 cache between im2col and the GEMM. Forward and backward-data deal images dynamically
//   (a thread slowed down by other jobs does not hold the others up; each image's result
//   does not depend on its thread); backward-weight sums per-thread partial gradients and
//   deals images statically, so its rounding is the same from run to run;
// - by chunk: for small feature maps (or fewer images than threads), a chunk of images is
//   laid side by side as columns [K, images * OH*OW], so the GEMMs are wide enough; the
//   columns (for backward-weight: dw's K columns) are split evenly among the threads,
//   each running single-threaded GEMMs (no synchronisation inside Eigen).
// Scratch buffers are per thread and only grow, so steady-state training allocates nothing here.

// GCC 12 emits false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 packet code
// (_mm512_undefined_* used as a don't-care operand); silence them for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
// With -march=native on AMD Zen 4, GCC 12 tunes for znver3 and folds the lhs loads of
// Eigen's GEBP micro-kernel into every FMA (12 x 64-byte loads per 12 FMAs), which makes the
// kernel load-bound at ~65% of peak; Ice Lake tuning keeps them in registers (~85%).
// Applies to everything in this file, including the Eigen templates instantiated here.
#pragma GCC target("tune=icelake-server")
#endif

#include <immintrin.h>
#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <cstring>
#include <memory>
#include <vector>

#include "core/cpu/gemm_raw.h"
#include "core/cpu/kernels.h"

namespace tether::cpu {

namespace {

// ---- geometry ------------------------------------------------------------------------------
struct Geom {
  int64_t N, C, H, W, O, KH, KW, OH, OW;
  int64_t sh, sw, ph, pw, dh, dw, G;
  int64_t Cg, Og, K;  // input/output channels per group; K = Cg*KH*KW, the GEMM depth
  int64_t HW, OHW;
  bool pointwise;  // 1x1, stride 1, no padding: the image is its own column matrix
  bool depthwise;  // one input channel per group (groups == C)
};

Geom make_geom(const Shape& x, const Shape& w, const Conv2dParams& p) {
  const Shape y = ops::conv2d_output_shape(x, w, p);
  Geom g{};
  g.N = x[0], g.C = x[1], g.H = x[2], g.W = x[3];
  g.O = w[0], g.KH = w[2], g.KW = w[3];
  g.OH = y[2], g.OW = y[3];
  g.sh = p.stride[0], g.sw = p.stride[1], g.ph = p.padding[0], g.pw = p.padding[1];
  g.dh = p.dilation[0], g.dw = p.dilation[1], g.G = p.groups;
  g.Cg = g.C / g.G, g.Og = g.O / g.G, g.K = g.Cg * g.KH * g.KW;
  g.HW = g.H * g.W, g.OHW = g.OH * g.OW;
  g.pointwise = g.KH == 1 && g.KW == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
  g.depthwise = g.Cg == 1 && g.G == g.C && g.G > 1;
  return g;
}

// Output columns [lo, hi) whose input column ow*s + off lies inside [0, len).
inline void valid_range(int64_t off, int64_t s, int64_t len, int64_t out_len, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = len - off <= 0 ? 0 : (len - off + s - 1) / s;
  lo = std::min(lo, out_len);
  hi = std::clamp(hi, lo, out_len);
}

// ---- scratch -------------------------------------------------------------------------------
// A per-thread buffer that only grows (64-byte aligned, uninitialised).
class Scratch {
 public:
  void* get(size_t bytes) {
    if (bytes > cap_) {
      const size_t rounded = (bytes + 4095) / 4096 * 4096;
      void* p = std::aligned_alloc(64, rounded);
      TETHER_CHECK(p != nullptr, "conv2d: out of memory allocating ", rounded, " bytes of scratch");
      buf_.reset(p);
      cap_ = rounded;
    }
    return buf_.get();
  }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  std::unique_ptr<void, Free> buf_;
  size_t cap_ = 0;
};

template <typename T>
T* scratch(int slot, int64_t count) {
  thread_local Scratch slots[3];
  return static_cast<T*>(slots[slot].get(static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T)));
}

// ---- GEMM on raw row-major matrices (alpha = 1; beta 0 or 1) --------------------------------
// C[M, N] (=|+=) op(A) op(B) (core/cpu/gemm_raw.h with alpha 1, beta 0 or 1).
template <typename T>
inline void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B,
                 int64_t ldb, bool add, T* C, int64_t ldc) {
  gemm_raw(ta, tb, M, N, K, T(1), A, lda, B, ldb, add ? T(1) : T(0), C, ldc);
}

// ---- strided row copies ----------------------------------------------------------------------
// dst[i] = src[i*s] and dst[i*s] += src[i] for i in [0, n). Stride 2 (every downsampling conv)
// gets an AVX-512 permute path: compilers otherwise emit gathers, ~4x slower than a copy.
template <typename T>
inline void gather_row(T* dst, const T* src, int64_t n, int64_t s) {
  if (s == 1) {
    if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(T));
    return;
  }
  int64_t i = 0;
#if defined(__AVX512F__)
  if (s == 2) {
    // Each step reads src[2i .. 2i+2L-1]: stay one vector short of the end so the last
    // (odd, unused) element read is still inside the row.
    if constexpr (std::is_same_v<T, float>) {
      const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      for (; i + 17 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(_mm512_loadu_ps(src + 2 * i), even,
                                                         _mm512_loadu_ps(src + 2 * i + 16)));
    } else if constexpr (std::is_same_v<T, double>) {
      const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
      for (; i + 9 <= n; i += 8)
        _mm512_storeu_pd(dst + i, _mm512_permutex2var_pd(_mm512_loadu_pd(src + 2 * i), even,
                                                         _mm512_loadu_pd(src + 2 * i + 8)));
    }
  }
#endif
  for (; i < n; ++i) dst[i] = src[i * s];
}

template <typename T>
inline void scatter_add_row(T* dst, const T* src, int64_t n, int64_t s) {
  if (s == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
    return;
  }
  int64_t i = 0;
#if defined(__AVX512F__)
  if (s == 2) {
    // Spread 16 (8) values to the even lanes of two vectors; odd lanes add 0. The odd
    // elements are rewritten unchanged, so the caller must own the whole row (it does).
    if constexpr (std::is_same_v<T, float>) {
      const __m512i lo = _mm512_setr_epi32(0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0);
      const __m512i hi = _mm512_setr_epi32(8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0);
      for (; i + 17 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(src + i);
        T* d = dst + 2 * i;
        _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), _mm512_maskz_permutexvar_ps(0x5555, lo, v)));
        _mm512_storeu_ps(d + 16, _mm512_add_ps(_mm512_loadu_ps(d + 16), _mm512_maskz_permutexvar_ps(0x5555, hi, v)));
      }
    } else if constexpr (std::is_same_v<T, double>) {
      const __m512i lo = _mm512_setr_epi64(0, 0, 1, 0, 2, 0, 3, 0);
      const __m512i hi = _mm512_setr_epi64(4, 0, 5, 0, 6, 0, 7, 0);
      for (; i + 9 <= n; i += 8) {
        const __m512d v = _mm512_loadu_pd(src + i);
        T* d = dst + 2 * i;
        _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), _mm512_maskz_permutexvar_pd(0x55, lo, v)));
        _mm512_storeu_pd(d + 8, _mm512_add_pd(_mm512_loadu_pd(d + 8), _mm512_maskz_permutexvar_pd(0x55, hi, v)));
      }
    }
  }
#endif
  for (; i < n; ++i) dst[i * s] += src[i];
}

// ---- im2col / col2im -------------------------------------------------------------------------
// For input channels [c0, c1) of one group of one image (x points at the group's channel 0)
// and output pixels [p0, p1) (p = oh*OW + ow): col[(c*KH + i)*KW + j][p - p0] =
// x[c][oh*sh - ph + i*dh][ow*sw - pw + j*dw], 0 in the padding. Rows of col are `ldc` apart.
template <typename T>
void im2col(const T* x, const Geom& g, int64_t c0, int64_t c1, int64_t p0, int64_t p1, T* col, int64_t ldc) {
  const int64_t OW = g.OW;
  for (int64_t c = c0; c < c1; ++c) {
    const T* xc = x + c * g.HW;
    for (int64_t i = 0; i < g.KH; ++i) {
      for (int64_t j = 0; j < g.KW; ++j) {
        T* dst = col + ((c * g.KH + i) * g.KW + j) * ldc - p0;  // indexed by p
        const int64_t woff = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(woff, g.sw, g.W, OW, lo, hi);
        for (int64_t p = p0; p < p1;) {
          const int64_t oh = p / OW, a = p - oh * OW, b = std::min(OW, a + (p1 - p));
          T* d = dst + oh * OW;  // d[ow] is pixel (oh, ow)
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(d + a, d + b, T(0));
          } else {
            const int64_t va = std::clamp(lo, a, b), vb = std::clamp(hi, va, b);
            std::fill(d + a, d + va, T(0));
            gather_row(d + va, xc + ih * g.W + va * g.sw + woff, vb - va, g.sw);
            std::fill(d + vb, d + b, T(0));
          }
          p += b - a;
        }
      }
    }
  }
}

// The adjoint of im2col: x[c][ih][iw] += col[...] for the same index map (x is the gradient).
template <typename T>
void col2im(const T* col, int64_t ldc, const Geom& g, int64_t c0, int64_t c1, int64_t p0, int64_t p1, T* x) {
  const int64_t OW = g.OW;
  for (int64_t c = c0; c < c1; ++c) {
    T* xc = x + c * g.HW;
    for (int64_t i = 0; i < g.KH; ++i) {
      for (int64_t j = 0; j < g.KW; ++j) {
        const T* src = col + ((c * g.KH + i) * g.KW + j) * ldc - p0;
        const int64_t woff = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(woff, g.sw, g.W, OW, lo, hi);
        for (int64_t p = p0; p < p1;) {
          const int64_t oh = p / OW, a = p - oh * OW, b = std::min(OW, a + (p1 - p));
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih >= 0 && ih < g.H) {
            const int64_t va = std::clamp(lo, a, b), vb = std::clamp(hi, va, b);
            scatter_add_row(xc + ih * g.W + va * g.sw + woff, src + oh * OW + va, vb - va, g.sw);
          }
          p += b - a;
        }
      }
    }
  }
}

// ---- the plan: which parallel scheme, and band sizes -------------------------------------------
struct Plan {
  bool by_image = true;
  int64_t band = 1;        // output pixels per im2col band (by image)
  int64_t chunk = 1;       // columns per shared column matrix (by chunk; may span images)
  int64_t chunk_band = 1;  // columns per band (by chunk)
};

// Column matrices of about this many bytes stay in L2 between im2col and the GEMM.
constexpr int64_t kBandBytes = 512 * 1024;
// Below this many output pixels per image, GEMMs per image are too thin: go by chunk.
constexpr int64_t kMinPixelsByImage = 512;
// By chunk, a shared column matrix holds at most about this many bytes.
constexpr int64_t kChunkBytes = 16 << 20;

template <typename T>
Plan make_plan(const Geom& g) {
  Plan p;
  const int nt = omp_get_max_threads();
  const bool balanced = g.N % nt == 0 || g.N >= 4 * nt;
  p.by_image = balanced && g.OHW >= kMinPixelsByImage;
  // A band: at least 256 pixels so the GEMMs stay efficient, a multiple of 48 (the GEMM
  // micro-kernel's row count) unless it is the whole image. With a deep K the band cannot
  // stay in L2 anyway; wider bands then repack the weights less often.
  int64_t px = std::max<int64_t>(256, kBandBytes / std::max<int64_t>(g.K * int64_t(sizeof(T)), 1));
  if (g.K >= 2048) px = std::max<int64_t>(px, 768);
  p.chunk_band = (px + 47) / 48 * 48;
  p.band = std::min(g.OHW, p.chunk_band);
  const int64_t fit = kChunkBytes / std::max<int64_t>(g.K * int64_t(sizeof(T)), 1) / 48 * 48;
  p.chunk = std::min(g.N * g.OHW, std::max(fit, 2 * p.chunk_band));
  return p;
}

// Part t of nt of [0, n), in units of `align` (the last part takes the remainder).
inline void split_range(int64_t n, int t, int nt, int64_t align, int64_t& b, int64_t& e) {
  const int64_t units = (n + align - 1) / align;
  b = std::min(n, units * t / nt * align);
  e = std::min(n, units * (t + 1) / nt * align);
}

// Calls fn(b, p0, p1, offset) for each image b whose pixels [p0, p1) fall in the columns
// [c0, c1) of the whole batch (column = b*OHW + p); offset = b*OHW + p0 - c0.
template <typename Fn>
void for_image_segments(int64_t c0, int64_t c1, int64_t OHW, Fn&& fn) {
  for (int64_t c = c0; c < c1;) {
    const int64_t b = c / OHW, p0 = c - b * OHW, p1 = std::min(OHW, p0 + (c1 - c));
    fn(b, p0, p1, c - c0);
    c += p1 - p0;
  }
}

// ---- depthwise (direct) ----------------------------------------------------------------------
// Output channel o reads input channel o / m (m = O / C, the channel multiplier).
template <typename T>
void depthwise_forward(const T* x, const T* w, const T* bias, T* y, const Geom& g) {
  const int64_t m = g.Og;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t o = 0; o < g.O; ++o) {
      const T* xp = x + (n * g.C + o / m) * g.HW;
      const T* wp = w + o * g.KH * g.KW;
      T* yp = y + (n * g.O + o) * g.OHW;
      std::fill(yp, yp + g.OHW, bias ? bias[o] : T(0));
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        T* yr = yp + oh * g.OW;
        for (int64_t i = 0; i < g.KH; ++i) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* xr = xp + ih * g.W;
          for (int64_t j = 0; j < g.KW; ++j) {
            const T wv = wp[i * g.KW + j];
            const int64_t woff = j * g.dw - g.pw;
            int64_t lo, hi;
            valid_range(woff, g.sw, g.W, g.OW, lo, hi);
            if (g.sw == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow + woff];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * g.sw + woff];
            }
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_data(const T* gy, const T* w, T* gx, const Geom& g, bool accumulate) {
  const int64_t m = g.Og;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t c = 0; c < g.C; ++c) {
      T* gxp = gx + (n * g.C + c) * g.HW;
      if (!accumulate) std::fill(gxp, gxp + g.HW, T(0));
      for (int64_t o = c * m; o < (c + 1) * m; ++o) {
        const T* gyp = gy + (n * g.O + o) * g.OHW;
        const T* wp = w + o * g.KH * g.KW;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          const T* gyr = gyp + oh * g.OW;
          for (int64_t i = 0; i < g.KH; ++i) {
            const int64_t ih = oh * g.sh - g.ph + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            T* gxr = gxp + ih * g.W;
            for (int64_t j = 0; j < g.KW; ++j) {
              const T wv = wp[i * g.KW + j];
              const int64_t woff = j * g.dw - g.pw;
              int64_t lo, hi;
              valid_range(woff, g.sw, g.W, g.OW, lo, hi);
              if (g.sw == 1) {
                for (int64_t ow = lo; ow < hi; ++ow) gxr[ow + woff] += wv * gyr[ow];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) gxr[ow * g.sw + woff] += wv * gyr[ow];
              }
            }
          }
        }
      }
    }
  }
}

template <typename T>
void depthwise_backward_weight(const T* gy, const T* x, T* gw, const Geom& g, bool accumulate) {
  using Vec = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  const int64_t m = g.Og, taps = g.KH * g.KW;
  // Each thread owns whole filters: no reduction across threads. Row dot products are
  // vectorised in T; the sums over rows and images are kept in double.
#pragma omp parallel
  {
    std::vector<double> acc(static_cast<size_t>(taps));
#pragma omp for schedule(static)
    for (int64_t o = 0; o < g.O; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < g.N; ++n) {
        const T* gyp = gy + (n * g.O + o) * g.OHW;
        const T* xp = x + (n * g.C + o / m) * g.HW;
        for (int64_t i = 0; i < g.KH; ++i) {
          for (int64_t j = 0; j < g.KW; ++j) {
            const int64_t woff = j * g.dw - g.pw;
            int64_t lo, hi;
            valid_range(woff, g.sw, g.W, g.OW, lo, hi);
            if (hi <= lo) continue;
            T s = T(0);
            for (int64_t oh = 0; oh < g.OH; ++oh) {
              const int64_t ih = oh * g.sh - g.ph + i * g.dh;
              if (ih < 0 || ih >= g.H) continue;
              Eigen::Map<const Vec> gyr(gyp + oh * g.OW + lo, hi - lo);
              const T* xs = xp + ih * g.W + lo * g.sw + woff;
              if (g.sw == 1) s += gyr.dot(Eigen::Map<const Vec>(xs, hi - lo));
              else s += gyr.dot(Eigen::Map<const Vec, 0, Eigen::InnerStride<>>(xs, hi - lo, Eigen::InnerStride<>(g.sw)));
            }
            acc[static_cast<size_t>(i * g.KW + j)] += s;
          }
        }
      }
      T* gwp = gw + o * taps;
      for (int64_t t = 0; t < taps; ++t)
        gwp[t] = static_cast<T>((accumulate ? gwp[t] : T(0)) + acc[static_cast<size_t>(t)]);
    }
  }
}

// ---- forward -----------------------------------------------------------------------------------
template <typename T>
void forward_typed(const T* x, const T* w, const T* bias, T* y, const Geom& g) {
  if (g.depthwise) return depthwise_forward(x, w, bias, y, g);
  const Plan plan = make_plan<T>(g);
  if (plan.by_image) {
#pragma omp parallel
    {
      T* col = g.pointwise ? nullptr : scratch<T>(0, g.K * plan.band);
#pragma omp for schedule(dynamic, 1)
      for (int64_t n = 0; n < g.N; ++n) {
        T* yn = y + n * g.O * g.OHW;
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* xg = x + (n * g.C + gi * g.Cg) * g.HW;
          const T* wg = w + gi * g.Og * g.K;
          T* yg = yn + gi * g.Og * g.OHW;
          for (int64_t p0 = 0; p0 < g.OHW; p0 += plan.band) {
            const int64_t p1 = std::min(g.OHW, p0 + plan.band);
            if (g.pointwise) {
              gemm<T>(false, false, g.Og, p1 - p0, g.K, wg, g.K, xg + p0, g.HW, false, yg + p0, g.OHW);
            } else {
              im2col(xg, g, 0, g.Cg, p0, p1, col, p1 - p0);
              gemm<T>(false, false, g.Og, p1 - p0, g.K, wg, g.K, col, p1 - p0, false, yg + p0, g.OHW);
            }
            // y = conv(x) + b: the bias is added after the product, while the band is in cache.
            if (bias)
              for (int64_t o = 0; o < g.Og; ++o) {
                T* row = yg + o * g.OHW;
                const T bv = bias[gi * g.Og + o];
                for (int64_t q = p0; q < p1; ++q) row[q] += bv;
              }
          }
        }
      }
    }
    return;
  }
  // By chunk: the batch's columns (image-major) are split among the threads; each builds
  // its own columns a band at a time, multiplies and scatters them into y. No
  // synchronisation, no shared buffer.
#pragma omp parallel
  {
    int64_t c0, c1;
    split_range(g.N * g.OHW, omp_get_thread_num(), omp_get_num_threads(), 48, c0, c1);
    T* col = scratch<T>(0, g.K * std::min(c1 - c0, plan.chunk_band));
    T* out = scratch<T>(1, g.Og * std::min(c1 - c0, plan.chunk_band));
    // Bands of multiples of 48 columns from a multiple of 48 (the GEMM micro-kernel's rows).
    for (int64_t b0 = c0; b0 < c1; b0 += plan.chunk_band) {
      const int64_t b1 = std::min(c1, b0 + plan.chunk_band), nc = b1 - b0;
      for (int64_t gi = 0; gi < g.G; ++gi) {
        for_image_segments(b0, b1, g.OHW, [&](int64_t b, int64_t p0, int64_t p1, int64_t off) {
          im2col(x + (b * g.C + gi * g.Cg) * g.HW, g, 0, g.Cg, p0, p1, col + off, nc);
        });
        gemm<T>(false, false, g.Og, nc, g.K, w + gi * g.Og * g.K, g.K, col, nc, false, out, nc);
        for_image_segments(b0, b1, g.OHW, [&](int64_t b, int64_t p0, int64_t p1, int64_t off) {
          for (int64_t o = 0; o < g.Og; ++o) {
            const T* src = out + o * nc + off;
            T* dst = y + (b * g.O + gi * g.Og + o) * g.OHW + p0;
            const T bv = bias ? bias[gi * g.Og + o] : T(0);
            for (int64_t q = 0; q < p1 - p0; ++q) dst[q] = src[q] + bv;
          }
        });
      }
    }
  }
}

// ---- backward-data --------------------------------------------------------------------------------
template <typename T>
void backward_data_typed(const T* gy, const T* w, T* gx, const Geom& g, bool accumulate) {
  if (g.depthwise) return depthwise_backward_data(gy, w, gx, g, accumulate);
  const Plan plan = make_plan<T>(g);
  if (plan.by_image) {
#pragma omp parallel
    {
      T* dcol = g.pointwise ? nullptr : scratch<T>(0, g.K * plan.band);
#pragma omp for schedule(dynamic, 1)
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* gyg = gy + (n * g.O + gi * g.Og) * g.OHW;
          const T* wg = w + gi * g.Og * g.K;
          T* gxg = gx + (n * g.C + gi * g.Cg) * g.HW;
          if (g.pointwise) {  // dx_g = w_g^T dy_g
            gemm<T>(true, false, g.Cg, g.HW, g.Og, wg, g.K, gyg, g.OHW, accumulate, gxg, g.HW);
            continue;
          }
          if (!accumulate) std::fill(gxg, gxg + g.Cg * g.HW, T(0));
          for (int64_t p0 = 0; p0 < g.OHW; p0 += plan.band) {
            const int64_t p1 = std::min(g.OHW, p0 + plan.band);
            gemm<T>(true, false, g.K, p1 - p0, g.Og, wg, g.K, gyg + p0, g.OHW, false, dcol, p1 - p0);
            col2im(dcol, p1 - p0, g, 0, g.Cg, p0, p1, gxg);
          }
        }
      }
    }
    return;
  }
  // By chunk: the batch's columns are taken a chunk at a time into one shared dcol; each
  // thread gathers dy and computes dcol for its share of the chunk's columns, then, after a
  // barrier, col2im runs in parallel over (image, channel).
  const int64_t total = g.N * g.OHW;
  T* dcol = scratch<T>(0, g.K * plan.chunk);
#pragma omp parallel
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    if (!accumulate) {
#pragma omp for schedule(static)
      for (int64_t i = 0; i < g.N * g.C; ++i) std::fill(gx + i * g.HW, gx + (i + 1) * g.HW, T(0));
    }
    T* gyc = scratch<T>(1, g.Og * plan.chunk_band);
    for (int64_t q0 = 0; q0 < total; q0 += plan.chunk) {
      const int64_t q1 = std::min(total, q0 + plan.chunk), cols = q1 - q0;
      int64_t c0, c1;
      split_range(cols, tid, nth, 48, c0, c1);
      for (int64_t gi = 0; gi < g.G; ++gi) {
        for (int64_t b0 = q0 + c0; b0 < q0 + c1; b0 += plan.chunk_band) {
          const int64_t b1 = std::min(q0 + c1, b0 + plan.chunk_band), nc = b1 - b0;
          for_image_segments(b0, b1, g.OHW, [&](int64_t b, int64_t p0, int64_t p1, int64_t off) {
            for (int64_t o = 0; o < g.Og; ++o)
              std::memcpy(gyc + o * nc + off, gy + (b * g.O + gi * g.Og + o) * g.OHW + p0,
                          static_cast<size_t>(p1 - p0) * sizeof(T));
          });
          gemm<T>(true, false, g.K, nc, g.Og, w + gi * g.Og * g.K, g.K, gyc, nc, false, dcol + (b0 - q0), cols);
        }
#pragma omp barrier
        const int64_t first = q0 / g.OHW, last = (q1 - 1) / g.OHW;
#pragma omp for collapse(2) schedule(static)
        for (int64_t b = first; b <= last; ++b)
          for (int64_t c = 0; c < g.Cg; ++c) {
            const int64_t p0 = std::max(q0, b * g.OHW) - b * g.OHW, p1 = std::min(q1, (b + 1) * g.OHW) - b * g.OHW;
            col2im(dcol + (b * g.OHW + p0 - q0), cols, g, c, c + 1, p0, p1, gx + (b * g.C + gi * g.Cg) * g.HW);
          }
        // (the loop's implicit barrier keeps dcol until every col2im is done)
      }
    }
  }
}

// ---- backward-weight --------------------------------------------------------------------------------
template <typename T>
void backward_weight_typed(const T* gy, const T* x, T* gw, const Geom& g, bool accumulate) {
  if (g.depthwise) return depthwise_backward_weight(gy, x, gw, g, accumulate);
  const Plan plan = make_plan<T>(g);
  const int64_t wsize = g.O * g.K;
  if (plan.by_image) {
    const int nt = omp_get_max_threads();
    std::vector<T*> partial(static_cast<size_t>(nt), nullptr);  // per-thread sums (null: no image)
#pragma omp parallel
    {
      const int tid = omp_get_thread_num();
      T* col = g.pointwise ? nullptr : scratch<T>(0, g.K * plan.band);
      // Thread 0 sums straight into gw; the others into their own buffers, added at the end.
      // Images are dealt statically here, so the summation order (and the rounding) is the
      // same from run to run.
      T* acc = tid == 0 ? gw : scratch<T>(1, wsize);
      bool fresh = tid == 0 ? !accumulate : true;  // acc holds nothing yet: overwrite it
#pragma omp for schedule(static)
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t gi = 0; gi < g.G; ++gi) {
          const T* gyg = gy + (n * g.O + gi * g.Og) * g.OHW;
          const T* xg = x + (n * g.C + gi * g.Cg) * g.HW;
          T* accg = acc + gi * g.Og * g.K;
          if (g.pointwise) {  // dw_g += dy_g x_g^T
            gemm<T>(false, true, g.Og, g.K, g.OHW, gyg, g.OHW, xg, g.HW, !fresh, accg, g.K);
            continue;
          }
          for (int64_t p0 = 0; p0 < g.OHW; p0 += plan.band) {
            const int64_t p1 = std::min(g.OHW, p0 + plan.band);
            im2col(xg, g, 0, g.Cg, p0, p1, col, p1 - p0);
            gemm<T>(false, true, g.Og, g.K, p1 - p0, gyg + p0, g.OHW, col, p1 - p0, !fresh || p0 > 0, accg, g.K);
          }
        }
        fresh = false;
      }
      if (tid == 0 && fresh) std::fill(gw, gw + wsize, T(0));  // thread 0 had no image
      if (tid != 0 && !fresh) partial[static_cast<size_t>(tid)] = acc;
#pragma omp barrier
#pragma omp for schedule(static)
      for (int64_t i = 0; i < wsize; ++i) {
        T s = gw[i];
        for (int t = 1; t < nt; ++t)
          if (partial[static_cast<size_t>(t)]) s += partial[static_cast<size_t>(t)][i];
        gw[i] = s;
      }
    }
    return;
  }
  // By chunk: the batch's columns are taken a chunk at a time (col [K, chunk], dy [Og, chunk]).
  const int64_t total = g.N * g.OHW;
  const int nt = omp_get_max_threads();
  if (g.G >= nt) {
    // Many groups: each thread takes whole groups, with private buffers; no sharing at all.
#pragma omp parallel
    {
      T* col = scratch<T>(0, g.K * plan.chunk);
      T* gyc = scratch<T>(1, g.Og * plan.chunk);
      for (int64_t q0 = 0; q0 < total; q0 += plan.chunk) {
        const int64_t q1 = std::min(total, q0 + plan.chunk), cols = q1 - q0;
#pragma omp for schedule(static)
        for (int64_t gi = 0; gi < g.G; ++gi) {
          for_image_segments(q0, q1, g.OHW, [&](int64_t b, int64_t p0, int64_t p1, int64_t off) {
            im2col(x + (b * g.C + gi * g.Cg) * g.HW, g, 0, g.Cg, p0, p1, col + off, cols);
            for (int64_t o = 0; o < g.Og; ++o)
              std::memcpy(gyc + o * cols + off, gy + (b * g.O + gi * g.Og + o) * g.OHW + p0,
                          static_cast<size_t>(p1 - p0) * sizeof(T));
          });
          gemm<T>(false, true, g.Og, g.K, cols, gyc, cols, col, cols, accumulate || q0 > 0, gw + gi * g.Og * g.K, g.K);
        }
      }
    }
    return;
  }
  // Few groups: col and dy of a chunk are built in shared buffers, each thread its share of
  // the columns; after a barrier, each thread computes its share of dw's columns (K).
  T* col = scratch<T>(0, g.K * plan.chunk);
  T* gyc = scratch<T>(1, g.Og * plan.chunk);
#pragma omp parallel
  {
    const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
    int64_t k0, k1;
    split_range(g.K, tid, nth, 48, k0, k1);
    for (int64_t q0 = 0; q0 < total; q0 += plan.chunk) {
      const int64_t q1 = std::min(total, q0 + plan.chunk), cols = q1 - q0;
      int64_t c0, c1;
      split_range(cols, tid, nth, 48, c0, c1);
      for (int64_t gi = 0; gi < g.G; ++gi) {
        for_image_segments(q0 + c0, q0 + c1, g.OHW, [&](int64_t b, int64_t p0, int64_t p1, int64_t off) {
          im2col(x + (b * g.C + gi * g.Cg) * g.HW, g, 0, g.Cg, p0, p1, col + c0 + off, cols);
          for (int64_t o = 0; o < g.Og; ++o)
            std::memcpy(gyc + o * cols + c0 + off, gy + (b * g.O + gi * g.Og + o) * g.OHW + p0,
                        static_cast<size_t>(p1 - p0) * sizeof(T));
        });
#pragma omp barrier
        if (k1 > k0)
          gemm<T>(false, true, g.Og, k1 - k0, cols, gyc, cols, col + k0 * cols, cols, accumulate || q0 > 0,
                  gw + gi * g.Og * g.K + k0, g.K);
#pragma omp barrier
      }
    }
  }
}

// ---- tensor plumbing (the op front, core/ops.cpp, checks the arguments) ----------------------------
// Runs fn(ptr, acc) on a contiguous buffer for `out`: `out` itself when contiguous, else a
// temporary copied back afterwards (holding out's values first when accumulating).
template <typename T, typename Fn>
void with_contiguous_output(const Tensor& out, bool accumulate, Fn&& fn) {
  if (out.is_contiguous()) return fn(out.data<T>());
  Tensor tmp = accumulate ? out.clone() : Tensor::empty(out.shape(), out.dtype());
  fn(tmp.data<T>());
  ops::copy_(out, tmp);
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in, const Conv2dParams& p) {
  const Geom g = make_geom(x_in.shape(), w_in.shape(), p);
  Tensor y = Tensor::empty({g.N, g.O, g.OH, g.OW}, x_in.dtype());
  if (y.numel() == 0) return y;
  const Tensor x = ops::contiguous(x_in), w = ops::contiguous(w_in);
  const Tensor bias = bias_in.defined() ? ops::contiguous(bias_in) : Tensor();
  dispatch_float(x.dtype(), "conv2d", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    forward_typed<scalar_t>(x.data<scalar_t>(), w.data<scalar_t>(), bias.defined() ? bias.data<scalar_t>() : nullptr,
                            y.data<scalar_t>(), g);
  });
  return y;
}

// Runs kernel(ptr) on a contiguous view of a backward output; when no gradient flows back
// (an empty grad_y) the output is zeroed, or left alone when accumulating.
template <typename T, typename Kernel>
void backward_into(const Tensor& out, bool accumulate, bool nothing_flows, Kernel kernel) {
  with_contiguous_output<T>(out, accumulate, [&](T* p) {
    if (!nothing_flows) kernel(p);
    else if (!accumulate) std::fill(p, p + out.numel(), T(0));
  });
}

void conv2d_backward_data(const Tensor& grad_y, const Tensor& w_in, const Conv2dParams& p, const Tensor& grad_x,
                          bool accumulate) {
  const Geom g = make_geom(grad_x.shape(), w_in.shape(), p);
  if (grad_x.numel() == 0) return;
  const Tensor gy = ops::contiguous(grad_y), w = ops::contiguous(w_in);
  dispatch_float(gy.dtype(), "conv2d_backward_data", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    backward_into<scalar_t>(grad_x, accumulate, grad_y.numel() == 0, [&](scalar_t* gx) {
      backward_data_typed<scalar_t>(gy.data<scalar_t>(), w.data<scalar_t>(), gx, g, accumulate);
    });
  });
}

void conv2d_backward_weight(const Tensor& grad_y, const Tensor& x_in, const Conv2dParams& p, const Tensor& grad_w,
                            bool accumulate) {
  const Geom g = make_geom(x_in.shape(), grad_w.shape(), p);
  if (grad_w.numel() == 0) return;
  const Tensor gy = ops::contiguous(grad_y), x = ops::contiguous(x_in);
  dispatch_float(gy.dtype(), "conv2d_backward_weight", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    backward_into<scalar_t>(grad_w, accumulate, grad_y.numel() == 0, [&](scalar_t* gw) {
      backward_weight_typed<scalar_t>(gy.data<scalar_t>(), x.data<scalar_t>(), gw, g, accumulate);
    });
  });
}

void conv2d_backward_bias(const Tensor& grad_y, const Tensor& grad_b, bool accumulate) {
  const Tensor gy = ops::contiguous(grad_y);
  const int64_t N = gy.size(0), O = gy.size(1), P = gy.size(2) * gy.size(3);
  dispatch_float(gy.dtype(), "conv2d_backward_bias", [&](auto tag_) {
    using scalar_t = decltype(tag_);
    using Vec = Eigen::Matrix<scalar_t, Eigen::Dynamic, 1>;
    with_contiguous_output<scalar_t>(grad_b, accumulate, [&](scalar_t* gb) {
      const scalar_t* g = gy.data<scalar_t>();
#pragma omp parallel for schedule(static) if (N * O * P > 32768)
      for (int64_t o = 0; o < O; ++o) {
        double s = 0;  // rows are summed vectorised in scalar_t, the rows in double
        for (int64_t n = 0; n < N; ++n) s += Eigen::Map<const Vec>(g + (n * O + o) * P, P).sum();
        gb[o] = static_cast<scalar_t>((accumulate ? gb[o] : scalar_t(0)) + s);
      }
    });
  });
}

}  // namespace tether::cpu
