// Unpacking on the GPU: segment b of a packed [T, ...] stream goes to out[b, :len], the rest of
// out[b] is zero. One thread per output word (16 bytes when rows and pointers allow, else the
// widest word that divides them): a grid-stride loop over out, so writes are coalesced and
// every output word is written exactly once.
#include <algorithm>

#include "cuda/common.cuh"

namespace mlservices::cuda {

namespace {

constexpr int kThreads = 256;

template <typename W>
__global__ void unpack_kernel(const unsigned char* __restrict__ x,  // [T, row_bytes]
                              int64_t stride_x_row_bytes,
                              const int32_t* __restrict__ cu_seqlens,  // [B + 1]
                              W* __restrict__ out,                     // [B, max_seqlen, row_words]
                              int64_t row_words, int64_t max_seqlen, int64_t n_words) {
  for (int64_t o = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; o < n_words;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // Which segment, position and word this output word is.
    const int64_t out_row = o / row_words;
    const int64_t word = o - out_row * row_words;
    const int64_t seq = out_row / max_seqlen;
    const int64_t pos = out_row - seq * max_seqlen;
    const int64_t begin = cu_seqlens[seq];
    const int64_t len = cu_seqlens[seq + 1] - begin;

    // Copy a real row's word, zero past the segment.
    W value{};
    if (pos < len) {
      value = reinterpret_cast<const W*>(x + (begin + pos) * stride_x_row_bytes)[word];
    }
    out[o] = value;
  }
}

template <typename W>
cudaError_t launch(const UnpackArgs& a, cudaStream_t stream) {
  const int64_t row_words = a.row_bytes / static_cast<int64_t>(sizeof(W));
  const int64_t n_words = a.n_seqs * a.max_seqlen * row_words;
  // Enough blocks to fill the GPU a few times over; the loop covers the rest.
  const unsigned int blocks =
      static_cast<unsigned int>(std::min<int64_t>((n_words + kThreads - 1) / kThreads, 65536));
  unpack_kernel<W><<<blocks, kThreads, 0, stream>>>(
      static_cast<const unsigned char*>(a.x), a.stride_x_row_bytes, a.cu_seqlens,
      static_cast<W*>(a.out), row_words, a.max_seqlen, n_words);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_unpack(const UnpackArgs& args, cudaStream_t stream) {
  if (args.n_seqs == 0 || args.max_seqlen == 0 || args.row_bytes == 0) return cudaSuccess;
  // The widest word that divides the row size, the row stride and both base addresses.
  const uint64_t bits = static_cast<uint64_t>(args.row_bytes) |
                        static_cast<uint64_t>(args.stride_x_row_bytes) |
                        reinterpret_cast<uintptr_t>(args.x) | reinterpret_cast<uintptr_t>(args.out);
  if (bits % 16 == 0) return launch<uint4>(args, stream);
  if (bits % 8 == 0) return launch<uint2>(args, stream);
  if (bits % 4 == 0) return launch<uint32_t>(args, stream);
  if (bits % 2 == 0) return launch<uint16_t>(args, stream);
  return launch<uint8_t>(args, stream);
}

}  // namespace mlservices::cuda
