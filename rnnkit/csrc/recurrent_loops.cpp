// The time loops of rnnkit's `native` backend: the same algorithm as the `bptt` backend
// (rnnkit/layers/backends/bptt.py, BPTT, Werbos 1990), written in C++ so that a step costs one
// matmul plus one pass over the gates instead of a dozen Python-dispatched tensor ops.
//
// Every function works on the time-major buffers the Python side prepares:
//   xp (T, B, G)   input projection of every step (x W_ih^T + b), G = gates * H
//   h0, c0 (B, H)  initial state;  w_hh (G, H)  recurrent weight
//   lengths (B,)   int64 true lengths, or none; step t of sequence b is valid iff t < lengths[b].
// Forward loops run all T steps unmasked (padding comes after each end, so it never reaches a
// valid step); backward loops zero every coefficient past each end, so nothing computed on
// padding reaches a gradient. Weight gradients are one matmul on the Python side
// (dW_hh = dG^T H_prev), so the loops return only per-step gradients.
//
// The gate passes are plain loops over contiguous rows that the compiler vectorises (-O3, fast
// math with NaN kept: glibc's vector exp and tanh). The per-step matmul is RecurrentMatmul:
// oneDNN's brgemm micro-kernel in float32 with the columns split over the intra-op threads,
// MKL's addmm otherwise.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

using at::Tensor;

template <typename S>
inline S sigmoid(S x) {
  return S(1) / (S(1) + std::exp(-x));
}

// Step t of sequence b is real (not padding). A padded step's gradients are set to zero, never
// computed: a state overflowed on padding (inf) must not turn into 0 * inf = NaN.
inline bool is_valid(const int64_t* lengths, int64_t t, int64_t b) {
  return lengths == nullptr || t < lengths[b];
}

template <typename S>
inline void zero(S* p, int64_t n) {
  std::fill(p, p + n, S(0));
}

// The loops index raw rows (row b of a (B, n) step starts at b * n): refuse anything else.
void check_contiguous(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    TORCH_CHECK(t->is_contiguous(), "rnnkit_native: the loops need contiguous tensors");
  }
}

const int64_t* lengths_ptr(const std::optional<Tensor>& lengths) {
  return lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
}

// Row stride of a 2-D tensor with contiguous rows (0 for a 1-D bias broadcast over rows).
int64_t row_stride(const Tensor& t) {
  if (t.dim() == 1) return 0;
  TORCH_CHECK(t.dim() == 2 && t.stride(1) == 1, "rows must be contiguous");
  return t.stride(0);
}

// out = add + x weight^T for weight (N, K), x (M, K) and out (M, N) with contiguous rows (any
// row stride), add (M, N), a bias (N,) or undefined (nothing). In float32: oneDNN's brgemm
// micro-kernel (the one its own RNN primitive is built from) on weight^T, the N columns split
// in blocks over the intra-op threads. At M = batch = 32 one MKL sgemm call keeps to one core:
// (32, 128) x (128, 256) took 24 us with MKL's addmm, 10 us as two brgemm halves, and at
// H = 512 the split beat oneDNN's packed linear too (scripts/bench.py; docs/benchmarks.md).
// Other dtypes: MKL's addmm.
class RecurrentMatmul {
  // multiply-adds below which the columns are not split: (32, 128) x (128, 128) halves from
  // 9 us to 6 us on two threads, forking costs ~1.5 us
  static constexpr int64_t kMinSplitWork = int64_t(1) << 17;

 public:
  explicit RecurrentMatmul(const Tensor& weight)
      : weight_t_(weight.t()),
        b_(weight.scalar_type() == at::kFloat ? weight.t().contiguous() : Tensor()) {}

