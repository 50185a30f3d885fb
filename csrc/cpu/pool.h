// Segment pooling over a packed [T, H] stream (see pool.cpp).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/string_view.h>

#include <cstdint>
#include <string_view>

#include "cpu/capability.h"

namespace at {
class Tensor;
}  // namespace at

namespace mlservices::cpu {

enum class PoolMode { kMean, kCls, kLast, kMax };

PoolMode parse_pool_mode(std::string_view mode);

// What the per-tier kernel needs: validated pointers, sizes and strides.
struct PoolParams {
  const void* x;  // [T, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  const int32_t* cu_seqlens;  // [B + 1]
  void* out;                  // [B, H], contiguous
  int64_t n_seqs;
  int64_t n_cols;
  PoolMode mode;
  bool normalize;
  double eps;
  at::ScalarType dtype;
};

MLS_DECLARE_CPU_KERNEL(segment_pool_kernel, const PoolParams& params)

// x: [T, H] (row-strided, last dim contiguous); cu_seqlens: [B + 1] int32 -> [B, H].
at::Tensor segment_pool(const at::Tensor& x, const at::Tensor& cu_seqlens, c10::string_view mode,
                        bool normalize, double eps);

}  // namespace mlservices::cpu
