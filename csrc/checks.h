// Argument checks shared by the CPU and CUDA glue: every message names the op and the argument.
#pragma once

#include <torch/library.h>
#include <ATen/ATen.h>

#define MLS_CHECK_ARG(op, cond, ...) TORCH_CHECK((cond), "mlservices.", op, ": ", __VA_ARGS__)

// A [rows, cols] view whose last dimension is contiguous (rows may be strided).
#define MLS_CHECK_ROWS(op, t)                                                            \
  MLS_CHECK_ARG(op, (t).dim() == 2, #t " must be 2-D [rows, cols], got ", (t).sizes()); \
  MLS_CHECK_ARG(op, (t).size(1) <= 1 || (t).stride(1) == 1,                             \
                #t " must have a contiguous last dimension (stride 1), got strides ",   \
                (t).strides(), "; pass a row-strided view or call .contiguous()")

#define MLS_CHECK_CU_SEQLENS(op, cu, n_rows)                                             \
  MLS_CHECK_ARG(op, (cu).scalar_type() == at::kInt, #cu " must be int32, got ",          \
                (cu).scalar_type());                                                      \
  MLS_CHECK_ARG(op, (cu).dim() == 1 && (cu).size(0) >= 1,                                \
                #cu " must be 1-D [batch + 1], got ", (cu).sizes());                     \
  MLS_CHECK_ARG(op, (cu).is_contiguous(), #cu " must be contiguous")