  // Writes into `out` and returns it.
  Tensor operator()(const Tensor& x, const Tensor& add, Tensor& out) const {
    if (!b_.defined()) {
      return add.defined() ? at::addmm_out(out, add, x, weight_t_)
                           : at::mm_out(out, x, weight_t_);
    }
    const Tensor a = x.stride(1) == 1 ? x : x.contiguous();
    const int64_t M = a.size(0), K = a.size(1), N = b_.size(1);
    const int64_t lda = row_stride(a), ldc = row_stride(out);
    const float* ap = a.data_ptr<float>();
    const float* bp = b_.data_ptr<float>();
    float* cp = out.data_ptr<float>();
    const float* addp = add.defined() ? add.data_ptr<float>() : nullptr;
    const int64_t ld_add = add.defined() ? row_stride(add) : 0;
    // blocks of at least 16 columns (one AVX-512 register), their starts 16-aligned; a small
    // product (NARX's one-output delay line: (32, 10) x (10, 128)) stays on one thread, where
    // forking would cost more than it saves
    const bool split = M * N * K >= kMinSplitWork;
    const int64_t threads = split ? at::get_num_threads() : 1;
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(threads, N / 16));
    const auto start = [&](int64_t i) { return i == blocks ? N : (i * N / blocks) & ~int64_t(15); };
    at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) {
        const int64_t n0 = start(i), n = start(i + 1) - n0;
        if (addp != nullptr && addp != cp) {
          for (int64_t m = 0; m < M; ++m) {
            std::copy(addp + m * ld_add + n0, addp + m * ld_add + n0 + n, cp + m * ldc + n0);
          }
        }
        at::native::cpublas::brgemm(M, n, K, lda, N, ldc, addp != nullptr, ap, bp + n0,
                                    cp + n0, false);
      }
    });
    return out;
  }

 private:
  Tensor weight_t_;  // (K, N) view, for addmm
  Tensor b_;         // the same, contiguous (float32 only), for brgemm
};

template <typename S, char kind>
inline S activation(S v) {
  if constexpr (kind == 't') return std::tanh(v);
  if constexpr (kind == 'r') return v < S(0) ? S(0) : v;  // NaN stays NaN, as in torch.relu
  if constexpr (kind == 's') return sigmoid(v);
  return v;
}

// out[i] = act(a[i] + b[i]) over `rows` rows of n, each with its own row stride; b is null
// (adds nothing) or has row stride 0 (a bias)
template <typename S, char kind>
void add_activate_rows(const S* a, int64_t lda, const S* b, int64_t ldb, S* out, int64_t ldo,
                       int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const S* ar = a + r * lda;
    S* o = out + r * ldo;
    if (b == nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] = activation<S, kind>(ar[j]);
    } else {
      const S* br = b + r * ldb;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] = activation<S, kind>(ar[j] + br[j]);
    }
  }
}

// Calls run(std::integral_constant<char, kind>) for act = tanh, relu, sigmoid (or none).
template <typename F>
void with_activation(const std::string& act, const F& run) {
  if (act == "tanh") {
    run(std::integral_constant<char, 't'>());
  } else if (act == "relu") {
    run(std::integral_constant<char, 'r'>());
  } else if (act == "sigmoid") {
    run(std::integral_constant<char, 's'>());
  } else {
    TORCH_CHECK(act == "none" || act.empty(), "unknown activation ", act);
    run(std::integral_constant<char, 'n'>());
  }
}

// out = act(a + b) in one vectorised pass, for (R, n) tensors with contiguous rows (out may be
// a strided slice, b a bias or undefined); an aten op a step costs ~8 us of a 30 us step at
// H=128. act: tanh, relu, sigmoid or none.
void add_activate(Tensor& out, const Tensor& a, const Tensor& b, const std::string& act) {
  const int64_t rows = out.size(0), n = out.size(1);
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "add_activate", [&] {
    using S = scalar_t;
    const S* bp = b.defined() ? b.data_ptr<S>() : nullptr;
    const int64_t ldb = b.defined() ? row_stride(b) : 0;
    const auto run = [&](auto kind) {
      add_activate_rows<S, decltype(kind)::value>(a.data_ptr<S>(), row_stride(a), bp, ldb,
                                                  out.data_ptr<S>(), row_stride(out), rows, n);
    };
    with_activation(act, run);
  });
}

// ------------------------------------------------------------------------------------------
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
        Tensor p_t = ring.select(0, slot(t, K));
        matmul(hs.select(0, t), Tensor(), p_t);
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
        Tensor q_t = ring.select(0, slot(t, K));
        matmul(d_a.select(0, t), Tensor(), q_t);
      }
    });
  });
  return {d_a, ring};  // the history's gradient is read from the ring (tapped._history_grad)
}

