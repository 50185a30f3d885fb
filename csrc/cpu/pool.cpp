// Segment pooling over a packed [T, H] stream: one output row per cu_seqlens segment.
//
// mode: mean, cls (first token), last (last token), max. Accumulation is float32 for every input
// dtype; with normalize=true the pooled row is L2-normalised in the same pass (a zero row stays
// zero). An empty segment gives a zero row in every mode.
#include <ATen/Parallel.h>
#include <ATen/Dispatch.h>
#include <cmath>
#include <string_view>
#include <vector>

#include "checks.h"
#include "cpu/pool.h"

namespace mlservices::cpu {

namespace {

template <typename scalar_t>
void pool_segment(const scalar_t* x, int64_t stride_x_row, int64_t begin, int64_t end,
                  int64_t n_cols, PoolMode mode, bool normalize, double eps, float* acc,
                  scalar_t* out) {
  const int64_t len = end - begin;
  if (len <= 0) {
    for (int64_t j = 0; j < n_cols; ++j) out[j] = scalar_t(0);
    return;
  }

  // Accumulate the segment in float32.
  if (mode == PoolMode::kCls || mode == PoolMode::kLast) {
    const scalar_t* row = x + (mode == PoolMode::kCls ? begin : end - 1) * stride_x_row;
    for (int64_t j = 0; j < n_cols; ++j) acc[j] = static_cast<float>(row[j]);
  } else if (mode == PoolMode::kMax) {
    const scalar_t* row = x + begin * stride_x_row;
    for (int64_t j = 0; j < n_cols; ++j) acc[j] = static_cast<float>(row[j]);
    for (int64_t t = begin + 1; t < end; ++t) {
      row = x + t * stride_x_row;
#pragma omp simd
      for (int64_t j = 0; j < n_cols; ++j) acc[j] = std::max(acc[j], static_cast<float>(row[j]));
    }
  } else {
    for (int64_t j = 0; j < n_cols; ++j) acc[j] = 0.f;
    for (int64_t t = begin; t < end; ++t) {
      const scalar_t* row = x + t * stride_x_row;
#pragma omp simd
      for (int64_t j = 0; j < n_cols; ++j) acc[j] += static_cast<float>(row[j]);
    }
    const float inv_len = 1.f / static_cast<float>(len);
    for (int64_t j = 0; j < n_cols; ++j) acc[j] *= inv_len;
  }

  // Optionally scale the row to unit length: x / max(||x||, eps).
  float scale = 1.f;
  if (normalize) {
    double sum_sq = 0.0;
    for (int64_t j = 0; j < n_cols; ++j) sum_sq += static_cast<double>(acc[j]) * acc[j];
    scale = static_cast<float>(1.0 / std::max(std::sqrt(sum_sq), eps));
  }

  // Store in the input dtype.
  for (int64_t j = 0; j < n_cols; ++j) out[j] = static_cast<scalar_t>(acc[j] * scale);
}

}  // namespace

PoolMode parse_pool_mode(std::string_view mode) {
  if (mode == "mean") return PoolMode::kMean;
  if (mode == "cls") return PoolMode::kCls;
  if (mode == "last") return PoolMode::kLast;
  if (mode == "max") return PoolMode::kMax;
  TORCH_CHECK(false, "mlservices.pool: mode must be one of mean, cls, last, max; got '", mode,
              "'");
}

at::Tensor segment_pool(const at::Tensor& x, const at::Tensor& cu_seqlens, c10::string_view mode,
                        bool normalize, double eps) {
  MLS_CHECK_ROWS("pool", x);
  MLS_CHECK_CU_SEQLENS("pool", cu_seqlens, x.size(0));
  const PoolMode pool_mode = parse_pool_mode(std::string_view(mode.data(), mode.size()));
  const int64_t n_seqs = cu_seqlens.size(0) - 1;
  const int64_t n_cols = x.size(1);
  auto out = at::empty({n_seqs, n_cols}, x.options());
  if (n_seqs == 0 || n_cols == 0) return out;
  const int32_t* cu = cu_seqlens.data_ptr<int32_t>();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "segment_pool", [&] {
    const scalar_t* x_ptr = x.data_ptr<scalar_t>();
    scalar_t* out_ptr = out.data_ptr<scalar_t>();
    const int64_t stride_x_row = x.stride(0);
    at::parallel_for(0, n_seqs, 1, [&](int64_t seq_begin, int64_t seq_end) {
      std::vector<float> acc(n_cols);
      for (int64_t s = seq_begin; s < seq_end; ++s) {
        pool_segment<scalar_t>(x_ptr, stride_x_row, cu[s], cu[s + 1], n_cols, pool_mode,
                               normalize, eps, acc.data(), out_ptr + s * n_cols);
      }
    });
  });
  return out;
}

}  // namespace mlservices::cpu
