// Padded [B, L] token ids to one packed stream of real tokens (see pack.cpp).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace mlservices::cpu {

// -> (packed [T] in input_ids' dtype, cu_seqlens [B + 1] int32, indices [T] int64).
std::tuple<at::Tensor, at::Tensor, at::Tensor> pack(const at::Tensor& input_ids,
                                                    const at::Tensor& attention_mask);

}  // namespace mlservices::cpu
