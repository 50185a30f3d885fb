// Packed [T, ...] back to padded [B, max_seqlen, ...] (see unpack.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace mlservices::cpu {

// x: [T, ...] (rows strided, each row contiguous); cu_seqlens: [B + 1] int32.
at::Tensor unpack(const at::Tensor& x, const at::Tensor& cu_seqlens, int64_t max_seqlen);

}  // namespace mlservices::cpu
