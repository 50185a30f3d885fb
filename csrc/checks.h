// Argument checks shared by the CPU and CUDA glue: every message names the op and the argument.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#define MLS_CHECK_ARG(op, cond, ...) TORCH_CHECK((cond), "mlservices.", op, ": ", __VA_ARGS__)

// A [rows, cols] view whose last dimension is contiguous (rows may be strided).
#define MLS_CHECK_ROWS(op, t)                                                           \
  MLS_CHECK_ARG(op, (t).dim() == 2, #t " must be 2-D [rows, cols], got ", (t).sizes()); \
  MLS_CHECK_ARG(op, (t).size(1) <= 1 || (t).stride(1) == 1,                             \
                #t " must have a contiguous last dimension (stride 1), got strides ",   \
                (t).strides(), "; pass a row-strided view or call .contiguous()")

// A [rows, heads, head_dim] view whose last dimension is contiguous.
#define MLS_CHECK_HEADS(op, t)                                                         \
  MLS_CHECK_ARG(op, (t).dim() == 3, #t " must be 3-D [tokens, heads, head_dim], got ", \
                (t).sizes());                                                          \
  MLS_CHECK_ARG(op, (t).size(2) <= 1 || (t).stride(2) == 1,                            \
                #t " must have a contiguous last dimension (stride 1), got strides ",  \
                (t).strides(), "; pass a strided view or call .contiguous()")

#define MLS_CHECK_FLOAT(op, t)                                                              \
  MLS_CHECK_ARG(op,                                                                         \
                (t).scalar_type() == at::kFloat || (t).scalar_type() == at::kHalf ||        \
                    (t).scalar_type() == at::kBFloat16 || (t).scalar_type() == at::kDouble, \
                #t " must be float32, float16, bfloat16 or float64, got ", (t).scalar_type())

#define MLS_CHECK_SAME_DTYPE(op, a, b)                                                 \
  MLS_CHECK_ARG(op, (a).scalar_type() == (b).scalar_type(),                            \
                #b " must have the dtype of " #a ", got ", (b).scalar_type(), " and ", \
                (a).scalar_type())

#define MLS_CHECK_CPU(op, t) \
  MLS_CHECK_ARG(op, (t).device().is_cpu(), #t " must be a CPU tensor, got ", (t).device())

#define MLS_CHECK_CUDA(op, t) \
  MLS_CHECK_ARG(op, (t).is_cuda(), #t " must be a CUDA tensor, got ", (t).device())

#define MLS_CHECK_SAME_DEVICE(op, a, b)                                                            \
  MLS_CHECK_ARG(op, (a).device() == (b).device(), #b " must be on " #a "'s device ", (a).device(), \
                ", got ", (b).device())

#define MLS_CHECK_CU_SEQLENS(op, cu, n_rows)                                                    \
  MLS_CHECK_ARG(op, (cu).scalar_type() == at::kInt, #cu " must be int32, got ",                 \
                (cu).scalar_type());                                                            \
  MLS_CHECK_ARG(op, (cu).dim() == 1 && (cu).size(0) >= 1, #cu " must be 1-D [batch + 1], got ", \
                (cu).sizes());                                                                  \
  MLS_CHECK_ARG(op, (cu).is_contiguous(), #cu " must be contiguous")

// Reads a CPU cu_seqlens: starts at 0, never decreases, ends at n_rows. O(batch).
#define MLS_CHECK_CU_SEQLENS_VALUES(op, cu, n_rows)                                              \
  do {                                                                                           \
    MLS_CHECK_CPU(op, cu);                                                                       \
    const int32_t* cu_values_ = (cu).data_ptr<int32_t>();                                        \
    const int64_t cu_last_ = (cu).size(0) - 1;                                                   \
    MLS_CHECK_ARG(op, cu_values_[0] == 0, #cu " must start at 0, got ", cu_values_[0]);          \
    for (int64_t i_ = 1; i_ <= cu_last_; ++i_) {                                                 \
      MLS_CHECK_ARG(op, cu_values_[i_] >= cu_values_[i_ - 1],                                    \
                    #cu " must be non-decreasing, but " #cu "[", i_, "]=", cu_values_[i_],       \
                    " < " #cu "[", i_ - 1, "]=", cu_values_[i_ - 1]);                            \
    }                                                                                            \
    MLS_CHECK_ARG(op, cu_values_[cu_last_] == (n_rows), #cu " must end at the number of rows (", \
                  (n_rows), "), got ", cu_values_[cu_last_]);                                    \
  } while (0)