// ------------------------------------------------------------------------------------------
// GRU, torch's variant: gh = h W_hh^T + b_hh; r, z = sig(xp_rz + gh_rz);
// n = tanh(xp_n + r * gh_n); h_t = n + z (h_{t-1} - n)

template <typename S>
void gru_gates_row(const S* xp, const S* gh, S* a, S* n_out, S* h_out, const S* h, int64_t H) {
  // a = [r, z, gh_n]: what the backward needs
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S r = sigmoid(xp[j] + gh[j]);
    const S z = sigmoid(xp[H + j] + gh[H + j]);
    const S ghn = gh[2 * H + j];
    const S n = std::tanh(xp[2 * H + j] + r * ghn);
    a[j] = r;
    a[H + j] = z;
    a[2 * H + j] = ghn;
    n_out[j] = n;
    h_out[j] = n + z * (h[j] - n);
  }
}

// -> (hs (T, B, H), acts (T, B, 3H) = [r, z, gh_n], ns (T, B, H)); without `save`, acts and ns
// hold only the last step (inference needs no activations).
std::vector<Tensor> gru_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                const Tensor& b_hh, bool save) {
  check_contiguous({&xp, &h0});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 3;
  const int64_t S = save ? T : 1;
  const RecurrentMatmul matmul(w_hh);
  Tensor acts = at::empty({S, B, 3 * H}, xp.options());
  Tensor ns = at::empty({S, B, H}, xp.options());
  Tensor hs = at::empty({T, B, H}, xp.options());
  Tensor scratch = at::empty({B, 3 * H}, xp.options());
  // one dtype dispatch for the whole loop, and rows addressed by pointer: a Tensor view per
  // buffer and step costs about a microsecond each, a tenth of a step at H=128
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_forward", [&] {
    using S = scalar_t;
    const S* x = xp.data_ptr<S>();
    S *a = acts.data_ptr<S>(), *n = ns.data_ptr<S>(), *ho = hs.data_ptr<S>();
    const int64_t step = B * H;  // elements of one (B, H) step
    Tensor h = h0;
    for (int64_t t = 0; t < T; ++t) {
      const Tensor gh = matmul(h, b_hh, scratch);
      const S* g = gh.data_ptr<S>();
      const S* hp = h.data_ptr<S>();
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = b * 3 * H;
        gru_gates_row<S>(x + row, g + row, a + row, n + b * H, ho + b * H, hp + b * H, H);
      }
      h = hs.select(0, t);
      x += 3 * step;
      ho += step;
      if (save) {
        a += 3 * step;
        n += step;
      }
    }
  });
  return {hs, acts, ns};
}

template <typename S>
void gru_grad_row(const S* dh_in, S* carry, const S* a, const S* n, const S* hp, S* d_xp,
                  S* d_gh, int64_t H) {
  // carry: on entry dL/dh_t through step t+1's update gate; on exit the same for h_{t-1}
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S r = a[j], z = a[H + j], ghn = a[2 * H + j], nj = n[j];
    const S d = dh_in[j] + carry[j];
    const S dn = d * (S(1) - z) * (S(1) - nj * nj);
    const S dz = d * (hp[j] - nj) * z * (S(1) - z);
    const S dr = dn * ghn * r * (S(1) - r);
    d_xp[j] = dr;
    d_xp[H + j] = dz;
    d_xp[2 * H + j] = dn;
    d_gh[j] = dr;
    d_gh[H + j] = dz;
    d_gh[2 * H + j] = dn * r;
    carry[j] = d * z;
  }
}

