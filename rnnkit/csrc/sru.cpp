// SRU loops of the `native` backend (rnnkit/layers/backends/sru.py): no matmul inside, so one
// element-wise pass over T forward and one backward, each (b, j) its own recurrence.
//
// With u (T, B, kH) = x W^T in chunks (x~, u_f, u_r[, s]), v = [v_f; v_r], b = [b_f; b_r]:
//   f = sig(u_f + v_f c + b_f);  r = sig(u_r + v_r c + b_r)       (c = c_{t-1})
//   c_t = f c + (1 - f) x~;      h_t = r c_t + (1 - r) s_t
// where the skip term s_t is u's fourth chunk (k = 4), `scale * x_t` (k = 3, the input
// given), or nothing (h_t = r c_t). The backward recomputes f and r from u and c_{t-1} rather than
// storing them: two sigmoids cost less than writing and reading two more (T, B, H) buffers.

#include "common.h"

namespace rnnkit_native {
namespace {

// The skip term of one row: u's fourth chunk, scale times the input x (B, T, H) as the layer
// has it (no transposed copy), or none.
template <typename S>
struct Skip {
  const S* base;  // step 0, row 0; null for no skip term
  int64_t step_stride, row_stride;
  S scale;
  int64_t offset(int64_t t, int64_t b) const { return t * step_stride + b * row_stride; }
};

template <typename S>
Skip<S> skip_of(const Tensor& u, const std::optional<Tensor>& x, double scale, int64_t H) {
  const int64_t B = u.size(1), k = u.size(2) / H;
  if (k == 4) return {u.data_ptr<S>() + 3 * H, B * 4 * H, 4 * H, S(1)};
  if (x.has_value()) return {x->data_ptr<S>(), H, x->size(1) * H, S(scale)};
  return {nullptr, 0, 0, S(0)};
}

// kSkip: the cell has a skip term. Variants are template arguments, so that the inner loops
// have no branch and vectorise.
template <typename S, bool kSkip>
void sru_forward_loop(const Tensor& u, const Skip<S>& skip, const Tensor& v, const Tensor& bias,
                      const Tensor& c0, Tensor& hs, Tensor& cs) {
  const int64_t T = u.size(0), B = u.size(1), H = c0.size(1), k = u.size(2) / H;
  const S *vf = v.data_ptr<S>(), *vr = vf + H, *bf = bias.data_ptr<S>(), *br = bf + H;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t b = 0; b < B; ++b) {
      const S* ur = u.data_ptr<S>() + (t * B + b) * k * H;
      const S* c = t > 0 ? cs.data_ptr<S>() + ((t - 1) * B + b) * H : c0.data_ptr<S>() + b * H;
      const S* s = skip.base + skip.offset(t, b);  // not read without kSkip
      S* co = cs.data_ptr<S>() + (t * B + b) * H;
      S* ho = hs.data_ptr<S>() + (t * B + b) * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S f = sigmoid(ur[H + j] + vf[j] * c[j] + bf[j]);
        const S r = sigmoid(ur[2 * H + j] + vr[j] * c[j] + br[j]);
        const S ct = f * c[j] + (S(1) - f) * ur[j];
        co[j] = ct;
        ho[j] = kSkip ? r * ct + (S(1) - r) * (skip.scale * s[j]) : r * ct;
      }
    }
  }
}

// -> (hs, cs), each (T, B, H). x: the input (B, T, H) when it is the skip term, else none.
std::vector<Tensor> sru_forward(const Tensor& u, const std::optional<Tensor>& x,
                                double scale, const Tensor& v, const Tensor& bias,
                                const Tensor& c0) {
  check_contiguous({&u, &v, &bias, &c0});
  if (x.has_value()) check_contiguous({&*x});
  const int64_t T = u.size(0), B = u.size(1), H = c0.size(1);
  Tensor hs = at::empty({T, B, H}, c0.options());
  Tensor cs = at::empty({T, B, H}, c0.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "sru_forward", [&] {
    const Skip<scalar_t> skip = skip_of<scalar_t>(u, x, scale, H);
    if (skip.base != nullptr) {
      sru_forward_loop<scalar_t, true>(u, skip, v, bias, c0, hs, cs);
    } else {
      sru_forward_loop<scalar_t, false>(u, skip, v, bias, c0, hs, cs);
    }
  });
  return {hs, cs};
}

