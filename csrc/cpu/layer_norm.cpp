// LayerNorm over the last dim of a [T, H] stream with a fused residual add:
// h = x + residual; out = (h - mean(h)) / sqrt(var(h) + eps) * weight + bias.
//
// Statistics are float32 (float64 for float64) from a two-pass mean/variance over the row held
// in L1; x and residual may be row-strided and are never written. weight and bias may be in x's
// dtype or float32; they are read in the accumulator type ([H] copies when they differ). The
// work runs in layer_norm_kernel.cpp at the CPU's best tier.
#include "cpu/layer_norm.h"

#include <ATen/core/Tensor.h>

#include "checks.h"
#include "cpu/alloc.h"

namespace mlservices::cpu {

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      double eps, const std::optional<at::Tensor>& residual) {
  // Validate before allocating.
  MLS_CHECK_ROWS("layer_norm", x);
  MLS_CHECK_FLOAT("layer_norm", x);
  MLS_CHECK_CPU("layer_norm", x);
  const int64_t n_cols = x.size(1);
  for (const auto* param : {&weight, &bias}) {
    const char* name = param == &weight ? "weight" : "bias";
    MLS_CHECK_ARG("layer_norm", param->dim() == 1 && param->size(0) == n_cols, name, " must be [",
                  n_cols, "], got ", param->sizes());
    MLS_CHECK_FLOAT("layer_norm", *param);
    MLS_CHECK_CPU("layer_norm", *param);
  }
  if (residual.has_value()) {
    MLS_CHECK_ROWS("layer_norm", *residual);
    MLS_CHECK_CPU("layer_norm", *residual);
    MLS_CHECK_SAME_DTYPE("layer_norm", x, *residual);
    MLS_CHECK_ARG("layer_norm", residual->sizes() == x.sizes(), "residual must match x ", x.sizes(),
                  ", got ", residual->sizes());
  }
  MLS_CHECK_ARG("layer_norm", eps >= 0, "eps must be >= 0, got ", eps);

  // Parameters in the accumulator type ([H]: a copy only when the dtype differs).
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor weight_acc = weight.to(acc_dtype).contiguous();
  const at::Tensor bias_acc = bias.to(acc_dtype).contiguous();

  // Allocate and run.
  auto out = empty_output({x.size(0), n_cols}, x.options());
  if (x.numel() == 0) return out;
  const LayerNormParams params{x.data_ptr(),
                               x.stride(0),
                               residual.has_value() ? residual->data_ptr() : nullptr,
                               residual.has_value() ? residual->stride(0) : 0,
                               weight_acc.data_ptr(),
                               bias_acc.data_ptr(),
                               out.data_ptr(),
                               x.size(0),
                               n_cols,
                               eps,
                               x.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(layer_norm_kernel, params);
  return out;
}

}  // namespace mlservices::cpu
