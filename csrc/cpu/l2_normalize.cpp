// Row-wise L2 normalisation: out = x / max(||x||_2, eps), the norm accumulated in float32
// (float64 for float64). A zero row stays zero in every dtype. The work runs in
// l2_normalize_kernel.cpp at the CPU's best tier.
#include "cpu/l2_normalize.h"

#include <ATen/core/Tensor.h>

#include "checks.h"
#include "cpu/alloc.h"

namespace mlservices::cpu {

at::Tensor l2_normalize(const at::Tensor& x, double eps) {
  // Validate before allocating.
  MLS_CHECK_ROWS("l2_normalize", x);
  MLS_CHECK_FLOAT("l2_normalize", x);
  MLS_CHECK_CPU("l2_normalize", x);
  MLS_CHECK_ARG("l2_normalize", eps > 0, "eps must be positive, got ", eps);

  // Allocate and run.
  auto out = empty_output({x.size(0), x.size(1)}, x.options());
  if (x.numel() == 0) return out;
  const L2NormalizeParams params{x.data_ptr(), x.stride(0), out.data_ptr(), x.size(0),
                                 x.size(1),    eps,         x.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(l2_normalize_kernel, params);
  return out;
}

}  // namespace mlservices::cpu