// kSkip: the cell has a skip term; kDcs: a gradient of the cell states comes in (d_cs).
template <typename S, bool kSkip, bool kDcs>
void sru_backward_loop(const Tensor& d_hs, const S* d_cs, const Tensor& u, const Skip<S>& skip,
                       S* d_skip, const Skip<S>& d_skip_at, const Tensor& v, const Tensor& bias,
                       const Tensor& c0, const Tensor& cs, const int64_t* len, Tensor& d_u,
                       Tensor& dc, Tensor& d_vb) {
  const int64_t T = u.size(0), B = u.size(1), H = c0.size(1), k = u.size(2) / H;
  const S *vf = v.data_ptr<S>(), *vr = vf + H, *bf = bias.data_ptr<S>(), *br = bf + H;
  // the parameters' gradients are sums over every (t, b): over b in S (vectorised), then over
  // t in double
  std::vector<S> step_sums(4 * H);
  S *sf = step_sums.data(), *sr = sf + H, *sbf = sr + H, *sbr = sbf + H;
  double* total = d_vb.data_ptr<double>();
  for (int64_t t = T - 1; t >= 0; --t) {
    std::fill(step_sums.begin(), step_sums.end(), S(0));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = (t * B + b) * H;
      S* du = d_u.data_ptr<S>() + row * k;
      S* dcb = dc.data_ptr<S>() + b * H;
      S* ds = d_skip + d_skip_at.offset(t, b);  // not written without kSkip
      if (!is_valid(len, t, b)) {
        zero(du, k * H);
        zero(dcb, H);
        if (kSkip && k != 4) zero(ds, H);
        continue;
      }
      const S* ur = u.data_ptr<S>() + row * k;
      const S* c = t > 0 ? cs.data_ptr<S>() + row - B * H : c0.data_ptr<S>() + b * H;
      const S* ct = cs.data_ptr<S>() + row;
      const S* dh = d_hs.data_ptr<S>() + row;
      const S* dci = kDcs ? d_cs + row : nullptr;
      const S* s = skip.base + skip.offset(t, b);
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) {
        const S f = sigmoid(ur[H + j] + vf[j] * c[j] + bf[j]);
        const S r = sigmoid(ur[2 * H + j] + vr[j] * c[j] + br[j]);
        const S sj = kSkip ? skip.scale * s[j] : S(0);
        const S dr = dh[j] * (ct[j] - sj) * r * (S(1) - r);
        const S d = dcb[j] + (kDcs ? dci[j] : S(0)) + dh[j] * r;
        const S df = d * (c[j] - ur[j]) * f * (S(1) - f);
        du[j] = d * (S(1) - f);
        du[H + j] = df;
        du[2 * H + j] = dr;
        dcb[j] = d * f + df * vf[j] + dr * vr[j];
        sf[j] += df * c[j];
        sr[j] += dr * c[j];
        sbf[j] += df;
        sbr[j] += dr;
        if (kSkip) ds[j] = dh[j] * (S(1) - r) * skip.scale;
      }
    }
    for (int64_t j = 0; j < 4 * H; ++j) total[j] += double(step_sums[j]);
  }
}

// -> (d_u (T, B, kH), d_x (B, T, H) or empty, d_v (2H), d_bias (2H), dc0). d_cs: the gradient
// of the cell states (their last valid step is the final state), or none. With dc the gradient
// reaching c_t: dr = dh (c_t - s) r (1 - r); dc += dh r; df = dc (c - x~) f (1 - f);
// dx~ = dc (1 - f); ds = dh (1 - r); dc_{t-1} = dc f + df v_f + dr v_r. Past each end all zero.
std::vector<Tensor> sru_backward(const Tensor& d_hs, const std::optional<Tensor>& d_cs,
                                 const Tensor& u, const std::optional<Tensor>& x, double scale,
                                 const Tensor& v, const Tensor& bias, const Tensor& c0,
                                 const Tensor& cs, const std::optional<Tensor>& lengths) {
  check_contiguous({&d_hs, &u, &v, &bias, &c0, &cs});
  if (d_cs.has_value()) check_contiguous({&*d_cs});
  const int64_t H = c0.size(1);
  const int64_t* len = lengths_ptr(lengths);
  Tensor d_u = at::empty_like(u);
  Tensor d_x = x.has_value() ? at::empty_like(*x) : at::empty({0}, u.options());
  Tensor dc = at::zeros_like(c0);
  Tensor d_vb = at::zeros({4, H}, c0.options().dtype(at::kDouble));  // d v_f, v_r, b_f, b_r
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "sru_backward", [&] {
    using S = scalar_t;
    const Skip<S> skip = skip_of<S>(u, x, scale, H);
    // the skip term's gradient goes to u's fourth chunk (laid out as u), or to d_x (as x)
    const bool projected = u.size(2) == 4 * H;
    S* d_skip = projected ? d_u.data_ptr<S>() + 3 * H : d_x.data_ptr<S>();
    const Skip<S> d_skip_at = projected      ? skip
                              : x.has_value() ? Skip<S>{nullptr, H, x->size(1) * H, S(1)}
                                              : Skip<S>{nullptr, 0, 0, S(1)};
    const S* dcs = d_cs.has_value() ? d_cs->data_ptr<S>() : nullptr;
    const auto run = [&](auto has_skip, auto has_dcs) {
      sru_backward_loop<S, decltype(has_skip)::value, decltype(has_dcs)::value>(
          d_hs, dcs, u, skip, d_skip, d_skip_at, v, bias, c0, cs, len, d_u, dc, d_vb);
    };
    using Yes = std::true_type;
    using No = std::false_type;
    if (skip.base != nullptr) {
      dcs != nullptr ? run(Yes(), Yes()) : run(Yes(), No());
    } else {
      dcs != nullptr ? run(No(), Yes()) : run(No(), No());
    }
  });
  const Tensor d_params = d_vb.to(c0.scalar_type());
  return {d_u, d_x, d_params.narrow(0, 0, 2).flatten(), d_params.narrow(0, 2, 2).flatten(), dc};
}

}  // namespace
}  // namespace rnnkit_native

TORCH_LIBRARY_FRAGMENT(rnnkit_native, m) {
  m.def(
      "sru_forward(Tensor u, Tensor? x, float scale, Tensor v, Tensor bias, Tensor c0)"
      " -> Tensor[]",
      &rnnkit_native::sru_forward);
  m.def(
      "sru_backward(Tensor d_hs, Tensor? d_cs, Tensor u, Tensor? x, float scale, Tensor v,"
      " Tensor bias, Tensor c0, Tensor cs, Tensor? lengths) -> Tensor[]",
      &rnnkit_native::sru_backward);
}
