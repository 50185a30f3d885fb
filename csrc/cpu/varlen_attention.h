// Bidirectional attention within each segment of a packed [T, heads, head_dim] stream
// (see varlen_attention.cpp).
#pragma once

#include <c10/core/ScalarType.h>

#include "cpu/capability.h"

namespace at {
class Tensor;
}  // namespace at

namespace mlservices::cpu {

struct AttentionParams {
  const void* q;  // [T, heads, head_dim], strides (stride_q_row, stride_q_head, 1)
  const void* k;  // [T, heads, head_dim], strides (stride_k_row, stride_k_head, 1)
  const void* v;  // [T, heads, head_dim], strides (stride_v_row, stride_v_head, 1)
  void* out;      // [T, heads, head_dim], contiguous
  int64_t stride_q_row, stride_q_head;
  int64_t stride_k_row, stride_k_head;
  int64_t stride_v_row, stride_v_head;
  const int32_t* cu_seqlens;  // [B + 1]
  int64_t n_seqs;
  int64_t n_heads;
  int64_t head_dim;
  int64_t max_seqlen;  // the longest segment, measured from cu_seqlens
  double scale;
  at::ScalarType dtype;
};

MLS_DECLARE_CPU_KERNEL(varlen_attention_kernel, const AttentionParams& params)

// softmax(q k^T * scale) v per segment and head; q, k, v may be strided views (e.g. of one fused
// QKV projection), last dim contiguous. -> [T, heads, head_dim] in q's dtype.
at::Tensor varlen_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            const at::Tensor& cu_seqlens, int64_t max_seqlen, double scale);

}  // namespace mlservices::cpu
