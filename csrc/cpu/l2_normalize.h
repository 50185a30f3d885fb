// Row-wise L2 normalisation of [N, H] (see l2_normalize.cpp).
#pragma once

#include <c10/core/ScalarType.h>

#include "cpu/capability.h"

namespace at {
class Tensor;
}  // namespace at

namespace mlservices::cpu {

struct L2NormalizeParams {
  const void* x;  // [N, H], rows stride_x_row apart, last dim contiguous
  int64_t stride_x_row;
  void* out;  // [N, H], contiguous
  int64_t n_rows;
  int64_t n_cols;
  double eps;
  at::ScalarType dtype;
};

MLS_DECLARE_CPU_KERNEL(l2_normalize_kernel, const L2NormalizeParams& params)

// x: [N, H] (row-strided, last dim contiguous) -> x / max(||x||, eps) per row, [N, H].
at::Tensor l2_normalize(const at::Tensor& x, double eps);

}  // namespace mlservices::cpu