// -> (d_xp (T, B, 3H), d_gh (T, B, 3H): gradients of xp and of h W_hh^T + b_hh, dh0 (B, H))
std::vector<Tensor> gru_backward(const Tensor& d_hs, const Tensor& h0, const Tensor& w_hh,
                                 const Tensor& acts, const Tensor& ns, const Tensor& hs,
                                 const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &h0, &acts, &ns, &hs});
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const int64_t* len = lengths_ptr(lengths);
  const RecurrentMatmul matmul(w_hh.t());
  Tensor d_xp = at::empty_like(acts);
  Tensor d_gh = at::empty_like(acts);
  Tensor scratch = at::empty_like(h0);
  Tensor carry = at::zeros_like(h0);
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_backward", [&] {
    const int64_t step = B * H;  // elements of one (B, H) step
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor dh = t == T - 1 ? d_hs.select(0, t)
                                   : matmul(d_gh.select(0, t + 1), d_hs.select(0, t), scratch);
      const scalar_t* di = dh.data_ptr<scalar_t>();
      scalar_t* cr = carry.data_ptr<scalar_t>();
      const scalar_t* a = acts.data_ptr<scalar_t>() + t * 3 * step;
      const scalar_t* n = ns.data_ptr<scalar_t>() + t * step;
      const scalar_t* hp = t > 0 ? hs.data_ptr<scalar_t>() + (t - 1) * step : h0.data_ptr<scalar_t>();
      scalar_t* dx = d_xp.data_ptr<scalar_t>() + t * 3 * step;
      scalar_t* dg = d_gh.data_ptr<scalar_t>() + t * 3 * step;
      for (int64_t b = 0; b < B; ++b) {
        if (is_valid(len, t, b)) {
          gru_grad_row<scalar_t>(di + b * H, cr + b * H, a + b * 3 * H, n + b * H, hp + b * H,
                                 dx + b * 3 * H, dg + b * 3 * H, H);
        } else {
          zero(dx + b * 3 * H, 3 * H);
          zero(dg + b * 3 * H, 3 * H);
          zero(cr + b * H, H);
        }
      }
    }
  });
  Tensor dh0 = at::addmm(carry, d_gh.select(0, 0), w_hh);
  return {d_xp, d_gh, dh0};
}

// ------------------------------------------------------------------------------------------
// GRU, the paper's variant (reset_after=False): rz = sig(xp_rz + h W_rz^T);
// n = tanh(xp_n + (r h) W_n^T); h_t = n + z (h_{t-1} - n); all biases are in xp

template <typename S>
void gru_rb_gates_row(const S* pre, S* rz, const S* h, S* rh, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < 2 * H; ++j) rz[j] = sigmoid(pre[j]);
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) rh[j] = rz[j] * h[j];
}

template <typename S>
void gru_rb_state_row(const S* pre_n, const S* rz, const S* h, S* n_out, S* h_out, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S n = std::tanh(pre_n[j]);
    n_out[j] = n;
    h_out[j] = n + rz[H + j] * (h[j] - n);
  }
}

// -> (hs (T, B, H), rz (T, B, 2H), rh (T, B, H) = r * h_{t-1}, ns (T, B, H)); without `save`
// only hs is kept for every step.
std::vector<Tensor> gru_rb_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                   bool save) {
  check_contiguous({&xp, &h0});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 3;
  const int64_t S = save ? T : 1;
  const RecurrentMatmul gates(w_hh.narrow(0, 0, 2 * H));
  const RecurrentMatmul candidate(w_hh.narrow(0, 2 * H, H));
  Tensor rz = at::empty({S, B, 2 * H}, xp.options());
  Tensor rh = at::empty({S, B, H}, xp.options());
  Tensor ns = at::empty({S, B, H}, xp.options());
  Tensor hs = at::empty({T, B, H}, xp.options());
  Tensor scratch_rz = at::empty({B, 2 * H}, xp.options());
  Tensor scratch_n = at::empty({B, H}, xp.options());
  Tensor h = h0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t s = save ? t : 0;
    const Tensor x_t = xp.select(0, t);
    const Tensor pre_rz = gates(h, x_t.narrow(1, 0, 2 * H), scratch_rz);
    AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_rb_gates", [&] {
      const scalar_t* p = pre_rz.data_ptr<scalar_t>();
      scalar_t* a = rz.select(0, s).data_ptr<scalar_t>();
      scalar_t* r = rh.select(0, s).data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_gates_row<scalar_t>(p + b * 2 * H, a + b * 2 * H, hp + b * H, r + b * H, H);
      }
    });
    const Tensor pre_n = candidate(rh.select(0, s), x_t.narrow(1, 2 * H, H), scratch_n);
    AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_rb_state", [&] {
      const scalar_t* p = pre_n.data_ptr<scalar_t>();
      const scalar_t* a = rz.select(0, s).data_ptr<scalar_t>();
      const scalar_t* hp = h.data_ptr<scalar_t>();
      scalar_t* n = ns.select(0, s).data_ptr<scalar_t>();
      scalar_t* ho = hs.select(0, t).data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_state_row<scalar_t>(p + b * H, a + b * 2 * H, hp + b * H, n + b * H, ho + b * H,
                                   H);
      }
    });
    h = hs.select(0, t);
  }
  return {hs, rz, rh, ns};
}

