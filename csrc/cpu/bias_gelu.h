// Bias add + GELU over the rows of [T, N], out of place or in place (see bias_gelu.cpp).
#pragma once

#include <c10/core/ScalarType.h>
#include <c10/util/string_view.h>

#include "cpu/capability.h"

namespace at {
class Tensor;
}  // namespace at

namespace mlservices::cpu {

struct BiasGeluParams {
  const void* x;  // [T, N], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  const void* bias;  // [N] in the accumulator type (float, or double for float64)
  void* out;         // [T, N], rows stride_out_row apart; may be x itself (in place)
  int64_t stride_out_row;
  int64_t n_rows;
  int64_t n_cols;
  bool tanh;  // the tanh approximation instead of erf
  at::ScalarType dtype;
};

MLS_DECLARE_CPU_KERNEL(bias_gelu_kernel, const BiasGeluParams& params)

// GELU(x + bias) as a new [T, N] tensor, computed in float32 (float64 for float64).
at::Tensor bias_gelu(const at::Tensor& x, const at::Tensor& bias, c10::string_view approximate);

// GELU(x + bias) written over x (row-strided x allowed); for buffers the caller owns.
void bias_gelu_(at::Tensor& x, const at::Tensor& bias, c10::string_view approximate);

}  // namespace mlservices::cpu
