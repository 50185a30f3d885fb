// Bias add + GELU kernel, compiled once per CPU tier (see capability.h).
//
// Rows are split evenly over threads; each element is read once and written once (in place when
// out is x), with the bias row and the math in accumulator vectors.
#include "cpu/bias_gelu.h"
#include "cpu/kernel_utils.h"

namespace mlservices::cpu::CPU_CAPABILITY {

namespace {

// GELU(h) = h / 2 * (1 + erf(h / sqrt(2))) in float32 without a library call: erf(|z|) =
// 1 - q, q = poly(t) * t * exp(-z^2), t = 1 / (1 + p |z|) (Abramowitz & Stegun 7.1.26, |error| <
// 1.5e-7, the approximation oneDNN's GELU uses) with an inline exp; for h < 0, 1 + erf = q exactly
// (no cancellation).
inline at::vec::Vectorized<float> gelu_erf(const at::vec::Vectorized<float>& h) {
  using Vec = at::vec::Vectorized<float>;
  const Vec one(1.0f), zero(0.0f);
  const Vec z = h * Vec(static_cast<float>(M_SQRT1_2));
  const Vec t = one / at::vec::fmadd(Vec(0.3275911f), z.abs(), one);
  Vec poly = at::vec::fmadd(Vec(1.061405429f), t, Vec(-1.453152027f));
  poly = at::vec::fmadd(poly, t, Vec(1.421413741f));
  poly = at::vec::fmadd(poly, t, Vec(-0.284496736f));
  poly = at::vec::fmadd(poly, t, Vec(0.254829592f));
  const Vec q = poly * t * (zero - z * z).exp_u20();
  return Vec(0.5f) * h * Vec::blendv(Vec(2.0f) - q, q, h < zero);
}

// GELU(h) with the tanh approximation, written as h * sigmoid(2u) = h / (1 + exp(-2u)) with
// u = sqrt(2 / pi) * (h + 0.044715 h^3); the inline exp saturates, so h -> -inf gives -0.
inline at::vec::Vectorized<float> gelu_tanh(const at::vec::Vectorized<float>& h) {
  using Vec = at::vec::Vectorized<float>;
  const Vec u = Vec(static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5)) *
                at::vec::fmadd(Vec(0.044715f) * h * h, h, h);
  return h / (Vec(1.0f) + (Vec(-2.0f) * u).exp_u20());
}

// float64 keeps the library erf and tanh (within 1 ulp): the float64 path is the accurate one.
inline at::vec::Vectorized<double> gelu_erf(const at::vec::Vectorized<double>& h) {
  using Vec = at::vec::Vectorized<double>;
  return Vec(0.5) * h * (Vec(1.0) + (h * Vec(M_SQRT1_2)).erf());
}

inline at::vec::Vectorized<double> gelu_tanh(const at::vec::Vectorized<double>& h) {
  using Vec = at::vec::Vectorized<double>;
  const Vec u = Vec(M_SQRT2 * M_2_SQRTPI * 0.5) * at::vec::fmadd(Vec(0.044715) * h * h, h, h);
  return Vec(0.5) * h * (Vec(1.0) + u.tanh());
}

template <typename T>
void bias_gelu_row(const T* x, const acc_t<T>* bias, T* out, int64_t n_cols, bool tanh) {
  using Vec = AccVec<T>;
  constexpr int64_t V = Vec::size();
  Vec lo, hi;
  for (int64_t j = 0; j < n_cols; j += kStep<T>) {
    const int64_t n = std::min<int64_t>(kStep<T>, n_cols - j);

    // Load x and bias into accumulator vectors (tail lanes are zero).
    if (n == kStep<T>) {
      load2(x + j, lo, hi);
    } else {
      load2(x + j, n, lo, hi);
    }
    const Vec b_lo = Vec::loadu(bias + j, std::min<int64_t>(n, V));
    const Vec b_hi = n > V ? Vec::loadu(bias + j + V, n - V) : Vec(acc_t<T>(0));

    // Add the bias, apply GELU and store in x's dtype.
    const Vec o_lo = tanh ? gelu_tanh(lo + b_lo) : gelu_erf(lo + b_lo);
    const Vec o_hi = tanh ? gelu_tanh(hi + b_hi) : gelu_erf(hi + b_hi);
    if (n == kStep<T>) {
      store2(out + j, o_lo, o_hi);
    } else {
      store2(out + j, n, o_lo, o_hi);
    }
  }
}

}  // namespace

void bias_gelu_kernel(const BiasGeluParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "bias_gelu", [&] {
    const scalar_t* x = static_cast<const scalar_t*>(p.x);
    const acc_t<scalar_t>* bias = static_cast<const acc_t<scalar_t>*>(p.bias);
    scalar_t* out = static_cast<scalar_t*>(p.out);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.n_cols, 1));
    at::parallel_for(0, p.n_rows, grain, [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        bias_gelu_row<scalar_t>(x + r * p.stride_x_row, bias, out + r * p.stride_out_row, p.n_cols,
                                p.tanh);
      }
    });
  });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