template <typename S>
void gru_rb_grad_n_row(const S* dh, const S* rz, const S* n, const S* hp, S* d_xp, int64_t H,
                       bool valid) {
  // d_xp = [., dz_pre, dn_pre]; the r chunk waits for d(r h), which needs a matmul
  if (!valid) return zero(d_xp, 3 * H);
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S z = rz[H + j], nj = n[j], d = dh[j];
    d_xp[2 * H + j] = d * (S(1) - z) * (S(1) - nj * nj);
    d_xp[H + j] = d * (hp[j] - nj) * z * (S(1) - z);
  }
}

template <typename S>
void gru_rb_grad_r_row(const S* dh, const S* d_rh, const S* rz, const S* hp, S* d_xp, S* direct,
                       int64_t H, bool valid) {
  // direct: the part of dL/dh_{t-1} that needs no matmul (through z and through r h)
  if (!valid) {
    zero(d_xp, H);
    return zero(direct, H);
  }
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S r = rz[j], z = rz[H + j];
    d_xp[j] = d_rh[j] * hp[j] * r * (S(1) - r);
    direct[j] = dh[j] * z + d_rh[j] * r;
  }
}

// -> (d_xp (T, B, 3H), dh0 (B, H))
std::vector<Tensor> gru_rb_backward(const Tensor& d_hs, const Tensor& h0, const Tensor& w_hh,
                                    const Tensor& rz, const Tensor& ns, const Tensor& hs,
                                    const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &h0, &rz, &ns, &hs});
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const int64_t* len = lengths_ptr(lengths);
  const RecurrentMatmul gates_back(w_hh.narrow(0, 0, 2 * H).t());
  const RecurrentMatmul candidate_back(w_hh.narrow(0, 2 * H, H).t());
  Tensor d_xp = at::empty({T, B, 3 * H}, hs.options());
  Tensor dh = at::empty_like(h0);
  Tensor direct = at::empty_like(h0);
  Tensor scratch_rh = at::empty_like(h0);
  Tensor carry = at::zeros_like(h0);  // dL/dh_t from step t+1
  for (int64_t t = T - 1; t >= 0; --t) {
    at::add_out(dh, d_hs.select(0, t), carry);
    Tensor dx_t = d_xp.select(0, t);
    const Tensor hp_t = t > 0 ? hs.select(0, t - 1) : h0;
    AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_rb_grad_n", [&] {
      const scalar_t* di = dh.data_ptr<scalar_t>();
      const scalar_t* a = rz.select(0, t).data_ptr<scalar_t>();
      const scalar_t* n = ns.select(0, t).data_ptr<scalar_t>();
      const scalar_t* hp = hp_t.data_ptr<scalar_t>();
      scalar_t* dx = dx_t.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_grad_n_row<scalar_t>(di + b * H, a + b * 2 * H, n + b * H, hp + b * H,
                                    dx + b * 3 * H, H, is_valid(len, t, b));
      }
    });
    const Tensor d_rh = candidate_back(dx_t.narrow(1, 2 * H, H), Tensor(), scratch_rh);
    AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_rb_grad_r", [&] {
      const scalar_t* di = dh.data_ptr<scalar_t>();
      const scalar_t* drh = d_rh.data_ptr<scalar_t>();
      const scalar_t* a = rz.select(0, t).data_ptr<scalar_t>();
      const scalar_t* hp = hp_t.data_ptr<scalar_t>();
      scalar_t* dx = dx_t.data_ptr<scalar_t>();
      scalar_t* dd = direct.data_ptr<scalar_t>();
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_grad_r_row<scalar_t>(di + b * H, drh + b * H, a + b * 2 * H, hp + b * H,
                                    dx + b * 3 * H, dd + b * H, H, is_valid(len, t, b));
      }
    });
    gates_back(dx_t.narrow(1, 0, 2 * H), direct, carry);
  }
  return {d_xp, carry};
}

