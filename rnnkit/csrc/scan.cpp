// The sequential linear recurrence of the `scan` backend (rnnkit/layers/backends/scan.py) and
// its transpose, one pass over T each: a torch op a step costs more than the step's work at
// B * H = 4096 elements, and minGRU / minLSTM run T of them forward and T backward.

#include "common.h"

namespace rnnkit_native {
namespace {

template <typename S>
void forward_loop(const S* a, const S* b, const S* h0, S* hs, int64_t T, int64_t n) {
  const S* h = h0;
  for (int64_t t = 0; t < T; ++t) {
    const S *at = a + t * n, *bt = b + t * n;
    S* ht = hs + t * n;
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) ht[k] = at[k] * h[k] + bt[k];
    h = ht;
  }
}

template <typename S>
void reverse_loop(const S* a, const S* g, S* delta, int64_t T, int64_t n) {
  std::copy(g + (T - 1) * n, g + T * n, delta + (T - 1) * n);
  for (int64_t t = T - 2; t >= 0; --t) {
    const S *a_next = a + (t + 1) * n, *gt = g + t * n, *d_next = delta + (t + 1) * n;
    S* dt = delta + t * n;
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) dt[k] = a_next[k] * d_next[k] + gt[k];
  }
}

// h_t = a_t h_{t-1} + b_t for a, b (T, B, H) and h0 (B, H) -> hs (T, B, H)
Tensor linear_recurrence(const Tensor& a, const Tensor& b, const Tensor& h0) {
  check_contiguous({&a, &b, &h0});
  Tensor hs = at::empty_like(b);
  const int64_t T = a.size(0), n = h0.numel();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "linear_recurrence", [&] {
    forward_loop<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(),
                           h0.data_ptr<scalar_t>(), hs.data_ptr<scalar_t>(), T, n);
  });
  return hs;
}

// delta_t = g_t + a_{t+1} delta_{t+1}, delta_{T-1} = g_{T-1}, for a, g (T, B, H)
Tensor reverse_linear_recurrence(const Tensor& a, const Tensor& g) {
  check_contiguous({&a, &g});
  Tensor delta = at::empty_like(g);
  const int64_t T = a.size(0), n = T > 0 ? a.numel() / T : 0;
  if (T == 0) return delta;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "reverse_linear_recurrence", [&] {
    reverse_loop<scalar_t>(a.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(),
                           delta.data_ptr<scalar_t>(), T, n);
  });
  return delta;
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def("linear_recurrence(Tensor a, Tensor b, Tensor h0) -> Tensor",
        &rnnkit_native::linear_recurrence);
  m.def("reverse_linear_recurrence(Tensor a, Tensor g) -> Tensor",
        &rnnkit_native::reverse_linear_recurrence);
}
