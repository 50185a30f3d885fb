// Output allocation for the CPU ops.
#pragma once

#include <ATen/core/Tensor.h>

namespace mlservices::cpu {

// at::empty, asking Linux to back large outputs with transparent huge pages.
//
// A fresh large CPU tensor is a new mmap: writing it first costs one page fault per 4 KiB,
// which on this kind of machine made a 400 MB LayerNorm output ~6x slower to write than reused
// memory. madvise(MADV_HUGEPAGE) on the 2 MiB-aligned interior cuts that to one fault per
// 2 MiB; it is a hint (ignored where THP is off), and nothing is touched before the kernel runs.
at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace mlservices::cpu
