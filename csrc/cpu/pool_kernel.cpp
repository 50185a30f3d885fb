// Segment pooling kernel, compiled once per CPU tier (see capability.h).
//
// Segments are spread over threads by length; each segment streams its rows once, adding (or
// taking the max of) each row into a float32 accumulator row that stays in L1.
#include "cpu/kernel_utils.h"
#include "cpu/pool.h"

namespace mlservices::cpu::CPU_CAPABILITY {

namespace {

// acc[j] (+)= row[j] for n_cols columns; acc has round_up(n_cols, kStep) room.
template <typename T, bool kMax>
inline void accumulate_row(const T* row, int64_t n_cols, acc_t<T>* acc) {
  constexpr int64_t V = AccVec<T>::size();
  AccVec<T> lo, hi;
  int64_t j = 0;
  for (; j < n_cols; j += kStep<T>) {
    if (j + kStep<T> <= n_cols) {
      load2(row + j, lo, hi);
    } else {
      load2(row + j, n_cols - j, lo, hi);
    }
    const AccVec<T> acc_lo = AccVec<T>::loadu(acc + j);
    const AccVec<T> acc_hi = AccVec<T>::loadu(acc + j + V);
    if constexpr (kMax) {
      at::vec::maximum(acc_lo, lo).store(acc + j);
      at::vec::maximum(acc_hi, hi).store(acc + j + V);
    } else {
      (acc_lo + lo).store(acc + j);
      (acc_hi + hi).store(acc + j + V);
    }
  }
}

// Pools rows [begin, end) of x into out (n_cols values).
template <typename T>
void pool_segment(const PoolParams& p, int64_t begin, int64_t end, acc_t<T>* acc, T* out) {
  using A = acc_t<T>;
  using Vec = AccVec<T>;
  constexpr int64_t V = Vec::size();
  const T* x = static_cast<const T*>(p.x);
  const int64_t n_cols = p.n_cols;
  const int64_t padded = round_up(n_cols, kStep<T>);

  // Empty segment: a zero row in every mode.
  if (end <= begin) {
    std::fill(acc, acc + padded, A(0));
  } else if (p.mode == PoolMode::kCls || p.mode == PoolMode::kLast) {
    // First or last token: convert one row.
    const int64_t t = p.mode == PoolMode::kCls ? begin : end - 1;
    load_row(x + t * p.stride_x_row, n_cols, acc);
  } else if (p.mode == PoolMode::kMax) {
    // Max: start from the first row, take the max with every other row.
    load_row(x + begin * p.stride_x_row, n_cols, acc);
    for (int64_t t = begin + 1; t < end; ++t) {
      accumulate_row<T, true>(x + t * p.stride_x_row, n_cols, acc);
    }
  } else {
    // Mean: sum every row, then scale by 1 / length.
    std::fill(acc, acc + padded, A(0));
    for (int64_t t = begin; t < end; ++t) {
      accumulate_row<T, false>(x + t * p.stride_x_row, n_cols, acc);
    }
    const Vec inv_len(A(1) / static_cast<A>(end - begin));
    for (int64_t j = 0; j < padded; j += V) (Vec::loadu(acc + j) * inv_len).store(acc + j);
  }

  // Optionally scale to unit length: acc / max(||acc||, eps).
  A scale = A(1);
  if (p.normalize) {
    Vec sum_sq(A(0));
    for (int64_t j = 0; j < padded; j += V) {
      const Vec a = Vec::loadu(acc + j);
      sum_sq = at::vec::fmadd(a, a, sum_sq);
    }
    const A norm = std::sqrt(at::vec::vec_reduce_all<A>(std::plus<Vec>(), sum_sq));
    scale = A(1) / std::max(norm, static_cast<A>(p.eps));
  }

  // Store in the input dtype (padded lanes of acc are zero or ignored).
  const Vec scale_vec(scale);
  for (int64_t j = 0; j < n_cols; j += kStep<T>) {
    const Vec lo = Vec::loadu(acc + j) * scale_vec;
    const Vec hi = Vec::loadu(acc + j + V) * scale_vec;
    if (j + kStep<T> <= n_cols) {
      store2(out + j, lo, hi);
    } else {
      store2(out + j, n_cols - j, lo, hi);
    }
  }
}

template <typename T>
void pool_all(const PoolParams& p) {
  // Cost of a segment: its rows plus a fixed cost for the store.
  Scratch<int64_t> start(p.n_seqs + 1);
  start.get()[0] = 0;
  for (int64_t s = 0; s < p.n_seqs; ++s) {
    const int64_t rows = p.mode == PoolMode::kMean || p.mode == PoolMode::kMax
                             ? p.cu_seqlens[s + 1] - p.cu_seqlens[s]
                             : 1;
    start.get()[s + 1] = start.get()[s] + rows + 1;
  }

  // One accumulator row per thread, reused for every segment it pools.
  T* out = static_cast<T*>(p.out);
  const int64_t padded = round_up(p.n_cols, kStep<T>);
  balanced_for(p.n_seqs, start.get(), [&](int64_t first, int64_t last) {
    Scratch<acc_t<T>> acc(padded);
    for (int64_t s = first; s < last; ++s) {
      pool_segment<T>(p, p.cu_seqlens[s], p.cu_seqlens[s + 1], acc.get(), out + s * p.n_cols);
    }
  });
}

}  // namespace

void segment_pool_kernel(const PoolParams& params) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, params.dtype, "segment_pool",
                                  [&] { pool_all<scalar_t>(params); });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
