#pragma once

#include <ATen/ATen.h>
#include <string_view>

namespace mlservices::cpu {

enum class PoolMode { kMean, kCls, kLast, kMax };

PoolMode parse_pool_mode(std::string_view mode);

// x: [T, H] (row-strided, last dim contiguous); cu_seqlens: [B + 1] int32 -> [B, H].
at::Tensor segment_pool(const at::Tensor& x, const at::Tensor& cu_seqlens, c10::string_view mode,
                        bool normalize, double eps);

}  // namespace mlservices::cpu
