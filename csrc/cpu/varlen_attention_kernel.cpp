// Variable-length attention kernel, compiled once per CPU tier (see capability.h).
//
// Work items are (segment, head) pairs, spread over threads by cost (length squared). An item
// converts k^T and v of its segment to float32 scratch once, then for each block of up to
// kBlockM query rows: scores = (q * scale) k^T, a row-wise softmax in place, out = probs v.
// Both products use one register-tiled micro-kernel (kTileM rows x two vectors of columns).
#include <limits>

#include "cpu/kernel_utils.h"
#include "cpu/varlen_attention.h"

namespace mlservices::cpu::CPU_CAPABILITY {

namespace {

constexpr int64_t kBlockM = 64;
constexpr int kTileM = 6;

// c[MR, NV vectors] = a[MR, depth] (row stride lda) @ b[depth, NV vectors] (row stride ldb).
template <typename A, int MR, int NV>
inline void gemm_tile(const A* a, int64_t lda, const A* b, int64_t ldb, int64_t depth, A* c,
                      int64_t ldc) {
  using Vec = at::vec::Vectorized<A>;
  constexpr int64_t V = Vec::size();
  Vec acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int nv = 0; nv < NV; ++nv) acc[r][nv] = Vec(A(0));
  }

  // Rank-1 updates: one row of b against a broadcast of each row's a value.
  for (int64_t kk = 0; kk < depth; ++kk) {
    Vec bv[NV];
#pragma GCC unroll 4
    for (int nv = 0; nv < NV; ++nv) bv[nv] = Vec::loadu(b + kk * ldb + nv * V);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const Vec av(a[r * lda + kk]);
#pragma GCC unroll 4
      for (int nv = 0; nv < NV; ++nv) acc[r][nv] = at::vec::fmadd(av, bv[nv], acc[r][nv]);
    }
  }

  // Store the tile.
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int nv = 0; nv < NV; ++nv) acc[r][nv].store(c + r * ldc + nv * V);
  }
}

template <typename A, int NV>
inline void gemm_rows(int rows, const A* a, int64_t lda, const A* b, int64_t ldb, int64_t depth,
                      A* c, int64_t ldc) {
  switch (rows) {
    case 6:
      return gemm_tile<A, 6, NV>(a, lda, b, ldb, depth, c, ldc);
    case 5:
      return gemm_tile<A, 5, NV>(a, lda, b, ldb, depth, c, ldc);
    case 4:
      return gemm_tile<A, 4, NV>(a, lda, b, ldb, depth, c, ldc);
    case 3:
      return gemm_tile<A, 3, NV>(a, lda, b, ldb, depth, c, ldc);
    case 2:
      return gemm_tile<A, 2, NV>(a, lda, b, ldb, depth, c, ldc);
    default:
      return gemm_tile<A, 1, NV>(a, lda, b, ldb, depth, c, ldc);
  }
}

// c[m, n] = a[m, depth] @ b[depth, n], all row-major; n is a multiple of the vector size.
template <typename A>
void small_gemm(const A* a, int64_t lda, const A* b, int64_t ldb, int64_t m, int64_t n,
                int64_t depth, A* c, int64_t ldc) {
  constexpr int64_t V = at::vec::Vectorized<A>::size();
  static_assert(kTileM == 6, "gemm_rows handles up to 6 rows");
  for (int64_t j = 0; j < n; j += 2 * V) {
    const bool two = n - j >= 2 * V;
    for (int64_t i = 0; i < m; i += kTileM) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileM, m - i));
      if (two) {
        gemm_rows<A, 2>(rows, a + i * lda, lda, b + j, ldb, depth, c + i * ldc + j, ldc);
      } else {
        gemm_rows<A, 1>(rows, a + i * lda, lda, b + j, ldb, depth, c + i * ldc + j, ldc);
      }
    }
  }
}

// Softmax of row[0, n) in place (row has room for ldk >= n lanes); returns 1 / sum of exps.
template <typename A>
inline A softmax_row(A* row, int64_t n, int64_t ldk) {
  using Vec = at::vec::Vectorized<A>;
  constexpr int64_t V = Vec::size();

  // Mask the padding columns, then find the row max.
  for (int64_t j = n; j < ldk; ++j) row[j] = -std::numeric_limits<A>::infinity();
  Vec max_vec(-std::numeric_limits<A>::infinity());
  for (int64_t j = 0; j < ldk; j += V) max_vec = at::vec::maximum(max_vec, Vec::loadu(row + j));
  const A row_max = at::vec::vec_reduce_all<A>(
      [](const Vec& x, const Vec& y) { return at::vec::maximum(x, y); }, max_vec);

  // exp(x - max) in place, summing.
  const Vec max_b(row_max);
  Vec sum_vec(A(0));
  for (int64_t j = 0; j < ldk; j += V) {
    const Vec shifted = Vec::loadu(row + j) - max_b;
    Vec e;
    if constexpr (std::is_same_v<A, float>) {
      e = shifted.exp_u20();
    } else {
      e = shifted.exp();
    }
    e.store(row + j);
    sum_vec = sum_vec + e;
  }
  for (int64_t j = n; j < ldk; ++j) row[j] = A(0);
  return A(1) / at::vec::vec_reduce_all<A>(std::plus<Vec>(), sum_vec);
}

