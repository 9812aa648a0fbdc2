// GRU loops of the `native` backend, both reset placements (rnnkit/layers/backends/gru.py).

#include "common.h"

namespace rnnkit_native {
namespace {

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
    const Tensor bias = b_hh.contiguous();
    S* g = scratch.data_ptr<S>();
    const S* hp = h0.data_ptr<S>();
    for (int64_t t = 0; t < T; ++t) {
      matmul.run<S>(B, hp, H, bias.data_ptr<S>(), 0, g, 3 * H);
      for (int64_t b = 0; b < B; ++b) {
        const int64_t row = b * 3 * H;
        gru_gates_row<S>(x + row, g + row, a + row, n + b * H, ho + b * H, hp + b * H, H);
      }
      hp = ho;
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
    scalar_t* sc = scratch.data_ptr<scalar_t>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const scalar_t* d_out = d_hs.data_ptr<scalar_t>() + t * step;  // dL/dh_t from above
      if (t < T - 1) {  // plus what step t+1 sends back through W_hh
        matmul.run<scalar_t>(B, d_gh.data_ptr<scalar_t>() + (t + 1) * 3 * step, 3 * H, d_out, H,
                             sc, H);
      }
      const scalar_t* di = t == T - 1 ? d_out : sc;
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
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_rb_forward", [&] {
    using Sc = scalar_t;
    const int64_t step = B * H;
    const Sc* hp = h0.data_ptr<Sc>();
    Sc *pre_rz = scratch_rz.data_ptr<Sc>(), *pre_n = scratch_n.data_ptr<Sc>();
    for (int64_t t = 0; t < T; ++t) {
      const int64_t s = save ? t : 0;
      const Sc* x = xp.data_ptr<Sc>() + t * 3 * step;
      Sc* a = rz.data_ptr<Sc>() + s * 2 * step;
      Sc* r = rh.data_ptr<Sc>() + s * step;
      Sc* n = ns.data_ptr<Sc>() + s * step;
      Sc* ho = hs.data_ptr<Sc>() + t * step;
      gates.run<Sc>(B, hp, H, x, 3 * H, pre_rz, 2 * H);
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_gates_row<Sc>(pre_rz + b * 2 * H, a + b * 2 * H, hp + b * H, r + b * H, H);
      }
      candidate.run<Sc>(B, r, H, x + 2 * H, 3 * H, pre_n, H);
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_state_row<Sc>(pre_n + b * H, a + b * 2 * H, hp + b * H, n + b * H, ho + b * H, H);
      }
      hp = ho;
    }
  });
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
  AT_DISPATCH_FLOATING_TYPES(hs.scalar_type(), "gru_rb_backward", [&] {
    using Sc = scalar_t;
    const int64_t step = B * H;
    Sc *di = dh.data_ptr<Sc>(), *dd = direct.data_ptr<Sc>(), *cr = carry.data_ptr<Sc>();
    Sc* drh = scratch_rh.data_ptr<Sc>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const Sc* d_out = d_hs.data_ptr<Sc>() + t * step;
      sum_into(di, d_out, cr, step);
      Sc* dx = d_xp.data_ptr<Sc>() + t * 3 * step;
      const Sc* a = rz.data_ptr<Sc>() + t * 2 * step;
      const Sc* n = ns.data_ptr<Sc>() + t * step;
      const Sc* hp = t > 0 ? hs.data_ptr<Sc>() + (t - 1) * step : h0.data_ptr<Sc>();
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_grad_n_row<Sc>(di + b * H, a + b * 2 * H, n + b * H, hp + b * H, dx + b * 3 * H,
                              H, is_valid(len, t, b));
      }
      candidate_back.run<Sc>(B, dx + 2 * H, 3 * H, nullptr, 0, drh, H);
      for (int64_t b = 0; b < B; ++b) {
        gru_rb_grad_r_row<Sc>(di + b * H, drh + b * H, a + b * 2 * H, hp + b * H,
                              dx + b * 3 * H, dd + b * H, H, is_valid(len, t, b));
      }
      gates_back.run<Sc>(B, dx, 3 * H, dd, H, cr, H);
    }
  });
  return {d_xp, carry};
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def(
      "gru_forward(Tensor xp, Tensor h0, Tensor w_hh, Tensor b_hh, bool save)"
      " -> Tensor[]",
      &rnnkit_native::gru_forward);
  m.def(
      "gru_backward(Tensor d_hs, Tensor h0, Tensor w_hh, Tensor acts, Tensor ns, Tensor hs,"
      " Tensor? lengths) -> Tensor[]",
      &rnnkit_native::gru_backward);
  m.def(
      "gru_rb_forward(Tensor xp, Tensor h0, Tensor w_hh, bool save) -> Tensor[]",
      &rnnkit_native::gru_rb_forward);
  m.def(
      "gru_rb_backward(Tensor d_hs, Tensor h0, Tensor w_hh, Tensor rz, Tensor ns, Tensor hs,"
      " Tensor? lengths) -> Tensor[]",
      &rnnkit_native::gru_rb_backward);
}
