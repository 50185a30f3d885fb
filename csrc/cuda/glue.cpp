// Torch glue of the CUDA kernels: argument checks, allocation, the current stream, and the
// TORCH_LIBRARY_IMPL(mlservices, CUDA) registrations. Built only with MLSERVICES_WITH_CUDA.
//
// cu_seqlens values are not read here (that would synchronise with the device): the public API
// (mlservices.ops) validates them; the kernels never write outside their outputs for any
// non-decreasing cu_seqlens ending at T.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "checks.h"
#include "cpu/pool.h"
#include "cuda/launchers.h"

namespace mlservices::cuda {

namespace {

DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    case at::kDouble:
      return DType::kFloat64;
    default:
      return DType::kFloat32;
  }
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

void check_launch(cudaError_t err, const char* op) {
  TORCH_CHECK(err == cudaSuccess, "mlservices.", op,
              ": CUDA launch failed: ", cudaGetErrorString(err));
}

at::Tensor segment_pool(const at::Tensor& x, const at::Tensor& cu_seqlens, c10::string_view mode,
                        bool normalize, double eps) {
  // Validate before allocating.
  MLS_CHECK_ROWS("pool", x);
  MLS_CHECK_FLOAT("pool", x);
  MLS_CHECK_CUDA("pool", x);
  MLS_CHECK_SAME_DEVICE("pool", x, cu_seqlens);
  MLS_CHECK_CU_SEQLENS("pool", cu_seqlens, x.size(0));
  const auto pool_mode =
      static_cast<PoolMode>(cpu::parse_pool_mode(std::string_view(mode.data(), mode.size())));

  // Allocate and launch on the current stream.
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty({cu_seqlens.size(0) - 1, x.size(1)}, x.options());
  const PoolArgs args{x.data_ptr(),   x.stride(0), cu_seqlens.data_ptr<int32_t>(),
                      out.data_ptr(), out.size(0), x.size(1),
                      pool_mode,      normalize,   static_cast<float>(eps),
                      dtype_of(x)};
  check_launch(launch_segment_pool(args, current_stream()), "pool");
  return out;
}

at::Tensor l2_normalize(const at::Tensor& x, double eps) {
  MLS_CHECK_ROWS("l2_normalize", x);
  MLS_CHECK_FLOAT("l2_normalize", x);
  MLS_CHECK_CUDA("l2_normalize", x);
  MLS_CHECK_ARG("l2_normalize", eps > 0, "eps must be positive, got ", eps);

  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty({x.size(0), x.size(1)}, x.options());
  const L2NormalizeArgs args{x.data_ptr(), x.stride(0), out.data_ptr(),
                             x.size(0),    x.size(1),   static_cast<float>(eps),
                             dtype_of(x)};
  check_launch(launch_l2_normalize(args, current_stream()), "l2_normalize");
  return out;
}

at::Tensor layer_norm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                      double eps, const std::optional<at::Tensor>& residual) {
  // Validate before allocating: weight and bias in x's dtype or float32, contiguous [H].
  MLS_CHECK_ROWS("layer_norm", x);
  MLS_CHECK_FLOAT("layer_norm", x);
  MLS_CHECK_CUDA("layer_norm", x);
  const int64_t n_cols = x.size(1);
  MLS_CHECK_SAME_DTYPE("layer_norm", weight, bias);
  for (const auto* param : {&weight, &bias}) {
    const char* name = param == &weight ? "weight" : "bias";
    MLS_CHECK_ARG("layer_norm", param->dim() == 1 && param->size(0) == n_cols, name, " must be [",
                  n_cols, "], got ", param->sizes());
    MLS_CHECK_ARG("layer_norm", param->is_contiguous(), name, " must be contiguous");
    MLS_CHECK_ARG(
        "layer_norm", param->scalar_type() == x.scalar_type() || param->scalar_type() == at::kFloat,
        name, " must be float32 or x's dtype ", x.scalar_type(), ", got ", param->scalar_type());
    MLS_CHECK_SAME_DEVICE("layer_norm", x, *param);
  }
  if (residual.has_value()) {
    MLS_CHECK_ROWS("layer_norm", *residual);
    MLS_CHECK_SAME_DTYPE("layer_norm", x, *residual);
    MLS_CHECK_SAME_DEVICE("layer_norm", x, *residual);
    MLS_CHECK_ARG("layer_norm", residual->sizes() == x.sizes(), "residual must match x ", x.sizes(),
                  ", got ", residual->sizes());
  }
  MLS_CHECK_ARG("layer_norm", eps >= 0, "eps must be >= 0, got ", eps);

  const c10::cuda::CUDAGuard guard(x.device());
  auto out = at::empty({x.size(0), n_cols}, x.options());
  const LayerNormArgs args{x.data_ptr(),
                           x.stride(0),
                           residual.has_value() ? residual->data_ptr() : nullptr,
                           residual.has_value() ? residual->stride(0) : 0,
                           weight.data_ptr(),
                           bias.data_ptr(),
                           dtype_of(weight),
                           out.data_ptr(),
                           x.size(0),
                           n_cols,
                           static_cast<float>(eps),
                           dtype_of(x)};
  check_launch(launch_layer_norm(args, current_stream()), "layer_norm");
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> pack(const at::Tensor& input_ids,
                                                    const at::Tensor& attention_mask) {
  MLS_CHECK_ARG("pack", input_ids.dim() == 2, "input_ids must be 2-D [B, L], got ",
                input_ids.sizes());
  MLS_CHECK_ARG("pack", attention_mask.sizes() == input_ids.sizes(),
                "attention_mask must match input_ids ", input_ids.sizes(), ", got ",
                attention_mask.sizes());
  MLS_CHECK_CUDA("pack", input_ids);
  MLS_CHECK_SAME_DEVICE("pack", input_ids, attention_mask);
  MLS_CHECK_ARG("pack", !input_ids.is_complex() && input_ids.element_size() <= 8,
                "input_ids must be a real dtype, got ", input_ids.scalar_type());
  MLS_CHECK_ARG("pack", !attention_mask.is_complex() && attention_mask.element_size() <= 8,
                "attention_mask must be a real dtype, got ", attention_mask.scalar_type());
  MLS_CHECK_ARG("pack", input_ids.numel() <= std::numeric_limits<int32_t>::max(),
                "at most 2^31 - 1 tokens fit int32 cu_seqlens, got ", input_ids.numel());

  // Offsets first; the token count sizes the outputs (one device-to-host read).
  const c10::cuda::CUDAGuard guard(input_ids.device());
  const int64_t n_rows = input_ids.size(0);
  auto cu_seqlens = at::empty({n_rows + 1}, input_ids.options().dtype(at::kInt));
  PackArgs args{input_ids.data_ptr(),
                input_ids.stride(0),
                input_ids.stride(1),
                static_cast<int>(input_ids.element_size()),
                attention_mask.data_ptr(),
                attention_mask.stride(0),
                attention_mask.stride(1),
                static_cast<int>(attention_mask.element_size()),
                n_rows,
                input_ids.size(1),
                cu_seqlens.data_ptr<int32_t>(),
                nullptr,
                nullptr};
  check_launch(launch_pack_offsets(args, current_stream()), "pack");
  const int64_t n_tokens = cu_seqlens[n_rows].item<int32_t>();

  // Gather the real tokens and their flat positions.
  auto packed = at::empty({n_tokens}, input_ids.options());
  auto indices = at::empty({n_tokens}, input_ids.options().dtype(at::kLong));
  args.packed = packed.data_ptr();
  args.indices = indices.data_ptr<int64_t>();
  if (n_tokens > 0) check_launch(launch_pack_gather(args, current_stream()), "pack");
  return {packed, cu_seqlens, indices};
}

at::Tensor unpack(const at::Tensor& x, const at::Tensor& cu_seqlens, int64_t max_seqlen) {
  MLS_CHECK_ARG("unpack", x.dim() >= 1, "x must be at least 1-D [T, ...], got ", x.sizes());
  MLS_CHECK_CUDA("unpack", x);
  MLS_CHECK_SAME_DEVICE("unpack", x, cu_seqlens);
  MLS_CHECK_CU_SEQLENS("unpack", cu_seqlens, x.size(0));
  MLS_CHECK_ARG("unpack", max_seqlen >= 0, "max_seqlen must be >= 0, got ", max_seqlen);
  int64_t expected = 1;
  for (int64_t d = x.dim() - 1; d >= 1; --d) {
    MLS_CHECK_ARG("unpack", x.size(d) == 1 || x.stride(d) == expected,
                  "x must have contiguous rows (dims after the first), got strides ", x.strides(),
                  "; pass a row-strided view or call .contiguous()");
    expected *= x.size(d);
  }

  const c10::cuda::CUDAGuard guard(x.device());
  std::vector<int64_t> out_sizes{cu_seqlens.size(0) - 1, max_seqlen};
  out_sizes.insert(out_sizes.end(), x.sizes().begin() + 1, x.sizes().end());
  auto out = at::empty(out_sizes, x.options());
  const UnpackArgs args{x.data_ptr(),
                        x.stride(0) * static_cast<int64_t>(x.element_size()),
                        expected * static_cast<int64_t>(x.element_size()),
                        cu_seqlens.data_ptr<int32_t>(),
                        out.data_ptr(),
                        out.size(0),
                        max_seqlen};
  check_launch(launch_unpack(args, current_stream()), "unpack");
  return out;
}

}  // namespace

}  // namespace mlservices::cuda

// TODO: varlen_attention has no CUDA kernel here (the Triton backend serves it on GPUs); a
// flash-style CUDA kernel would need a GPU in CI to validate.
TORCH_LIBRARY_IMPL(mlservices, CUDA, m) {
  m.impl("pack", &mlservices::cuda::pack);
  m.impl("unpack", &mlservices::cuda::unpack);
  m.impl("segment_pool", &mlservices::cuda::segment_pool);
  m.impl("l2_normalize", &mlservices::cuda::l2_normalize);
  m.impl("layer_norm", &mlservices::cuda::layer_norm);
}
