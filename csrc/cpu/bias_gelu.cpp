// Bias add + GELU, the activation of BERT's FFN input projection:
// out = GELU(x + bias), GELU(h) = h / 2 * (1 + erf(h / sqrt(2))), or with approximate="tanh"
// h / 2 * (1 + tanh(sqrt(2 / pi) * (h + 0.044715 h^3))), as torch.nn.functional.gelu.
//
// Math is float32 (float64 for float64). In float32, erf is the Abramowitz & Stegun polynomial
// that torch's own CPU GELU (oneDNN) uses, |error| < 1.5e-7, with an inline exp. bias may be in
// x's dtype or float32; it is read in the accumulator type (an [N] copy when it differs).
// bias_gelu allocates the output and never writes x; bias_gelu_ overwrites x, so a matmul output
// needs no second buffer and no separate bias pass. The work runs in bias_gelu_kernel.cpp at the
// CPU's best tier.
#include "cpu/bias_gelu.h"

#include <ATen/core/Tensor.h>

#include "checks.h"
#include "cpu/alloc.h"

namespace mlservices::cpu {

namespace {

// Checks x, bias and approximate; returns whether the tanh approximation is asked for.
bool check_args(const char* op, const at::Tensor& x, const at::Tensor& bias,
                c10::string_view approximate) {
  MLS_CHECK_ROWS(op, x);
  MLS_CHECK_FLOAT(op, x);
  MLS_CHECK_CPU(op, x);
  MLS_CHECK_ARG(op, bias.dim() == 1 && bias.size(0) == x.size(1), "bias must be [", x.size(1),
                "], got ", bias.sizes());
  MLS_CHECK_FLOAT(op, bias);
  MLS_CHECK_CPU(op, bias);
  MLS_CHECK_ARG(op, approximate == "none" || approximate == "tanh",
                "approximate must be 'none' or 'tanh', got '", approximate, "'");
  return approximate == "tanh";
}

at::Tensor bias_in_acc_type(const at::Tensor& x, const at::Tensor& bias) {
  const auto acc_dtype = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  return bias.to(acc_dtype).contiguous();
}

}  // namespace

at::Tensor bias_gelu(const at::Tensor& x, const at::Tensor& bias, c10::string_view approximate) {
  // Validate before allocating.
  const bool tanh = check_args("bias_gelu", x, bias, approximate);
  const at::Tensor bias_acc = bias_in_acc_type(x, bias);

  // Allocate and run.
  auto out = empty_output({x.size(0), x.size(1)}, x.options());
  if (x.numel() == 0) return out;
  const BiasGeluParams params{x.data_ptr(),   x.stride(0), bias_acc.data_ptr(),
                              out.data_ptr(), x.size(1),   x.size(0),
                              x.size(1),      tanh,        x.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(bias_gelu_kernel, params);
  return out;
}

void bias_gelu_(at::Tensor& x, const at::Tensor& bias, c10::string_view approximate) {
  // Validate, then run over x itself.
  const bool tanh = check_args("bias_gelu_", x, bias, approximate);
  const at::Tensor bias_acc = bias_in_acc_type(x, bias);
  if (x.numel() == 0) return;
  const BiasGeluParams params{x.data_ptr(), x.stride(0), bias_acc.data_ptr(),
                              x.data_ptr(), x.stride(0), x.size(0),
                              x.size(1),    tanh,        x.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(bias_gelu_kernel, params);
}

}  // namespace mlservices::cpu
