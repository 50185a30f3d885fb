// Launchers of the CUDA kernels in csrc/cuda/*.cu: raw pointers, sizes, strides and a stream.
//
// Nothing here includes torch, so the .cu files compile with plain nvcc in about a second; the
// torch glue (checks, allocation, the current stream) is csrc/cuda/glue.cpp. Strides are in
// elements. Every launcher enqueues its kernels and returns cudaGetLastError().
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mlservices::cuda {

enum class DType { kFloat32, kFloat16, kBFloat16, kFloat64 };

enum class PoolMode { kMean, kCls, kLast, kMax };

struct PoolArgs {
  const void* x;  // [T, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  const int32_t* cu_seqlens;  // [B + 1], on the device
  void* out;                  // [B, H], contiguous
  int64_t n_seqs;
  int64_t n_cols;
  PoolMode mode;
  bool normalize;
  float eps;
  DType dtype;
};
cudaError_t launch_segment_pool(const PoolArgs& args, cudaStream_t stream);

struct L2NormalizeArgs {
  const void* x;  // [N, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  void* out;  // [N, H], contiguous
  int64_t n_rows;
  int64_t n_cols;
  float eps;
  DType dtype;
};
cudaError_t launch_l2_normalize(const L2NormalizeArgs& args, cudaStream_t stream);

struct LayerNormArgs {
  const void* x;  // [T, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  const void* residual;  // [T, H] or nullptr, rows stride_residual_row apart
  int64_t stride_residual_row;
  const void* weight;  // [H], contiguous, in weight_dtype
  const void* bias;    // [H], contiguous, in weight_dtype
  DType weight_dtype;  // x's dtype or float32
  void* out;           // [T, H], contiguous
  int64_t n_rows;
  int64_t n_cols;
  float eps;
  DType dtype;
};
cudaError_t launch_layer_norm(const LayerNormArgs& args, cudaStream_t stream);

// Packing runs in two launches around one device-to-host read of the token count.
struct PackArgs {
  const void* input_ids;  // [B, L], strides (stride_ids_row, stride_ids_col)
  int64_t stride_ids_row, stride_ids_col;
  int ids_bytes;               // element size of input_ids: 1, 2, 4 or 8
  const void* attention_mask;  // [B, L], nonzero where real; strides (stride_mask_row, _col)
  int64_t stride_mask_row, stride_mask_col;
  int mask_bytes;  // element size of the mask: 1, 2, 4 or 8 (nonzero bits = real)
  int64_t n_rows;
  int64_t n_cols;
  int32_t* cu_seqlens;  // [B + 1], written by launch_pack_offsets
  void* packed;         // [T], written by launch_pack_gather
  int64_t* indices;     // [T], written by launch_pack_gather
};
// Counts each row's real tokens and writes cu_seqlens (cu_seqlens[B] is the token count T).
cudaError_t launch_pack_offsets(const PackArgs& args, cudaStream_t stream);
// Gathers the real tokens and their flat positions (needs packed and indices of size T).
cudaError_t launch_pack_gather(const PackArgs& args, cudaStream_t stream);

struct UnpackArgs {
  const void* x;  // [T, row_bytes], rows stride_x_row_bytes apart
  int64_t stride_x_row_bytes;
  int64_t row_bytes;
  const int32_t* cu_seqlens;  // [B + 1]
  void* out;                  // [B, max_seqlen, row_bytes], contiguous
  int64_t n_seqs;
  int64_t max_seqlen;
};
cudaError_t launch_unpack(const UnpackArgs& args, cudaStream_t stream);

}  // namespace mlservices::cuda
