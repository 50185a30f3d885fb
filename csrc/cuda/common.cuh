// Device helpers shared by the CUDA kernels: dtype conversion, vector access, block reductions.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "cuda/launchers.h"

namespace mlservices::cuda {

constexpr int kWarpSize = 32;

// Float32 (float64 for double) accumulation type of each storage type.
template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_acc(float v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <typename T>
__device__ __forceinline__ T from_acc(double v) {
  return static_cast<T>(v);
}

// N elements that move as one aligned load or store (16 bytes when N * sizeof(T) == 16).
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Elements per 16-byte vector for T.
template <typename T>
constexpr int kVec16 = 16 / sizeof(T);

// Whether rows of n_cols elements at ptr, stride_row elements apart, allow 16-byte vectors.
template <typename T>
inline bool vec16_ok(const void* ptr, int64_t stride_row, int64_t n_cols) {
  return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && (stride_row * sizeof(T)) % 16 == 0 &&
         (n_cols * sizeof(T)) % 16 == 0;
}

// Sum over the block (every thread gets the result); scratch holds kWarpSize values.
template <typename A>
__device__ __forceinline__ A block_sum(A v, A* scratch) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int n_warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = lane < n_warps ? scratch[lane] : A(0);
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// Calls fn(T{}) with a value of dtype's storage type T, as a type tag.
template <typename Fn>
inline cudaError_t dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32:
      return fn(float{});
    case DType::kFloat16:
      return fn(__half{});
    case DType::kBFloat16:
      return fn(__nv_bfloat16{});
    case DType::kFloat64:
      return fn(double{});
  }
  return cudaErrorInvalidValue;
}

inline unsigned int ceil_div(int64_t a, int64_t b) {
  return static_cast<unsigned int>((a + b - 1) / b);
}

}  // namespace mlservices::cuda
