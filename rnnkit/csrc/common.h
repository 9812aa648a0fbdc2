// Helpers every C++ loop of the `native` backend shares: the validity of a step, row
// access, the one recurrent matmul (RecurrentMatmul) and the fused "add, then activate" pass.
//
// Every loop works on the time-major buffers the Python side prepares:
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

#pragma once

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/CPUBlas.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <type_traits>
#include <string>
#include <vector>

namespace rnnkit_native {

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
inline void check_contiguous(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    TORCH_CHECK(t->is_contiguous(), "rnnkit_native: the loops need contiguous tensors");
  }
}

inline const int64_t* lengths_ptr(const std::optional<Tensor>& lengths) {
  return lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr;
}

// Row stride of a 2-D tensor with contiguous rows (0 for a 1-D bias broadcast over rows).
inline int64_t row_stride(const Tensor& t) {
  if (t.dim() == 1) return 0;
  TORCH_CHECK(t.dim() == 2 && t.stride(1) == 1, "rows must be contiguous");
  return t.stride(0);
}

// out = add + x weight^T for weight (N, K), x (M, K) and out (M, N) with contiguous rows (any
// row stride), add (M, N), a bias (N,) or nothing; add may be out itself (accumulate). Two
// ways to run the product, chosen per call:
// - oneDNN's brgemm micro-kernel (the one its own RNN primitive is built from) on weight^T, the
//   N columns split in blocks over the intra-op threads (float32). At M = batch = 32 one MKL
//   sgemm call keeps to one core: (32, 128) x (128, 256) took 24 us with MKL's addmm, 10 us as
//   two brgemm halves, and at H = 512 the split beat oneDNN's packed linear too.
// - MKL's gemm through addmm on views of the rows (float64 always; float32 on one thread with a weight of
//   at least 2^19 entries, e.g. a GRU's (1536, 512)): there one brgemm call over all N columns
//   lost to sgemm by 10-30% at B = 32, H = 512 (LSTM 440 vs 600 ms, T = 100).
// The loops call run() on raw rows: a Tensor view per step costs about a microsecond, a tenth
// of a step at batch 1; only the addmm path makes views, for products that dwarf that
// (scripts/bench.py; docs/benchmarks.md).
class RecurrentMatmul {
  // multiply-adds below which the columns are not split: (32, 128) x (128, 128) halves from
  // 9 us to 6 us on two threads, forking costs ~1.5 us
  static constexpr int64_t kMinSplitWork = int64_t(1) << 17;
  // weight entries from which one thread runs sgemm rather than one brgemm over all columns
  static constexpr int64_t kMinGemmWeight = int64_t(1) << 19;

 public:
  explicit RecurrentMatmul(const Tensor& weight)
      : weight_(weight),
        b_(weight.scalar_type() == at::kFloat ? weight.t().contiguous() : Tensor()) {}

  int64_t out_features() const { return weight_.size(0); }

