// Row-wise L2 normalisation kernel, compiled once per CPU tier (see capability.h).
//
// Rows are split evenly over threads; each row is read twice (sum of squares, then scale), the
// second time from L1.
#include "cpu/kernel_utils.h"
#include "cpu/l2_normalize.h"

namespace mlservices::cpu::CPU_CAPABILITY {

namespace {

template <typename T>
void l2_normalize_row(const T* x, int64_t n_cols, double eps, T* out) {
  using A = acc_t<T>;
  using Vec = AccVec<T>;
  Vec lo, hi;

  // Sum of squares in the accumulator type.
  Vec sum_lo(A(0)), sum_hi(A(0));
  for (int64_t j = 0; j < n_cols; j += kStep<T>) {
    if (j + kStep<T> <= n_cols) {
      load2(x + j, lo, hi);
    } else {
      load2(x + j, n_cols - j, lo, hi);
    }
    sum_lo = at::vec::fmadd(lo, lo, sum_lo);
    sum_hi = at::vec::fmadd(hi, hi, sum_hi);
  }
  const A norm = std::sqrt(at::vec::vec_reduce_all<A>(std::plus<Vec>(), sum_lo + sum_hi));

  // Scale by 1 / max(norm, eps): a zero row times a finite scale stays zero.
  const Vec scale(A(1) / std::max(norm, static_cast<A>(eps)));
  for (int64_t j = 0; j < n_cols; j += kStep<T>) {
    if (j + kStep<T> <= n_cols) {
      load2(x + j, lo, hi);
      store2(out + j, lo * scale, hi * scale);
    } else {
      load2(x + j, n_cols - j, lo, hi);
      store2(out + j, n_cols - j, lo * scale, hi * scale);
    }
  }
}

}  // namespace

void l2_normalize_kernel(const L2NormalizeParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.dtype, "l2_normalize", [&] {
    const scalar_t* x = static_cast<const scalar_t*>(p.x);
    scalar_t* out = static_cast<scalar_t*>(p.out);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.n_cols, 1));
    at::parallel_for(0, p.n_rows, grain, [&](int64_t row_begin, int64_t row_end) {
      for (int64_t r = row_begin; r < row_end; ++r) {
        l2_normalize_row<scalar_t>(x + r * p.stride_x_row, p.n_cols, p.eps, out + r * p.n_cols);
      }
    });
  });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