// ------------------------------------------------------------------------------------------
// LSTM: gates = xp_t + h W_hh^T, chunks (i, f, g, o); c_t = f c + i g; h_t = o tanh(c_t)

template <typename S>
void lstm_gates_row(const S* pre, S* a, const S* c, S* c_out, S* tc_out, S* h_out, int64_t H) {
  // a = [sig(i), sig(f), tanh(g), sig(o)]
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S i = sigmoid(pre[j]);
    const S f = sigmoid(pre[H + j]);
    const S g = std::tanh(pre[2 * H + j]);
    const S o = sigmoid(pre[3 * H + j]);
    const S cj = f * c[j] + i * g;
    const S tc = std::tanh(cj);
    a[j] = i;
    a[H + j] = f;
    a[2 * H + j] = g;
    a[3 * H + j] = o;
    c_out[j] = cj;
    tc_out[j] = tc;
    h_out[j] = o * tc;
  }
}

// -> (hs, cs, acts (T, B, 4H), tcs = tanh(cs)); without `save`, acts and tcs hold one step.
std::vector<Tensor> lstm_forward(const Tensor& xp, const Tensor& h0, const Tensor& c0,
                                 const Tensor& w_hh, bool save) {
  check_contiguous({&xp, &h0, &c0});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 4;
  const int64_t S = save ? T : 1;
  const RecurrentMatmul matmul(w_hh);
  Tensor acts = at::empty({S, B, 4 * H}, xp.options());
  Tensor tcs = at::empty({S, B, H}, xp.options());
  Tensor hs = at::empty({T, B, H}, xp.options());
  Tensor cs = at::empty({T, B, H}, xp.options());
  Tensor scratch = at::empty({B, 4 * H}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "lstm_forward", [&] {
    const int64_t step = B * H;  // elements of one (B, H) step
    Tensor h = h0;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t s = save ? t : 0;
      const Tensor pre = matmul(h, xp.select(0, t), scratch);
      const scalar_t* p = pre.data_ptr<scalar_t>();
      scalar_t* a = acts.data_ptr<scalar_t>() + s * 4 * step;
      const scalar_t* cp = t > 0 ? cs.data_ptr<scalar_t>() + (t - 1) * step : c0.data_ptr<scalar_t>();
      scalar_t* co = cs.data_ptr<scalar_t>() + t * step;
      scalar_t* tc = tcs.data_ptr<scalar_t>() + s * step;
      scalar_t* ho = hs.data_ptr<scalar_t>() + t * step;
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = b * 4 * H;
        lstm_gates_row<scalar_t>(p + row, a + row, cp + b * H, co + b * H, tc + b * H,
                                 ho + b * H, H);
      }
      h = hs.select(0, t);
    }
  });
  return {hs, cs, acts, tcs};
}

template <typename S>
void lstm_grad_row(const S* dh, const S* dc_in, S* dc, const S* a, const S* tc, const S* cp,
                   S* dg, int64_t H) {
  // dc: on entry dL/dc_t through step t+1's forget gate; on exit the same for c_{t-1}
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const S i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], tcj = tc[j];
    const S dhj = dh[j];
    const S dct = dc[j] + (dc_in ? dc_in[j] : S(0)) + dhj * o * (S(1) - tcj * tcj);
    dg[j] = dct * g * i * (S(1) - i);
    dg[H + j] = dct * cp[j] * f * (S(1) - f);
    dg[2 * H + j] = dct * i * (S(1) - g * g);
    dg[3 * H + j] = dhj * tcj * o * (S(1) - o);
    dc[j] = dct * f;
  }
}

