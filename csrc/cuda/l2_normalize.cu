// Row-wise L2 normalisation on the GPU: out = x / max(||x||, eps), one block per row.
//
// The block reads its row in 16-byte vectors (where the rows allow) into registers when the
// row fits kMaxVecsPerThread vectors per thread, so the row is read from memory once; the norm
// is a float32 block reduction. A zero row stays zero.
#include <algorithm>

#include "cuda/common.cuh"

namespace mlservices::cuda {

namespace {

constexpr int kMaxVecsPerThread = 4;

template <typename T, int VEC>
__global__ void l2_normalize_kernel(const T* __restrict__ x,  // [N, H]
                                    int64_t stride_x_row,
                                    T* __restrict__ out,  // [N, H]
                                    int64_t n_cols, float eps) {
  using A = typename Acc<T>::type;
  __shared__ A scratch[kWarpSize];
  const int64_t row = blockIdx.x;
  const T* x_row = x + row * stride_x_row;
  T* out_row = out + row * n_cols;
  const int64_t n_vecs = n_cols / VEC;

  // Load up to kMaxVecsPerThread vectors into registers, summing squares in float32.
  A vals[kMaxVecsPerThread][VEC];
  A sum_sq = A(0);
#pragma unroll
  for (int k = 0; k < kMaxVecsPerThread; ++k) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(k) * blockDim.x;
    if (c < n_vecs) {
      const Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(x_row + c * VEC);
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        vals[k][i] = to_acc(p.v[i]);
        sum_sq += vals[k][i] * vals[k][i];
      }
    }
  }
  // Rows too long for registers: the rest is read twice (the second time from L2).
  for (int64_t c = threadIdx.x + kMaxVecsPerThread * blockDim.x; c < n_vecs; c += blockDim.x) {
    const Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(x_row + c * VEC);
#pragma unroll
    for (int i = 0; i < VEC; ++i) sum_sq += to_acc(p.v[i]) * to_acc(p.v[i]);
  }

  // Scale = 1 / max(norm, eps): finite, so a zero row stays zero.
  const A norm = sqrt(block_sum(sum_sq, scratch));
  const A scale = A(1) / max(norm, static_cast<A>(eps));

  // Store.
#pragma unroll
  for (int k = 0; k < kMaxVecsPerThread; ++k) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(k) * blockDim.x;
    if (c < n_vecs) {
      Pack<T, VEC> p;
#pragma unroll
      for (int i = 0; i < VEC; ++i) p.v[i] = from_acc<T>(vals[k][i] * scale);
      *reinterpret_cast<Pack<T, VEC>*>(out_row + c * VEC) = p;
    }
  }
  for (int64_t c = threadIdx.x + kMaxVecsPerThread * blockDim.x; c < n_vecs; c += blockDim.x) {
    const Pack<T, VEC> p = *reinterpret_cast<const Pack<T, VEC>*>(x_row + c * VEC);
    Pack<T, VEC> q;
#pragma unroll
    for (int i = 0; i < VEC; ++i) q.v[i] = from_acc<T>(to_acc(p.v[i]) * scale);
    *reinterpret_cast<Pack<T, VEC>*>(out_row + c * VEC) = q;
  }
}

template <typename T, int VEC>
cudaError_t launch(const L2NormalizeArgs& a, cudaStream_t stream) {
  // Enough threads that the row fits in registers, in whole warps, 64 to 1024.
  const int64_t n_vecs = a.n_cols / VEC;
  const int64_t wanted = (n_vecs + kMaxVecsPerThread - 1) / kMaxVecsPerThread;
  const int threads = static_cast<int>(std::clamp<int64_t>((wanted + 31) / 32 * 32, 64, 1024));
  l2_normalize_kernel<T, VEC><<<a.n_rows, threads, 0, stream>>>(
      static_cast<const T*>(a.x), a.stride_x_row, static_cast<T*>(a.out), a.n_cols, a.eps);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_l2_normalize(const L2NormalizeArgs& args, cudaStream_t stream) {
  if (args.n_rows == 0 || args.n_cols == 0) return cudaSuccess;
  return dispatch_dtype(args.dtype, [&](auto tag) {
    using T = decltype(tag);
    if (vec16_ok<T>(args.x, args.stride_x_row, args.n_cols)) {
      return launch<T, kVec16<T>>(args, stream);
    }
    return launch<T, 1>(args, stream);
  });
}

}  // namespace mlservices::cuda