  // Tensor face: writes into `out` and returns it; `add` undefined adds nothing.
  Tensor operator()(const Tensor& x, const Tensor& add, Tensor& out) const {
    const Tensor a = x.stride(1) == 1 ? x : x.contiguous();
    AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "recurrent_matmul", [&] {
      run<scalar_t>(a.size(0), a.data_ptr<scalar_t>(), row_stride(a),
                    add.defined() ? add.data_ptr<scalar_t>() : nullptr,
                    add.defined() ? row_stride(add) : 0, out.data_ptr<scalar_t>(),
                    row_stride(out));
    });
    return out;
  }

  // Pointer face: M rows of x (row stride ldx) -> out (row stride ldo); add null (nothing),
  // row stride 0 (a bias) or equal to out (accumulate).
  template <typename S>
  void run(int64_t M, const S* x, int64_t ldx, const S* add, int64_t ld_add, S* out,
           int64_t ldo) const {
    const int64_t N = weight_.size(0), K = weight_.size(1);
    const bool split = M * N * K >= kMinSplitWork && at::get_num_threads() > 1;
    if constexpr (std::is_same_v<S, float>) {
      if (split || N * K < kMinGemmWeight) return brgemm_blocks(M, x, ldx, add, ld_add, out, ldo);
    }
    if (add != nullptr && add != out) copy_rows(M, N, add, ld_add, out, ldo, 0);
    // views of the rows (cpublas::gemm is not exported for float64); this path runs products
    // that dwarf a view's microsecond
    const Tensor a = at::from_blob(const_cast<S*>(x), {M, K}, {ldx, 1}, weight_.options());
    Tensor c = at::from_blob(out, {M, N}, {ldo, 1}, weight_.options());
    if (add != nullptr) {
      at::addmm_out(c, c, a, weight_.t());
    } else {
      at::mm_out(c, a, weight_.t());
    }
  }

 private:
  template <typename S>
  static void copy_rows(int64_t M, int64_t n, const S* add, int64_t ld_add, S* out, int64_t ldo,
                        int64_t n0) {
    for (int64_t m = 0; m < M; ++m) {
      std::copy(add + m * ld_add + n0, add + m * ld_add + n0 + n, out + m * ldo + n0);
    }
  }

  void brgemm_blocks(int64_t M, const float* x, int64_t ldx, const float* add, int64_t ld_add,
                     float* out, int64_t ldo) const {
    const int64_t K = b_.size(0), N = b_.size(1);
    const float* bp = b_.data_ptr<float>();
    // blocks of at least 16 columns (one AVX-512 register), their starts 16-aligned; a small
    // product (NARX's one-output delay line: (32, 10) x (10, 128)) stays on one thread, where
    // forking would cost more than it saves
    const bool split = M * N * K >= kMinSplitWork;
    const int64_t threads = split ? at::get_num_threads() : 1;
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>(threads, N / 16));
    const auto start = [&](int64_t i) { return i == blocks ? N : (i * N / blocks) & ~int64_t(15); };
    const auto block = [&](int64_t i) {
      const int64_t n0 = start(i), n = start(i + 1) - n0;
      if (add != nullptr && add != out) copy_rows(M, n, add, ld_add, out, ldo, n0);
      at::native::cpublas::brgemm(M, n, K, ldx, N, ldo, add != nullptr, x, bp + n0, out + n0,
                                  false);
    };
    if (blocks == 1) return block(0);  // no fork at all
    at::parallel_for(0, blocks, 1, [&](int64_t first, int64_t last) {
      for (int64_t i = first; i < last; ++i) block(i);
    });
  }

  Tensor weight_;  // (N, K): what addmm reads
  Tensor b_;       // weight^T contiguous (K, N), float32 only: what brgemm reads
};

// Element-wise passes over n contiguous values, for the loops' bodies (a pragma cannot stand
// inside AT_DISPATCH's lambda, a macro argument).
template <typename S>
inline void sum_into(S* out, const S* a, const S* b, int64_t n) {  // out = a + b
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] = a[j] + b[j];
}

template <typename S>
inline void add_into(S* out, const S* a, int64_t n) {  // out += a
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] += a[j];
}

template <typename S>
inline void mul_into(S* out, const S* a, int64_t n) {  // out *= a
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) out[j] *= a[j];
}

// rows x n: out[r] = a[r] * u + b[r] * v, u and v (n,) shared by all rows; b may be null
template <typename S>
inline void scale_add_rows(S* out, const S* a, const S* u, const S* b, const S* v, int64_t rows,
                           int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    S* o = out + r * n;
    const S* ar = a + r * n;
    if (b == nullptr) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] = ar[j] * u[j];
    } else {
      const S* br = b + r * n;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) o[j] = ar[j] * u[j] + br[j] * v[j];
    }
  }
}

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
inline void add_activate(Tensor& out, const Tensor& a, const Tensor& b, const std::string& act) {
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

}  // namespace rnnkit_native
