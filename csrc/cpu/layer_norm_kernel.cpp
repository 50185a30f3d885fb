// LayerNorm (+ residual) kernel, compiled once per CPU tier (see capability.h).
//
// Rows are split evenly over threads. Each row is read from memory once: x + residual goes to a
// per-thread accumulator row in L1, the statistics come from that row in two passes, and the
// normalised row is written once.
#include "cpu/kernel_utils.h"
#include "cpu/layer_norm.h"

namespace mlservices::cpu::CPU_CAPABILITY {

namespace {

template <typename T>
void layer_norm_row(const LayerNormParams& p, const T* x, const T* residual, acc_t<T>* h, T* out) {
  using A = acc_t<T>;
  using Vec = AccVec<T>;
  constexpr int64_t V = Vec::size();
  const int64_t n_cols = p.n_cols;
  const A* weight = static_cast<const A*>(p.weight);
  const A* bias = static_cast<const A*>(p.bias);
  Vec lo, hi, r_lo, r_hi;

  // h = x + residual in the accumulator type, summing for the mean (tail lanes are zero).
  Vec sum_lo(A(0)), sum_hi(A(0));
  for (int64_t j = 0; j < n_cols; j += kStep<T>) {
    const int64_t n = std::min<int64_t>(kStep<T>, n_cols - j);
    if (n == kStep<T>) {
      load2(x + j, lo, hi);
    } else {
      load2(x + j, n, lo, hi);
    }
    if (residual != nullptr) {
      if (n == kStep<T>) {
        load2(residual + j, r_lo, r_hi);
      } else {
        load2(residual + j, n, r_lo, r_hi);
      }
      lo = lo + r_lo;
      hi = hi + r_hi;
    }
    lo.store(h + j);
    hi.store(h + j + V);
    sum_lo = sum_lo + lo;
    sum_hi = sum_hi + hi;
  }
  const A mean = at::vec::vec_reduce_all<A>(std::plus<Vec>(), sum_lo + sum_hi) / n_cols;

  // Variance from the centred row (two-pass: no cancellation); skip the zero tail lanes.
  const Vec mean_vec(mean);
  Vec var_vec(A(0));
  int64_t j = 0;
  for (; j + V <= n_cols; j += V) {
    const Vec d = Vec::loadu(h + j) - mean_vec;
    var_vec = at::vec::fmadd(d, d, var_vec);
  }
  A var = at::vec::vec_reduce_all<A>(std::plus<Vec>(), var_vec);
  for (; j < n_cols; ++j) var += (h[j] - mean) * (h[j] - mean);
  const A rstd = A(1) / std::sqrt(var / n_cols + static_cast<A>(p.eps));

  // out = (h - mean) * rstd * weight + bias, stored in x's dtype.
  const Vec rstd_vec(rstd);
  for (j = 0; j < n_cols; j += kStep<T>) {
    const int64_t n = std::min<int64_t>(kStep<T>, n_cols - j);
    const Vec w_lo = Vec::loadu(weight + j, std::min<int64_t>(n, V));
    const Vec b_lo = Vec::loadu(bias + j, std::min<int64_t>(n, V));
    const Vec w_hi = n > V ? Vec::loadu(weight + j + V, n - V) : Vec(A(0));
    const Vec b_hi = n > V ? Vec::loadu(bias + j + V, n - V) : Vec(A(0));
    const Vec o_lo = at::vec::fmadd((Vec::loadu(h + j) - mean_vec) * rstd_vec, w_lo, b_lo);
    const Vec o_hi = at::vec::fmadd((Vec::loadu(h + j + V) - mean_vec) * rstd_vec, w_hi, b_hi);
    if (n == kStep<T>) {
      store2(out + j, o_lo, o_hi);
    } else {
      store2(out + j, n, o_lo, o_hi);
    }
  }
}

}  // namespace

void layer_norm_kernel(const LayerNormParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "layer_norm", [&] {
    const scalar_t* x = static_cast<const scalar_t*>(p.x);
    const scalar_t* residual = static_cast<const scalar_t*>(p.residual);
    scalar_t* out = static_cast<scalar_t*>(p.out);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.n_cols, 1));
    at::parallel_for(0, p.n_rows, grain, [&](int64_t row_begin, int64_t row_end) {
      Scratch<acc_t<scalar_t>> h(round_up(p.n_cols, kStep<scalar_t>));
      for (int64_t r = row_begin; r < row_end; ++r) {
        layer_norm_row<scalar_t>(p, x + r * p.stride_x_row,
                                 residual ? residual + r * p.stride_residual_row : nullptr, h.get(),
                                 out + r * p.n_cols);
      }
    });
  });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
