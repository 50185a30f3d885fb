// Segment pooling over a packed [T, H] stream: one output row per cu_seqlens segment.
//
// mode: mean, cls (first token), last (last token), max. Accumulation is float32 for every input
// dtype (float64 for float64); with normalize=true the pooled row is L2-normalised in the same
// pass (a zero row stays zero). An empty segment gives a zero row in every mode. The work runs
// in pool_kernel.cpp at the CPU's best tier.
#include "cpu/pool.h"

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include "checks.h"

namespace mlservices::cpu {

PoolMode parse_pool_mode(std::string_view mode) {
  if (mode == "mean") return PoolMode::kMean;
  if (mode == "cls") return PoolMode::kCls;
  if (mode == "last") return PoolMode::kLast;
  if (mode == "max") return PoolMode::kMax;
  TORCH_CHECK(false, "mlservices.pool: mode must be one of mean, cls, last, max; got '", mode, "'");
}

at::Tensor segment_pool(const at::Tensor& x, const at::Tensor& cu_seqlens, c10::string_view mode,
                        bool normalize, double eps) {
  // Validate everything before allocating.
  MLS_CHECK_ROWS("pool", x);
  MLS_CHECK_FLOAT("pool", x);
  MLS_CHECK_CPU("pool", x);
  MLS_CHECK_CU_SEQLENS("pool", cu_seqlens, x.size(0));
  MLS_CHECK_CU_SEQLENS_VALUES("pool", cu_seqlens, x.size(0));
  const PoolMode pool_mode = parse_pool_mode(std::string_view(mode.data(), mode.size()));

  // Allocate the pooled rows and run the kernel.
  const int64_t n_seqs = cu_seqlens.size(0) - 1;
  auto out = at::empty({n_seqs, x.size(1)}, x.options());
  if (n_seqs == 0 || x.size(1) == 0) return out;
  const PoolParams params{x.data_ptr(),   x.stride(0), cu_seqlens.data_ptr<int32_t>(),
                          out.data_ptr(), n_seqs,      x.size(1),
                          pool_mode,      normalize,   eps,
                          x.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(segment_pool_kernel, params);
  return out;
}

}  // namespace mlservices::cpu
