// Output feedback, closed loop, of the `native` backend: the forward only (the backward is
// rnnkit/layers/backends/feedback.py).

#include "common.h"

namespace rnnkit_native {
namespace {

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
}