// -> (d_gates (T, B, 4H), dh0, dc0); d_cs is none when only the outputs reach the loss
std::vector<Tensor> lstm_backward(const Tensor& d_hs, const std::optional<Tensor>& d_cs,
                                  const Tensor& h0, const Tensor& c0, const Tensor& w_hh,
                                  const Tensor& acts, const Tensor& cs, const Tensor& tcs,
                                  const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &c0, &acts, &cs, &tcs});
  if (d_cs.has_value()) check_contiguous({&*d_cs});
  const int64_t T = cs.size(0), B = cs.size(1), H = cs.size(2);
  const int64_t* len = lengths_ptr(lengths);
  const RecurrentMatmul matmul(w_hh.t());
  Tensor d_gates = at::empty_like(acts);
  Tensor scratch = at::empty_like(h0);
  Tensor dc = at::zeros_like(c0);
  AT_DISPATCH_FLOATING_TYPES(cs.scalar_type(), "lstm_backward", [&] {
    const int64_t step = B * H;  // elements of one (B, H) step
    for (int64_t t = T - 1; t >= 0; --t) {
      const Tensor dh = t == T - 1 ? d_hs.select(0, t)
                                   : matmul(d_gates.select(0, t + 1), d_hs.select(0, t), scratch);
      const scalar_t* dhp = dh.data_ptr<scalar_t>();
      const scalar_t* dci = d_cs.has_value() ? d_cs->data_ptr<scalar_t>() + t * step : nullptr;
      scalar_t* dcp = dc.data_ptr<scalar_t>();
      const scalar_t* a = acts.data_ptr<scalar_t>() + t * 4 * step;
      const scalar_t* tc = tcs.data_ptr<scalar_t>() + t * step;
      const scalar_t* cp = t > 0 ? cs.data_ptr<scalar_t>() + (t - 1) * step : c0.data_ptr<scalar_t>();
      scalar_t* dg = d_gates.data_ptr<scalar_t>() + t * 4 * step;
      for (int64_t b = 0; b < B; ++b) {
        if (!is_valid(len, t, b)) {
          zero(dg + b * 4 * H, 4 * H);
          zero(dcp + b * H, H);
          continue;
        }
        lstm_grad_row<scalar_t>(dhp + b * H, dci ? dci + b * H : nullptr, dcp + b * H,
                                a + b * 4 * H, tc + b * H, cp + b * H, dg + b * 4 * H, H);
      }
    }
  });
  return {d_gates, at::mm(d_gates.select(0, 0), w_hh), dc};
}

// ------------------------------------------------------------------------------------------
// Output feedback, closed loop (forward only: the backward is rnnkit/layers/backends/feedback.py)

// Jordan: m_t = mu m_{t-1} + c y_{t-1} (or plainly y_{t-1}); h_t = act(xp_t + m_t W_mh^T);
// y_t = out_act(h_t W_ho^T + b_ho).  -> (ys (T, B, O), ms (T, B, O), empty when plain,
// hs (T, B, H))
std::vector<Tensor> jordan_closed_forward(const Tensor& xp, const Tensor& m0, const Tensor& y0,
                                          const Tensor& w_mh, const Tensor& w_ho,
                                          const Tensor& b_ho, const Tensor& mu, const Tensor& c,
                                          bool plain, const std::string& act,
                                          const std::string& out_act) {
  check_contiguous({&xp});
  const int64_t T = xp.size(0), B = xp.size(1), O = w_ho.size(0);
  Tensor ys = at::empty({T, B, O}, xp.options());
  // the plain memory m_t = y_{t-1} is read where it lies and not stored (ms comes back empty)
  Tensor ms = at::empty({plain ? 0 : T, B, O}, xp.options());
  Tensor hs = at::empty_like(xp);
  const RecurrentMatmul memory_in(w_mh), output(w_ho);
  Tensor scratch_h = at::empty({B, xp.size(2)}, xp.options());
  Tensor scratch_y = at::empty({B, O}, xp.options());
  Tensor m = m0, y = y0;
  for (int64_t t = 0; t < T; ++t) {
    Tensor h_t = hs.select(0, t), y_t = ys.select(0, t);
    Tensor m_t = plain ? y : ms.select(0, t);
    if (!plain) at::addcmul_out(m_t, at::mul(c, y), mu, m);
    add_activate(h_t, memory_in(m_t, Tensor(), scratch_h), xp.select(0, t), act);
    add_activate(y_t, output(h_t, Tensor(), scratch_y), b_ho, out_act);
    m = m_t;
    y = y_t;
  }
  return {ys, ms, hs};
}

