// Variable-length bidirectional attention over a packed stream: for every segment b of
// cu_seqlens and every head, out = softmax(q_b k_b^T * scale) v_b, so no token attends outside
// its segment and no padding is ever computed. Softmax and both products run in float32
// (float64 for float64). q, k and v are read through their strides (the views of a fused QKV
// projection are accepted without a copy). The work runs in varlen_attention_kernel.cpp at the
// CPU's best tier.
#include "cpu/varlen_attention.h"

#include <ATen/core/Tensor.h>

#include "checks.h"
#include "cpu/alloc.h"

namespace mlservices::cpu {

at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale) {
  // Validate before allocating.
  MLS_CHECK_HEADS("varlen_attention", q);
  MLS_CHECK_HEADS("varlen_attention", k);
  MLS_CHECK_HEADS("varlen_attention", v);
  MLS_CHECK_FLOAT("varlen_attention", q);
  MLS_CHECK_SAME_DTYPE("varlen_attention", q, k);
  MLS_CHECK_SAME_DTYPE("varlen_attention", q, v);
  MLS_CHECK_CPU("varlen_attention", q);
  MLS_CHECK_CPU("varlen_attention", k);
  MLS_CHECK_CPU("varlen_attention", v);
  MLS_CHECK_ARG("varlen_attention", k.sizes() == q.sizes() && v.sizes() == q.sizes(),
                "q, k, v must have one shape, got ", q.sizes(), ", ", k.sizes(), ", ", v.sizes());
  MLS_CHECK_CU_SEQLENS("varlen_attention", cu_seqlens, q.size(0));
  MLS_CHECK_CU_SEQLENS_VALUES("varlen_attention", cu_seqlens, q.size(0));
  const int64_t n_seqs = cu_seqlens.size(0) - 1;
  const int32_t* cu = cu_seqlens.data_ptr<int32_t>();
  int64_t longest = 0;
  for (int64_t b = 0; b < n_seqs; ++b) longest = std::max<int64_t>(longest, cu[b + 1] - cu[b]);
  MLS_CHECK_ARG("varlen_attention", longest <= max_seqlen, "max_seqlen=", max_seqlen,
                " but a segment has ", longest,
                " tokens; pass the max_seqlen that pack() returned");

  // Allocate the output and run.
  auto out = empty_output(q.sizes(), q.options());
  if (out.numel() == 0) return out;
  const AttentionParams params{q.data_ptr(),   k.data_ptr(), v.data_ptr(), out.data_ptr(),
                               q.stride(0),    q.stride(1),  k.stride(0),  k.stride(1),
                               v.stride(0),    v.stride(1),  cu,           n_seqs,
                               q.size(1),      q.size(2),    longest,      scale,
                               q.scalar_type()};
  MLS_DISPATCH_CPU_KERNEL(varlen_attention_kernel, params);
  return out;
}

}  // namespace mlservices::cpu
