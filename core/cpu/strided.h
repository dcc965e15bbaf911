// Iteration over strided, broadcast operands: the loop every CPU elementwise kernel shares.
// Dimensions are coalesced where every operand allows, then the innermost dimension becomes a
// tight loop and the outer ones are spread over OpenMP threads.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include <omp.h>

#include "core/shapes.h"  // broadcast_shapes / broadcast_strides
#include "core/tensor.h"

namespace tether::cpu {

// Elementwise work below this many elements stays on one thread.
constexpr int64_t kParallelGrain = 32768;

// Calls row(offsets, inner_len, inner_strides) for every innermost row of `shape`, where
// offsets[k] is operand k's element offset at the row start. `strides[k]` has shape.size() entries.
template <size_t K, typename Row>
void for_each_row(Shape shape, std::array<Shape, K> strides, Row&& row) {
  // Drop size-1 dims, then merge dims that are contiguous for every operand.
  Shape sh;
  std::array<Shape, K> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sh.push_back(shape[d]);
    for (size_t k = 0; k < K; ++k) st[k].push_back(strides[k][d]);
  }
  if (sh.empty()) {
    sh.push_back(1);
    for (size_t k = 0; k < K; ++k) st[k].push_back(0);
  }
  for (int d = static_cast<int>(sh.size()) - 2; d >= 0; --d) {
    bool mergeable = true;
    for (size_t k = 0; k < K; ++k) mergeable &= st[k][d] == st[k][d + 1] * sh[d + 1];
    if (!mergeable) continue;
    sh[d] *= sh[d + 1];
    for (size_t k = 0; k < K; ++k) st[k][d] = st[k][d + 1];
    sh.erase(sh.begin() + d + 1);
    for (size_t k = 0; k < K; ++k) st[k].erase(st[k].begin() + d + 1);
  }
  const int nd = static_cast<int>(sh.size());
  const int64_t inner = sh[nd - 1];
  std::array<int64_t, K> inner_strides;
  for (size_t k = 0; k < K; ++k) inner_strides[k] = st[k][nd - 1];
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= sh[d];
  auto run = [&](int64_t r) {
    std::array<int64_t, K> off{};
    int64_t rem = r;
    for (int d = nd - 2; d >= 0; --d) {
      const int64_t i = rem % sh[d];
      rem /= sh[d];
      for (size_t k = 0; k < K; ++k) off[k] += i * st[k][d];
    }
    row(off, inner, inner_strides);
  };
  if (rows * inner >= kParallelGrain && rows > 1) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; ++r) run(r);
  } else {
    for (int64_t r = 0; r < rows; ++r) run(r);
  }
}

// Parallel loop over [0, n) in contiguous chunks; fn(begin, end).
template <typename Fn>
void parallel_chunks(int64_t n, Fn&& fn) {
  if (n < kParallelGrain) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t begin = n * t / nt, end = n * (t + 1) / nt;
    fn(begin, end);
  }
}

}  // namespace tether::cpu
