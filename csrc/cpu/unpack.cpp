// Unpacking: segment b of a packed [T, ...] stream goes to out[b, :len], the rest of out[b] is
// zero. Each output row is written exactly once (copied or zeroed), rows copied as raw bytes so
// every dtype works; segments run in parallel.
#include "cpu/unpack.h"

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <cstring>

#include "checks.h"
#include "cpu/alloc.h"

namespace mlservices::cpu {

namespace {

// Whether the dims after the first form one contiguous block (size-1 dims may have any stride).
bool rows_contiguous(const at::Tensor& x) {
  int64_t expected = 1;
  for (int64_t d = x.dim() - 1; d >= 1; --d) {
    if (x.size(d) != 1 && x.stride(d) != expected) return false;
    expected *= x.size(d);
  }
  return true;
}

}  // namespace

at::Tensor unpack(const at::Tensor& x, const at::Tensor& cu_seqlens, int64_t max_seqlen) {
  // Validate before allocating: each row of x (dims 1..) must be one contiguous block.
  MLS_CHECK_ARG("unpack", x.dim() >= 1, "x must be at least 1-D [T, ...], got ", x.sizes());
  MLS_CHECK_CPU("unpack", x);
  MLS_CHECK_ARG("unpack", rows_contiguous(x),
                "x must have contiguous rows (dims after the first), got strides ", x.strides(),
                "; pass a row-strided view or call .contiguous()");
  MLS_CHECK_CU_SEQLENS("unpack", cu_seqlens, x.size(0));
  MLS_CHECK_CU_SEQLENS_VALUES("unpack", cu_seqlens, x.size(0));
  MLS_CHECK_ARG("unpack", max_seqlen >= 0, "max_seqlen must be >= 0, got ", max_seqlen);
  const int64_t n_seqs = cu_seqlens.size(0) - 1;
  const int32_t* cu = cu_seqlens.data_ptr<int32_t>();
  for (int64_t b = 0; b < n_seqs; ++b) {
    MLS_CHECK_ARG("unpack", cu[b + 1] - cu[b] <= max_seqlen, "max_seqlen=", max_seqlen,
                  " but segment ", b, " has ", cu[b + 1] - cu[b],
                  " rows; pass the max_seqlen that pack() returned");
  }

  // Allocate [B, max_seqlen, ...].
  std::vector<int64_t> out_sizes{n_seqs, max_seqlen};
  out_sizes.insert(out_sizes.end(), x.sizes().begin() + 1, x.sizes().end());
  auto out = empty_output(out_sizes, x.options());
  if (out.numel() == 0) return out;

  // Copy each segment's rows, zero the padding rows after them.
  int64_t row_bytes = x.element_size();
  for (int64_t d = 1; d < x.dim(); ++d) row_bytes *= x.size(d);
  const int64_t stride_x_row_bytes = x.stride(0) * x.element_size();
  const char* src = static_cast<const char*>(x.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  at::parallel_for(0, n_seqs, 1, [&](int64_t seq_begin, int64_t seq_end) {
    for (int64_t b = seq_begin; b < seq_end; ++b) {
      const int64_t len = cu[b + 1] - cu[b];
      char* seq_dst = dst + b * max_seqlen * row_bytes;
      if (stride_x_row_bytes == row_bytes) {
        std::memcpy(seq_dst, src + cu[b] * row_bytes, len * row_bytes);
      } else {
        for (int64_t t = 0; t < len; ++t) {
          std::memcpy(seq_dst + t * row_bytes, src + (cu[b] + t) * stride_x_row_bytes, row_bytes);
        }
      }
      std::memset(seq_dst + len * row_bytes, 0, (max_seqlen - len) * row_bytes);
    }
  });
  return out;
}

}  // namespace mlservices::cpu
