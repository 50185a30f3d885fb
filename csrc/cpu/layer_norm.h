// LayerNorm over the last dim of [T, H], with an optional fused residual add (see layer_norm.cpp).
#pragma once

#include <c10/core/ScalarType.h>

#include <optional>

#include "cpu/capability.h"

namespace at {
class Tensor;
}  // namespace at

namespace mlservices::cpu {

struct LayerNormParams {
  const void* x;  // [T, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  const void* residual;  // [T, H] or nullptr, rows stride_residual_row apart
  int64_t stride_residual_row;
  const void* weight;  // [H] in the accumulator type (float, or double for float64)
  const void* bias;    // [H] in the accumulator type
  void* out;           // [T, H], contiguous
  int64_t n_rows;
  int64_t n_cols;
  double eps;
  at::ScalarType dtype;
};

MLS_DECLARE_CPU_KERNEL(layer_norm_kernel, const LayerNormParams& params)

// LayerNorm(x + residual) * weight + bias, statistics in float32; x and residual are only read.
at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      double eps, const std::optional<at::Tensor>& residual);

}  // namespace mlservices::cpu