// Per-thread float32 (or float64) buffers, sized for the longest segment.
template <typename A>
struct AttentionScratch {
  AttentionScratch(int64_t max_len, int64_t head_dim, int64_t v_size, int64_t step)
      : ld_d(round_up(head_dim, step)),
        max_ldk(round_up(std::max<int64_t>(max_len, 1), v_size)),
        kt(ld_d * max_ldk),
        vp(max_len * ld_d + step),
        qp(kBlockM * ld_d),
        scores(kBlockM * max_ldk),
        acc(kBlockM * ld_d),
        row(ld_d),
        inv_sum(kBlockM) {}
  int64_t ld_d;        // row stride of q, v, out buffers: head_dim rounded up to a load step
  int64_t max_ldk;     // the longest segment rounded up to a vector
  Scratch<A> kt;       // [head_dim, ldk]: k^T of the segment, zero past its length
  Scratch<A> vp;       // [len, ld_d]: v of the segment
  Scratch<A> qp;       // [kBlockM, ld_d]: a block of q, times scale
  Scratch<A> scores;   // [kBlockM, ldk]: scores, then probabilities
  Scratch<A> acc;      // [kBlockM, ld_d]: probs @ v
  Scratch<A> row;      // [ld_d]: one converted row of k
  Scratch<A> inv_sum;  // [kBlockM]: 1 / softmax denominators
};

template <typename T>
void attend(const AttentionParams& p, int64_t seq, int64_t head, AttentionScratch<acc_t<T>>& w) {
  using A = acc_t<T>;
  using Vec = AccVec<T>;
  constexpr int64_t V = Vec::size();
  const int64_t begin = p.cu_seqlens[seq];
  const int64_t len = p.cu_seqlens[seq + 1] - begin;
  const int64_t d = p.head_dim;
  const int64_t ld_d = w.ld_d;
  const int64_t ldk = round_up(len, V);
  const T* q = static_cast<const T*>(p.q) + begin * p.stride_q_row + head * p.stride_q_head;
  const T* k = static_cast<const T*>(p.k) + begin * p.stride_k_row + head * p.stride_k_head;
  const T* v = static_cast<const T*>(p.v) + begin * p.stride_v_row + head * p.stride_v_head;
  T* out = static_cast<T*>(p.out) + begin * p.n_heads * d + head * d;
  const int64_t stride_out_row = p.n_heads * d;
  if (len == 0) return;

  // k^T and v of this segment in the accumulator type; k^T is zero past the segment.
  A* kt = w.kt.get();
  for (int64_t j = 0; j < len; ++j) {
    load_row(k + j * p.stride_k_row, d, w.row.get());
    for (int64_t c = 0; c < d; ++c) kt[c * ldk + j] = w.row.get()[c];
  }
  for (int64_t c = 0; c < d; ++c) std::fill(kt + c * ldk + len, kt + (c + 1) * ldk, A(0));
  for (int64_t j = 0; j < len; ++j) load_row(v + j * p.stride_v_row, d, w.vp.get() + j * ld_d);

  for (int64_t i0 = 0; i0 < len; i0 += kBlockM) {
    const int64_t rows = std::min(kBlockM, len - i0);

    // A block of q rows, scaled.
    const Vec scale(static_cast<A>(p.scale));
    for (int64_t r = 0; r < rows; ++r) {
      A* qr = w.qp.get() + r * ld_d;
      load_row(q + (i0 + r) * p.stride_q_row, d, qr);
      for (int64_t c = 0; c < ld_d; c += V) (Vec::loadu(qr + c) * scale).store(qr + c);
    }

    // Scores against every key of the segment, then the softmax of each row.
    small_gemm<A>(w.qp.get(), ld_d, kt, ldk, rows, ldk, d, w.scores.get(), ldk);
    for (int64_t r = 0; r < rows; ++r) {
      w.inv_sum.get()[r] = softmax_row<A>(w.scores.get() + r * ldk, len, ldk);
    }

    // probs @ v, normalised by the softmax sums and stored in the input dtype.
    small_gemm<A>(w.scores.get(), ldk, w.vp.get(), ld_d, rows, ld_d, len, w.acc.get(), ld_d);
    for (int64_t r = 0; r < rows; ++r) {
      const A* acc_row = w.acc.get() + r * ld_d;
      T* out_row = out + (i0 + r) * stride_out_row;
      const Vec inv(w.inv_sum.get()[r]);
      for (int64_t c = 0; c < d; c += kStep<T>) {
        const Vec lo = Vec::loadu(acc_row + c) * inv;
        const Vec hi = Vec::loadu(acc_row + c + V) * inv;
        if (c + kStep<T> <= d) {
          store2(out_row + c, lo, hi);
        } else {
          store2(out_row + c, d - c, lo, hi);
        }
      }
    }
  }
}

template <typename T>
void attend_all(const AttentionParams& p) {
  // Cost of a (segment, head) item: about len^2 multiply-adds, plus a fixed part.
  const int64_t n_items = p.n_seqs * p.n_heads;
  Scratch<int64_t> start(n_items + 1);
  start.get()[0] = 0;
  for (int64_t item = 0; item < n_items; ++item) {
    const int64_t len = p.cu_seqlens[item / p.n_heads + 1] - p.cu_seqlens[item / p.n_heads];
    start.get()[item + 1] = start.get()[item] + len * (len + 16) + 1;
  }

  // Each thread takes a run of items with its own scratch.
  balanced_for(n_items, start.get(), [&](int64_t first, int64_t last) {
    AttentionScratch<acc_t<T>> scratch(p.max_seqlen, p.head_dim, AccVec<T>::size(), kStep<T>);
    for (int64_t item = first; item < last; ++item) {
      attend<T>(p, item / p.n_heads, item % p.n_heads, scratch);
    }
  });
}

}  // namespace

void varlen_attention_kernel(const AttentionParams& params) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, params.dtype, "varlen_attention",
                                  [&] { attend_all<scalar_t>(params); });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
