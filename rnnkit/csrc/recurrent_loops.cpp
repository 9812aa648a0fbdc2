// The C++ time loops of rnnkit's `native` backend, one file per kernel, linked into one library
// (rnnkit/layers/backends/native_build.py compiles every rnnkit/csrc/*.cpp): the same
// algorithms as the Python loops of the `bptt` backend (rnnkit/layers/backends/), written in
// C++ so that a step costs one matmul plus one pass over the gates instead of a dozen
// Python-dispatched tensor ops. Shared helpers and the buffer conventions: common.h.
//
// This file declares the library (TORCH_LIBRARY, once); every other file adds its ops with
// TORCH_LIBRARY_FRAGMENT(rnnkit_native, m). Here: the tapped recurrence, Elman's loop.

#include "common.h"

namespace rnnkit_native {
namespace {

// Tapped recurrence: h_t = act(z_t + sum_{k=1..K} h_{t-k} W_k^T), W = [W_1 .. W_K] (H, K*H),
// history h_{-K} .. h_{-1}. Elman is K = 1; NARX's closed loop in state form has K = its output
// delays (rnnkit/layers/backends/tapped.py). A step multiplies its new state by all K blocks at
// once, p_t = h_t [W_1; ..; W_K]^T (B, K*H), whose block k-1 is what step t+k adds: one matmul
// of contiguous rows, and the K additions ride along in the
// activation pass. The p of the last K steps live in a ring of K slots, p_t in slot t mod K.
// The backward runs the same scheme with q_t = da_t [W_1 .. W_K], block k-1 going to dh_{t-k}.

inline int64_t slot(int64_t t, int64_t K) { return ((t % K) + K) % K; }

// out[b] = act(z[b] + sum_k ring[slot(t-k)][b, block k-1]) for the B rows of one step
template <typename S, char kind>
void tapped_rows(const S* z, int64_t ldz, const S* ring, int64_t t, int64_t K, int64_t B,
                 int64_t H, S* out) {
  for (int64_t b = 0; b < B; ++b) {
    S* o = out + b * H;
    std::copy(z + b * ldz, z + b * ldz + H, o);
    for (int64_t k = 1; k <= K; ++k) {
      const S* p = ring + (slot(t - k, K) * B + b) * K * H + (k - 1) * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) o[j] += p[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) o[j] = activation<S, kind>(o[j]);
  }
}

// -> hs (T, B, H). z (T, B, H) rows contiguous, any row stride; history (K, B, H) oldest first,
// or none for zeros; w_stacked = [W_1; ..; W_K] (K*H, H).
Tensor tapped_forward(const Tensor& z, const std::optional<Tensor>& history, int64_t K,
                      const Tensor& w_stacked, const std::string& act) {
  const int64_t T = z.size(0), B = z.size(1), H = z.size(2);
  TORCH_CHECK(z.stride(2) == 1, "rnnkit_native: z needs contiguous rows");
  const RecurrentMatmul matmul(w_stacked);
  // ring[i] = p_{i-K} = h_{i-K} [W_1; ..; W_K]^T for the history, and slot(i - K) == i
  Tensor ring = history.has_value()
                    ? at::mm(history->reshape({K * B, H}), w_stacked.t()).view({K, B, K * H})
                    : at::zeros({K, B, K * H}, z.options());
  Tensor hs = at::empty({T, B, H}, z.options());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "tapped_forward", [&] {
    using S = scalar_t;
    with_activation(act, [&](auto kind) {
      for (int64_t t = 0; t < T; ++t) {
        tapped_rows<S, decltype(kind)::value>(z.data_ptr<S>() + t * z.stride(0), z.stride(1),
                                              ring.data_ptr<S>(), t, K, B, H,
                                              hs.data_ptr<S>() + t * B * H);
        if (t == T - 1) break;  // nothing reads the last step's p
        matmul.run<S>(B, hs.data_ptr<S>() + t * B * H, H, nullptr, 0,
                      ring.data_ptr<S>() + slot(t, K) * B * K * H, K * H);
      }
    });
  });
  return hs;
}

// d[b] = (dh[b] + sum_k ring[slot(t+k)][b, block k-1]) * act'(h[b]), zero past each end
template <typename S, char kind>
void tapped_grad_rows(const S* dh, const S* ring, const S* h, const int64_t* len, int64_t t,
                      int64_t K, int64_t B, int64_t H, S* d) {
  for (int64_t b = 0; b < B; ++b) {
    S* o = d + b * H;
    if (!is_valid(len, t, b)) {
      zero(o, H);
      continue;
    }
    std::copy(dh + b * H, dh + (b + 1) * H, o);
    for (int64_t k = 1; k <= K; ++k) {
      const S* q = ring + (slot(t + k, K) * B + b) * K * H + (k - 1) * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) o[j] += q[j];
    }
    const S* hb = h + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      if constexpr (kind == 't') o[j] *= S(1) - hb[j] * hb[j];
      if constexpr (kind == 'r') o[j] = hb[j] > S(0) ? o[j] : S(0);
      if constexpr (kind == 's') o[j] *= hb[j] * (S(1) - hb[j]);
    }
  }
}

// -> (d_a (T, B, H): gradient of every step's pre-activation, the ring (K, B, K*H) of q_t);
// w = [W_1 .. W_K] (H, K*H)
std::vector<Tensor> tapped_backward(const Tensor& d_hs, const Tensor& hs, const Tensor& w,
                                    const std::string& act, const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &hs});
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2), K = w.size(1) / H;
  const int64_t* len = lengths_ptr(lengths);
  const RecurrentMatmul matmul(w.t());
  Tensor ring = at::zeros({K, B, K * H}, hs.options());  // q_t in slot t mod K
  Tensor d_a = at::empty_like(hs);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "tapped_backward", [&] {
    using S = scalar_t;
    with_activation(act, [&](auto kind) {
      TORCH_CHECK(decltype(kind)::value != 'n', "tapped_backward needs an activation");
      for (int64_t t = T - 1; t >= 0; --t) {
        tapped_grad_rows<S, decltype(kind)::value>(
            d_hs.data_ptr<S>() + t * B * H, ring.data_ptr<S>(), hs.data_ptr<S>() + t * B * H,
            len, t, K, B, H, d_a.data_ptr<S>() + t * B * H);
        matmul.run<S>(B, d_a.data_ptr<S>() + t * B * H, H, nullptr, 0,
                      ring.data_ptr<S>() + slot(t, K) * B * K * H, K * H);
      }
    });
  });
  return {d_a, ring};  // the history's gradient is read from the ring (tapped._history_grad)
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY(rnnkit_native, m) {
  m.def(
      "tapped_forward(Tensor z, Tensor? history, int K, Tensor w_stacked, str act) -> Tensor",
      &rnnkit_native::tapped_forward);
  m.def(
      "tapped_backward(Tensor d_hs, Tensor hs, Tensor w, str act, Tensor? lengths) -> Tensor[]",
      &rnnkit_native::tapped_backward);
}