// NARX: a_t = xp_t + [y_{t-1} .. y_{t-K}] W_yh^T, y_t = act(a_t) W_hy^T + b_y. The outputs go
// into r (B, T+K, O) in reverse time order with the initial delay line at the end, so the delay
// line of step t is the slice r[:, T-t : T-t+K] (the layout the Python backward reads).
// -> (r, hs (T, B, H))
std::vector<Tensor> narx_closed_forward(const Tensor& xp, const Tensor& y_taps0,
                                        const Tensor& w_yh, const Tensor& w_hy,
                                        const Tensor& b_y, const std::string& act) {
  check_contiguous({&xp});
  const int64_t T = xp.size(0), B = xp.size(1);
  const int64_t K = y_taps0.size(1), O = y_taps0.size(2);
  Tensor r = at::empty({B, T + K, O}, xp.options());
  r.narrow(1, T, K).copy_(y_taps0);
  Tensor hs = at::empty_like(xp);
  Tensor scratch_h = at::empty({B, xp.size(2)}, xp.options());
  Tensor scratch_y = at::empty({B, O}, xp.options());
  const RecurrentMatmul feedback_in(w_yh), output(w_hy);
  for (int64_t t = 0; t < T; ++t) {
    const Tensor taps = r.narrow(1, T - t, K).reshape({B, K * O});
    Tensor h_t = hs.select(0, t);
    Tensor y_t = r.select(1, T - 1 - t);
    add_activate(h_t, feedback_in(taps, Tensor(), scratch_h), xp.select(0, t), act);
    add_activate(y_t, output(h_t, Tensor(), scratch_y), b_y, "none");
  }
  return {r, hs};
}

}  // namespace

TORCH_LIBRARY(rnnkit_native, m) {
  m.def(
      "tapped_forward(Tensor z, Tensor? history, int K, Tensor w_stacked, str act) -> Tensor",
      &tapped_forward);
  m.def(
      "tapped_backward(Tensor d_hs, Tensor hs, Tensor w, str act, Tensor? lengths) -> Tensor[]",
      &tapped_backward);
  m.def(
      "gru_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor b_hh, bool save)"
      " -> Tensor[]",
      &gru_forward);
  m.def(
      "gru_backward(Tensor d_hs, Tensor h0, Tensor w_hh, Tensor acts, Tensor ns, Tensor hs,"
      " Tensor? lengths) -> Tensor[]",
      &gru_backward);
  m.def(
      "gru_rb_forward(Tensor xp, Tensor h0, Tensor w_hh, bool save) -> Tensor[]",
      &gru_rb_forward);
  m.def(
      "gru_rb_backward(Tensor d_hs, Tensor h0, Tensor w_hh, Tensor rz, Tensor ns, Tensor hs,"
      " Tensor? lengths) -> Tensor[]",
      &gru_rb_backward);
  m.def(
      "lstm_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh, bool save)"
      " -> Tensor[]",
      &lstm_forward);
  m.def(
      "lstm_backward(Tensor d_hs, Tensor? d_cs, Tensor h0, Tensor c0, Tensor w_hh, Tensor acts,"
      " Tensor cs, Tensor tcs, Tensor? lengths) -> Tensor[]",
      &lstm_backward);
  m.def(
      "jordan_closed_forward(Tensor xp, Tensor m0, Tensor y0, Tensor w_mh, Tensor w_ho,"
      " Tensor b_ho, Tensor mu, Tensor c, bool plain, str act, str out_act) -> Tensor[]",
      &jordan_closed_forward);
  m.def(
      "narx_closed_forward(Tensor xp, Tensor y_taps0, Tensor w_yh, Tensor w_hy, Tensor b_y,"
      " str act) -> Tensor[]",
      &narx_closed_forward);
}
