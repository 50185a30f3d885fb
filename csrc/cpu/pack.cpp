// Packing: keep the tokens whose attention_mask is nonzero, row by row, in one [T] stream.
//
// cu_seqlens[b] is where row b's tokens start; indices are the tokens' positions in the
// flattened [B * L] input (any padding side). Two parallel passes over the rows: count the
// real tokens, then (after a prefix sum) gather them. Both inputs may be strided.
#include "cpu/pack.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <limits>

#include "checks.h"

namespace mlservices::cpu {

namespace {

// Real tokens per row of the mask.
template <typename mask_t>
void count_rows(const at::Tensor& mask, int32_t* counts) {
  const mask_t* m = mask.data_ptr<mask_t>();
  const int64_t n_cols = mask.size(1);
  const int64_t stride_row = mask.stride(0);
  const int64_t stride_col = mask.stride(1);
  at::parallel_for(0, mask.size(0), 64, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t b = row_begin; b < row_end; ++b) {
      int32_t n = 0;
      for (int64_t l = 0; l < n_cols; ++l) n += m[b * stride_row + l * stride_col] != mask_t(0);
      counts[b] = n;
    }
  });
}

// Gathers the real tokens of every row to its cu_seqlens offset (ids copied as raw words).
template <typename mask_t, typename word_t>
void gather_rows(const at::Tensor& mask, const at::Tensor& ids, const int32_t* cu, word_t* packed,
                 int64_t* indices) {
  const mask_t* m = mask.data_ptr<mask_t>();
  const word_t* id = static_cast<const word_t*>(ids.data_ptr());
  const int64_t n_cols = mask.size(1);
  at::parallel_for(0, mask.size(0), 64, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t b = row_begin; b < row_end; ++b) {
      int64_t t = cu[b];
      for (int64_t l = 0; l < n_cols; ++l) {
        if (m[b * mask.stride(0) + l * mask.stride(1)] == mask_t(0)) continue;
        packed[t] = id[b * ids.stride(0) + l * ids.stride(1)];
        indices[t] = b * n_cols + l;
        ++t;
      }
    }
  });
}

template <typename mask_t>
void gather_rows_any_width(const at::Tensor& mask, const at::Tensor& ids, const int32_t* cu,
                           at::Tensor& packed, int64_t* indices) {
  switch (ids.element_size()) {
    case 1:
      return gather_rows<mask_t>(mask, ids, cu, static_cast<uint8_t*>(packed.data_ptr()), indices);
    case 2:
      return gather_rows<mask_t>(mask, ids, cu, static_cast<uint16_t*>(packed.data_ptr()), indices);
    case 4:
      return gather_rows<mask_t>(mask, ids, cu, static_cast<uint32_t*>(packed.data_ptr()), indices);
    default:
      return gather_rows<mask_t>(mask, ids, cu, static_cast<uint64_t*>(packed.data_ptr()), indices);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> pack(const at::Tensor& input_ids,
                                                    const at::Tensor& attention_mask) {
  // Validate before allocating.
  MLS_CHECK_ARG("pack", input_ids.dim() == 2, "input_ids must be 2-D [B, L], got ",
                input_ids.sizes());
  MLS_CHECK_ARG("pack", attention_mask.sizes() == input_ids.sizes(),
                "attention_mask must match input_ids ", input_ids.sizes(), ", got ",
                attention_mask.sizes());
  MLS_CHECK_CPU("pack", input_ids);
  MLS_CHECK_CPU("pack", attention_mask);
  MLS_CHECK_ARG("pack", !input_ids.is_complex() && input_ids.element_size() <= 8,
                "input_ids must be a real dtype, got ", input_ids.scalar_type());
  MLS_CHECK_ARG("pack", input_ids.numel() <= std::numeric_limits<int32_t>::max(),
                "at most 2^31 - 1 tokens fit int32 cu_seqlens, got ", input_ids.numel());
  const int64_t n_rows = input_ids.size(0);

  // Count each row's real tokens; cu_seqlens is their prefix sum.
  auto cu_seqlens = at::empty({n_rows + 1}, input_ids.options().dtype(at::kInt));
  int32_t* cu = cu_seqlens.data_ptr<int32_t>();
  cu[0] = 0;
  AT_DISPATCH_ALL_TYPES_AND3(at::kBool, at::kHalf, at::kBFloat16, attention_mask.scalar_type(),
                             "pack", [&] { count_rows<scalar_t>(attention_mask, cu + 1); });
  for (int64_t b = 0; b < n_rows; ++b) cu[b + 1] += cu[b];

  // Gather the real tokens and their flat positions.
  const int64_t n_tokens = cu[n_rows];
  auto packed = at::empty({n_tokens}, input_ids.options());
  auto indices = at::empty({n_tokens}, input_ids.options().dtype(at::kLong));
  if (n_tokens > 0) {
    AT_DISPATCH_ALL_TYPES_AND3(
        at::kBool, at::kHalf, at::kBFloat16, attention_mask.scalar_type(), "pack", [&] {
          gather_rows_any_width<scalar_t>(attention_mask, input_ids, cu, packed,
                                          indices.data_ptr<int64_t>());
        });
  }
  return {packed, cu_seqlens, indices};
}

}  // namespace mlservices::cpu
