// MGU loops of the `native` backend (rnnkit/layers/backends/mgu.py).
//
// A step: f = sig(xp_f + h U_f^T); n = tanh(xp_h + (f h) U_h^T); h_t = h + f (n - h).
// Two dependent H x H products (the second needs f), each one RecurrentMatmul with the input
// projection of the step as its addend, then one vectorised pass over the gates.

#include "common.h"

namespace rnnkit_native {
namespace {

template <typename Sc>
void mgu_forward_loop(const Tensor& xp, const Tensor& h0, const RecurrentMatmul& matmul_f,
                      const RecurrentMatmul& matmul_h, Tensor& fs, Tensor& fhs, Tensor& ns,
                      Tensor& hs, bool save) {
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 2;
  const int64_t step = B * H;
  Tensor h = h0;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t s = save ? t : 0;
    Tensor f = fs.select(0, s), fh = fhs.select(0, s), n = ns.select(0, s);
    const Tensor xp_t = xp.select(0, t);
    matmul_f(h, xp_t.narrow(1, 0, H), f);  // pre-activation of f, made a gate below
    const Sc* hp = h.data_ptr<Sc>();
    Sc* fp = f.data_ptr<Sc>();
    Sc* fhp = fh.data_ptr<Sc>();
#pragma omp simd
    for (int64_t k = 0; k < step; ++k) {
      fp[k] = sigmoid(fp[k]);
      fhp[k] = fp[k] * hp[k];
    }
    matmul_h(fh, xp_t.narrow(1, H, H), n);  // pre-activation of n
    Sc* np = n.data_ptr<Sc>();
    Sc* ho = hs.data_ptr<Sc>() + t * step;
#pragma omp simd
    for (int64_t k = 0; k < step; ++k) {
      np[k] = std::tanh(np[k]);
      ho[k] = hp[k] + fp[k] * (np[k] - hp[k]);
    }
    h = hs.select(0, t);
  }
}

// -> (hs, fs, fhs = f h_{t-1}, ns), each (T, B, H); without `save`, fs, fhs and ns hold one
// step (inference needs no activations).
std::vector<Tensor> mgu_forward(const Tensor& xp, const Tensor& h0, const Tensor& w_hh,
                                bool save) {
  check_contiguous({&xp, &h0, &w_hh});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2) / 2;
  const int64_t S = save ? T : 1;
  const RecurrentMatmul matmul_f(w_hh.narrow(0, 0, H)), matmul_h(w_hh.narrow(0, H, H));
  Tensor fs = at::empty({S, B, H}, xp.options());
  Tensor fhs = at::empty({S, B, H}, xp.options());
  Tensor ns = at::empty({S, B, H}, xp.options());
  Tensor hs = at::empty({T, B, H}, xp.options());
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "mgu_forward", [&] {
    mgu_forward_loop<scalar_t>(xp, h0, matmul_f, matmul_h, fs, fhs, ns, hs, save);
  });
  return {hs, fs, fhs, ns};
}

template <typename Sc>
void mgu_backward_loop(const Tensor& d_hs, const Tensor& h0, const RecurrentMatmul& matmul_f,
                       const RecurrentMatmul& matmul_h, const Tensor& hs, const Tensor& fs,
                       const Tensor& ns, const int64_t* len, Tensor& d_xp, Tensor& d_fh,
                       Tensor& delta, Tensor& next) {
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const int64_t step = B * H;
  for (int64_t t = T - 1; t >= 0; --t) {
    const Sc* g = d_hs.data_ptr<Sc>() + t * step;
    const Sc* f = fs.data_ptr<Sc>() + t * step;
    const Sc* n = ns.data_ptr<Sc>() + t * step;
    const Sc* hp = t > 0 ? hs.data_ptr<Sc>() + (t - 1) * step : h0.data_ptr<Sc>();
    Sc* dl = delta.data_ptr<Sc>();
    Sc* dx = d_xp.data_ptr<Sc>() + t * 2 * step;
    for (int64_t b = 0; b < B; ++b) {  // delta += g; the gradient of n's pre-activation
      Sc* dn = dx + b * 2 * H + H;
      const int64_t r = b * H;
      if (!is_valid(len, t, b)) {
        zero(dl + r, H);
        zero(dn, H);
        continue;
      }
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        dl[r + j] += g[r + j];
        dn[j] = dl[r + j] * f[r + j] * (Sc(1) - n[r + j] * n[r + j]);
      }
    }
    matmul_h(d_xp.select(0, t).narrow(1, H, H), Tensor(), d_fh);
    const Sc* dfh = d_fh.data_ptr<Sc>();
    Sc* nx = next.data_ptr<Sc>();
    for (int64_t b = 0; b < B; ++b) {  // the gradient of f's pre-activation; delta's carry
      Sc* df = dx + b * 2 * H;
      const int64_t r = b * H;
      if (!is_valid(len, t, b)) {
        zero(df, H);
        zero(nx + r, H);
        continue;
      }
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const Sc fj = f[r + j], d = dl[r + j];
        df[j] = (d * (n[r + j] - hp[r + j]) + dfh[r + j] * hp[r + j]) * fj * (Sc(1) - fj);
        nx[r + j] = d * (Sc(1) - fj) + dfh[r + j] * fj;
      }
    }
    matmul_f(d_xp.select(0, t).narrow(1, 0, H), next, delta);
  }
}

// -> (d_xp (T, B, 2H) with chunks (f, h): the gradients of the pre-activations, dh0). With
// delta the gradient reaching h_t: dn = delta f (1 - n^2); d(fh) = dn U_h;
// df = (delta (n - h_{t-1}) + d(fh) h_{t-1}) f (1 - f);
// delta_{t-1} = g_{t-1} + delta (1 - f) + d(fh) f + df U_f. Past each end everything is zero.
std::vector<Tensor> mgu_backward(const Tensor& d_hs, const Tensor& h0, const Tensor& w_hh,
                                 const Tensor& hs, const Tensor& fs, const Tensor& ns,
                                 const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &h0, &w_hh, &hs, &fs, &ns});
  const int64_t T = hs.size(0), B = hs.size(1), H = hs.size(2);
  const int64_t* len = lengths_ptr(lengths);
  // x U (not x U^T): the weight's transpose
  const RecurrentMatmul matmul_f(w_hh.narrow(0, 0, H).t()), matmul_h(w_hh.narrow(0, H, H).t());
  Tensor d_xp = at::empty({T, B, 2 * H}, hs.options());
  Tensor d_fh = at::empty_like(h0);
  Tensor delta = at::zeros_like(h0);  // dL/dh_t, the loop's carry
  Tensor next = at::empty_like(h0);   // becomes delta of the step before
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "mgu_backward", [&] {
    mgu_backward_loop<scalar_t>(d_hs, h0, matmul_f, matmul_h, hs, fs, ns, len, d_xp, d_fh,
                                delta, next);
  });
  return {d_xp, delta};
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def("mgu_forward(Tensor xp, Tensor h0, Tensor w_hh, bool save) -> Tensor[]",
        &rnnkit_native::mgu_forward);
  m.def(
      "mgu_backward(Tensor d_hs, Tensor h0, Tensor w_hh, Tensor hs, Tensor fs, Tensor ns,"
      " Tensor? lengths) -> Tensor[]",
      &rnnkit_native::mgu_backward);
}
