// Output feedback, closed loop, of the `native` backend: the forward loops and the backward
// loops (rnnkit/layers/backends/feedback.py prepares the coefficients and does the weight
// gradients, one matmul each).

#include "common.h"

namespace rnnkit_native {
namespace {

// Every loop here addresses rows by pointer (one dtype dispatch, no Tensor view per step: a
// view costs about a microsecond, a tenth of a step at batch 1).

// Jordan: m_t = mu m_{t-1} + c y_{t-1} (or plainly y_{t-1}); h_t = act(xp_t + m_t W_mh^T);
// y_t = out_act(h_t W_ho^T + b_ho).  -> (ys (T, B, O), ms (T, B, O), empty when plain,
// hs (T, B, H))
std::vector<Tensor> jordan_closed_forward(const Tensor& xp, const Tensor& m0, const Tensor& y0,
                                          const Tensor& w_mh, const Tensor& w_ho,
                                          const Tensor& b_ho, const Tensor& mu, const Tensor& c,
                                          bool plain, const std::string& act,
                                          const std::string& out_act) {
  check_contiguous({&xp, &m0, &y0});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2), O = w_ho.size(0);
  Tensor ys = at::empty({T, B, O}, xp.options());
  // the plain memory m_t = y_{t-1} is read where it lies and not stored (ms comes back empty)
  Tensor ms = at::empty({plain ? 0 : T, B, O}, xp.options());
  Tensor hs = at::empty_like(xp);
  const RecurrentMatmul memory_in(w_mh), output(w_ho);
  Tensor scratch_h = at::empty({B, H}, xp.options());
  const Tensor bias = b_ho.contiguous(), decay = mu.contiguous(), gain = c.contiguous();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "jordan_closed_forward", [&] {
    using S = scalar_t;
    const S *mup = decay.data_ptr<S>(), *cp = gain.data_ptr<S>();
    S* pre = scratch_h.data_ptr<S>();
    with_activation(act, [&](auto kind) {
      with_activation(out_act, [&](auto out_kind) {
        constexpr char k = decltype(kind)::value, ok = decltype(out_kind)::value;
        const S *m = m0.data_ptr<S>(), *y = y0.data_ptr<S>();
        for (int64_t t = 0; t < T; ++t) {
          if (!plain) {
            S* m_t = ms.data_ptr<S>() + t * B * O;
            scale_add_rows(m_t, m, mup, y, cp, B, O);  // mu m + c y
            m = m_t;
          } else {
            m = y;
          }
          S* h_t = hs.data_ptr<S>() + t * B * H;
          S* y_t = ys.data_ptr<S>() + t * B * O;
          memory_in.run<S>(B, m, O, nullptr, 0, pre, H);
          add_activate_rows<S, k>(pre, H, xp.data_ptr<S>() + t * B * H, H, h_t, H, B, H);
          output.run<S>(B, h_t, H, bias.data_ptr<S>(), 0, y_t, O);
          if constexpr (ok != 'n') add_activate_rows<S, ok>(y_t, O, nullptr, 0, y_t, O, B, O);
          y = y_t;
        }
      });
    });
  });
  return {ys, ms, hs};
}

// The closed-loop Jordan backward (rnnkit/layers/backends/feedback.py, _JordanClosedFn), with
// k_h = act'(h) and k_y = out_act'(y) (or none) zero past each end, dm the gradient reaching
// m_t from step t+1:
//   dy = (d_ys[t] + c dm) k_y;  d_pre[t] = (dy W_ho) k_h[t];  dm = mu dm + d_pre[t] W_mh
//   (+ d_ms[t] at every step when masked, else at the last).
// -> (d_ypre (T, B, O), d_pre (T, B, H), d_m_all (T, B, O): dm after each step, dm)
std::vector<Tensor> jordan_closed_backward(const Tensor& d_ys, const std::optional<Tensor>& d_ms,
                                           const Tensor& k_h, const std::optional<Tensor>& k_y,
                                           const Tensor& w_mh, const Tensor& w_ho,
                                           const Tensor& mu, const Tensor& c, bool masked) {
  check_contiguous({&d_ys, &k_h});
  const int64_t T = k_h.size(0), B = k_h.size(1), H = k_h.size(2), O = w_ho.size(0);
  const RecurrentMatmul from_output(w_ho.t()), from_memory(w_mh.t());
  Tensor d_ypre = at::empty({T, B, O}, k_h.options());
  Tensor d_pre = at::empty_like(k_h);
  Tensor d_m_all = at::empty({T, B, O}, k_h.options());
  Tensor dm = at::zeros({B, O}, k_h.options());
  const Tensor decay = mu.contiguous(), gain = c.contiguous();
  const Tensor dms = d_ms.has_value() ? d_ms->contiguous() : Tensor();
  const Tensor ky = k_y.has_value() ? k_y->contiguous() : Tensor();
  const Tensor ones = at::ones({O}, k_h.options());
  AT_DISPATCH_FLOATING_TYPES(k_h.scalar_type(), "jordan_closed_backward", [&] {
    using S = scalar_t;
    const S *mup = decay.data_ptr<S>(), *cp = gain.data_ptr<S>();
    S* dmp = dm.data_ptr<S>();
    for (int64_t t = T - 1; t >= 0; --t) {
      const int64_t o = t * B * O;
      const S* d_out = d_ys.data_ptr<S>() + o;
      S* dy = d_ypre.data_ptr<S>() + o;
      const S* kyt = ky.defined() ? ky.data_ptr<S>() + o : nullptr;
      if (t == T - 1) {
        std::copy(d_out, d_out + B * O, dy);
      } else {
        scale_add_rows(dy, dmp, cp, d_out, ones.data_ptr<S>(), B, O);  // d_ys[t] + c dm
      }
      if (kyt != nullptr) mul_into(dy, kyt, B * O);
      S* dp = d_pre.data_ptr<S>() + t * B * H;
      from_output.run<S>(B, dy, O, nullptr, 0, dp, H);
      mul_into(dp, k_h.data_ptr<S>() + t * B * H, B * H);
      scale_add_rows(dmp, dmp, mup, static_cast<const S*>(nullptr), mup, B, O);  // mu dm
      from_memory.run<S>(B, dp, H, dmp, O, dmp, O);
      if (dms.defined() && (masked || t == T - 1)) add_into(dmp, dms.data_ptr<S>() + o, B * O);
      std::copy(dmp, dmp + B * O, d_m_all.data_ptr<S>() + o);
    }
  });
  return {d_ypre, d_pre, d_m_all, dm};
}

