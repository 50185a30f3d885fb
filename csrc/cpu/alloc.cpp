// Output allocation with a transparent-huge-page hint for large buffers (see alloc.h).
#include "cpu/alloc.h"

#include <ATen/ops/empty.h>

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace mlservices::cpu {

namespace {

constexpr uintptr_t kHugePage = uintptr_t{1} << 21;
// Below this a few 4 KiB faults cost less than the madvise call.
constexpr int64_t kMinBytes = int64_t{8} << 20;

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  at::Tensor out = at::empty(sizes, options);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const int64_t n_bytes = static_cast<int64_t>(out.nbytes());
  if (n_bytes >= kMinBytes) {
    // The whole 2 MiB pages inside the buffer; the hint's result does not matter.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(out.data_ptr());
    const uintptr_t first = (begin + kHugePage - 1) & ~(kHugePage - 1);
    const uintptr_t last = (begin + n_bytes) & ~(kHugePage - 1);
    if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return out;
}

}  // namespace mlservices::cpu
