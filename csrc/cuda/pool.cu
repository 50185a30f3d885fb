// Segment pooling over a packed [T, H] stream on the GPU: one block per segment.
//
// A block is a grid of [row_groups, col_threads] threads: each thread owns columns (in 16-byte
// vectors where the rows allow) and accumulates every row_groups-th row of the segment in
// float32; the row groups are combined in shared memory, then the row is optionally
// L2-normalised and stored. Every input byte is read once.
#include <algorithm>

#include "cuda/common.cuh"

namespace mlservices::cuda {

namespace {

constexpr int kThreads = 256;

template <typename T, int VEC>
__global__ void segment_pool_kernel(const T* __restrict__ x,  // [T, H]
                                    int64_t stride_x_row,
                                    const int32_t* __restrict__ cu_seqlens,  // [B + 1]
                                    T* __restrict__ out,                     // [B, H]
                                    int64_t n_cols, PoolMode mode, bool normalize, float eps,
                                    int col_threads) {
  using A = typename Acc<T>::type;
  extern __shared__ unsigned char smem_raw[];
  A* partial = reinterpret_cast<A*>(smem_raw);  // [row_groups, n_cols]
  __shared__ A scratch[kWarpSize];
  const int64_t seq = blockIdx.x;
  const int64_t begin = cu_seqlens[seq];
  const int64_t end = cu_seqlens[seq + 1];
  const int row_groups = blockDim.x / col_threads;
  const int rg = threadIdx.x / col_threads;
  const int ct = threadIdx.x % col_threads;
  const int64_t n_vecs = n_cols / VEC;

  // Rows this thread's row group reads: every row for mean/max, one row for cls/last.
  int64_t row_begin = begin, row_end = end;
  if (mode == PoolMode::kCls) row_end = min(end, begin + 1);
  if (mode == PoolMode::kLast) row_begin = max(begin, end - 1);

  // Accumulate this thread's columns over its rows in float32.
  if (rg < row_groups) {
    for (int64_t c = ct; c < n_vecs; c += col_threads) {
      A acc[VEC];
      const A init = mode == PoolMode::kMax ? -INFINITY : A(0);
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] = init;
      for (int64_t t = row_begin + rg; t < row_end; t += row_groups) {
        const Pack<T, VEC> p =
            *reinterpret_cast<const Pack<T, VEC>*>(x + t * stride_x_row + c * VEC);
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
          const A v = to_acc(p.v[i]);
          acc[i] = mode == PoolMode::kMax ? (v > acc[i] || v != v ? v : acc[i]) : acc[i] + v;
        }
      }
#pragma unroll
      for (int i = 0; i < VEC; ++i) partial[rg * n_cols + c * VEC + i] = acc[i];
    }
  }
  __syncthreads();

  // Combine the row groups into row 0 of partial (mean: divide; empty segment: zero).
  const int64_t len = end - begin;
  A sum_sq = A(0);
  for (int64_t j = threadIdx.x; j < n_cols; j += blockDim.x) {
    A v = partial[j];
    for (int g = 1; g < row_groups; ++g) {
      const A w = partial[g * n_cols + j];
      v = mode == PoolMode::kMax ? (w > v || w != w ? w : v) : v + w;
    }
    if (len == 0) v = A(0);
    if (mode == PoolMode::kMean && len > 0) v /= static_cast<A>(len);
    partial[j] = v;
    sum_sq += v * v;
  }

  // Optionally scale to unit length: v / max(||v||, eps).
  A scale = A(1);
  if (normalize) {
    const A norm = sqrt(block_sum(sum_sq, scratch));
    scale = A(1) / max(norm, static_cast<A>(eps));
  }

  // Store in the input dtype (each thread stores the columns it combined).
  for (int64_t j = threadIdx.x; j < n_cols; j += blockDim.x) {
    out[seq * n_cols + j] = from_acc<T>(partial[j] * scale);
  }
}

template <typename T, int VEC>
cudaError_t launch(const PoolArgs& a, cudaStream_t stream) {
  using A = typename Acc<T>::type;
  const int64_t n_vecs = a.n_cols / VEC;
  int col_threads = static_cast<int>(std::min<int64_t>(kThreads, (n_vecs + 31) / 32 * 32));
  int row_groups = kThreads / col_threads;
  // Keep the row-group partials within 48 KiB of shared memory.
  while (row_groups > 1 && row_groups * a.n_cols * sizeof(A) > 48 * 1024) --row_groups;
  if (a.n_cols * sizeof(A) > 48 * 1024) return cudaErrorInvalidConfiguration;
  const size_t smem = row_groups * a.n_cols * sizeof(A);
  segment_pool_kernel<T, VEC><<<a.n_seqs, row_groups * col_threads, smem, stream>>>(
      static_cast<const T*>(a.x), a.stride_x_row, a.cu_seqlens, static_cast<T*>(a.out), a.n_cols,
      a.mode, a.normalize, a.eps, col_threads);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_segment_pool(const PoolArgs& args, cudaStream_t stream) {
  if (args.n_seqs == 0 || args.n_cols == 0) return cudaSuccess;
  return dispatch_dtype(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (vec16_ok<T>(args.x, args.stride_x_row, args.n_cols)) {
      return launch<T, kVec16<T>>(args, stream);
    }
    return launch<T, 1>(args, stream);
  });
}

}  // namespace mlservices::cuda