// NARX: a_t = xp_t + [y_{t-1} .. y_{t-K}] W_yh^T, y_t = act(a_t) W_hy^T + b_y. The outputs go
// into r (B, T+K, O) in reverse time order with the initial delay line at the end, so the delay
// line of step t is the slice r[:, T-t : T-t+K], K*O contiguous values a row (row stride
// (T+K)*O: the matmul reads it in place). -> (r, hs (T, B, H))
std::vector<Tensor> narx_closed_forward(const Tensor& xp, const Tensor& y_taps0,
                                        const Tensor& w_yh, const Tensor& w_hy,
                                        const Tensor& b_y, const std::string& act) {
  check_contiguous({&xp});
  const int64_t T = xp.size(0), B = xp.size(1), H = xp.size(2);
  const int64_t K = y_taps0.size(1), O = y_taps0.size(2), ld = (T + K) * O;
  Tensor r = at::empty({B, T + K, O}, xp.options());
  r.narrow(1, T, K).copy_(y_taps0);
  Tensor hs = at::empty_like(xp);
  Tensor scratch_h = at::empty({B, H}, xp.options());
  const RecurrentMatmul feedback_in(w_yh), output(w_hy);
  const Tensor bias = b_y.contiguous();
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "narx_closed_forward", [&] {
    using S = scalar_t;
    S *rp = r.data_ptr<S>(), *pre = scratch_h.data_ptr<S>();
    with_activation(act, [&](auto kind) {
      for (int64_t t = 0; t < T; ++t) {
        S* h_t = hs.data_ptr<S>() + t * B * H;
        feedback_in.run<S>(B, rp + (T - t) * O, ld, nullptr, 0, pre, H);
        add_activate_rows<S, decltype(kind)::value>(pre, H, xp.data_ptr<S>() + t * B * H, H,
                                                    h_t, H, B, H);
        output.run<S>(B, h_t, H, bias.data_ptr<S>(), 0, rp + (T - 1 - t) * O, ld);
      }
    });
  });
  return {r, hs};
}

// The closed-loop NARX backward loop (rnnkit/layers/backends/feedback.py, _NARXClosedFn):
// dr (B, T+K, O) in r's layout holds dL/dy from above and collects what each step sends back:
//   d_a[t] = (dr[:, T-1-t] W_hy) k_h[t];  dr[:, T-t : T-t+K] += d_a[t] W_yh
// with k_h = act'(h), zero past each end. -> d_a (T, B, H); dr is updated in place.
Tensor narx_closed_backward(Tensor& dr, const Tensor& k_h, const Tensor& w_yh,
                            const Tensor& w_hy) {
  check_contiguous({&dr, &k_h});
  const int64_t T = k_h.size(0), B = k_h.size(1), H = k_h.size(2);
  const int64_t O = dr.size(2), ld = dr.size(1) * O;
  const RecurrentMatmul from_output(w_hy.t()), to_taps(w_yh.t());
  Tensor d_a = at::empty_like(k_h);
  AT_DISPATCH_FLOATING_TYPES(k_h.scalar_type(), "narx_closed_backward", [&] {
    using S = scalar_t;
    S* drp = dr.data_ptr<S>();
    for (int64_t t = T - 1; t >= 0; --t) {
      S* da = d_a.data_ptr<S>() + t * B * H;
      const S* kh = k_h.data_ptr<S>() + t * B * H;
      from_output.run<S>(B, drp + (T - 1 - t) * O, ld, nullptr, 0, da, H);
      mul_into(da, kh, B * H);
      to_taps.run<S>(B, da, H, drp + (T - t) * O, ld, drp + (T - t) * O, ld);
    }
  });
  return d_a;
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def(
      "jordan_closed_forward(Tensor xp, Tensor m0, Tensor y0, Tensor w_mh, Tensor w_ho,"
      " Tensor b_ho, Tensor mu, Tensor c, bool plain, str act, str out_act) -> Tensor[]",
      &rnnkit_native::jordan_closed_forward);
  m.def(
      "narx_closed_forward(Tensor xp, Tensor y_taps0, Tensor w_yh, Tensor w_hy, Tensor b_y,"
      " str act) -> Tensor[]",
      &rnnkit_native::narx_closed_forward);
  m.def(
      "jordan_closed_backward(Tensor d_ys, Tensor? d_ms, Tensor k_h, Tensor? k_y, Tensor w_mh,"
      " Tensor w_ho, Tensor mu, Tensor c, bool masked) -> Tensor[]",
      &rnnkit_native::jordan_closed_backward);
  m.def(
      "narx_closed_backward(Tensor(a!) dr, Tensor k_h, Tensor w_yh, Tensor w_hy) -> Tensor",
      &rnnkit_native::narx_closed_backward);
}
