// LSTM loops of the `native` backend (rnnkit/layers/backends/lstm.py).

#include "common.h"

namespace rnnkit_native {
namespace {

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

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def(
      "lstm_forward(Tensor xp, Tensor h0, Tensor c0, Tensor w_hh, bool save)"
      " -> Tensor[]",
      &rnnkit_native::lstm_forward);
  m.def(
      "lstm_backward(Tensor d_hs, Tensor? d_cs, Tensor h0, Tensor c0, Tensor w_hh, Tensor acts,"
      " Tensor cs, Tensor tcs, Tensor? lengths) -> Tensor[]",
      &rnnkit_native::lstm_backward);
}
