// Packing on the GPU: the tokens whose attention_mask is nonzero, row by row, in one stream.
//
// Three kernels: count each row's real tokens (one block per row), an exclusive scan of the
// counts into cu_seqlens (one block), and an ordered gather (one block per row: a block-wide
// scan of the mask flags gives every real token its slot). The host reads cu_seqlens[B] between
// the scan and the gather to size the outputs. Ids and mask are moved as raw words, so every
// dtype works; a mask element is "real" when any of its bits is set.
#include "cuda/common.cuh"

namespace mlservices::cuda {

namespace {

constexpr int kThreads = 256;

template <typename M>
__global__ void count_kernel(const M* __restrict__ mask,  // [B, L]
                             int64_t stride_row, int64_t stride_col, int64_t n_cols,
                             int32_t* __restrict__ counts) {  // [B]
  __shared__ int32_t scratch[kWarpSize];
  const int64_t row = blockIdx.x;

  // Count this thread's real tokens, then reduce over the block.
  int32_t n = 0;
  for (int64_t l = threadIdx.x; l < n_cols; l += blockDim.x) {
    n += mask[row * stride_row + l * stride_col] != M(0);
  }
  n = block_sum(n, scratch);
  if (threadIdx.x == 0) counts[row] = n;
}

// cu_seqlens[0] = 0, cu_seqlens[b + 1] = counts[0] + ... + counts[b]; counts lives in
// cu_seqlens[1..B] on entry (scanned in place).
__global__ void scan_kernel(int32_t* __restrict__ cu_seqlens, int64_t n_rows) {
  __shared__ int32_t warp_sums[kWarpSize];
  __shared__ int32_t carry;
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  if (threadIdx.x == 0) {
    carry = 0;
    cu_seqlens[0] = 0;
  }
  __syncthreads();
  for (int64_t tile = 0; tile < n_rows; tile += blockDim.x) {
    // Inclusive scan within the warp, then across warps.
    const int64_t i = tile + threadIdx.x;
    int32_t v = i < n_rows ? cu_seqlens[i + 1] : 0;
    for (int offset = 1; offset < kWarpSize; offset *= 2) {
      const int32_t up = __shfl_up_sync(0xffffffffu, v, offset);
      if (lane >= offset) v += up;
    }
    if (lane == kWarpSize - 1) warp_sums[warp] = v;
    __syncthreads();
    if (warp == 0) {
      int32_t s = lane < blockDim.x / kWarpSize ? warp_sums[lane] : 0;
      for (int offset = 1; offset < kWarpSize; offset *= 2) {
        const int32_t up = __shfl_up_sync(0xffffffffu, s, offset);
        if (lane >= offset) s += up;
      }
      warp_sums[lane] = s;
    }
    __syncthreads();

    // Add the earlier warps and tiles, store, and carry the tile total forward.
    const int32_t total = v + (warp > 0 ? warp_sums[warp - 1] : 0) + carry;
    if (i < n_rows) cu_seqlens[i + 1] = total;
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) carry = total;
    __syncthreads();
  }
}

template <typename M, typename I>
__global__ void gather_kernel(const M* __restrict__ mask,  // [B, L]
                              int64_t stride_mask_row, int64_t stride_mask_col,
                              const I* __restrict__ ids,  // [B, L]
                              int64_t stride_ids_row, int64_t stride_ids_col, int64_t n_cols,
                              const int32_t* __restrict__ cu_seqlens,  // [B + 1]
                              I* __restrict__ packed,                  // [T]
                              int64_t* __restrict__ indices) {         // [T]
  __shared__ int32_t warp_counts[kWarpSize];
  const int64_t row = blockIdx.x;
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int n_warps = blockDim.x / kWarpSize;
  int64_t slot = cu_seqlens[row];

  for (int64_t tile = 0; tile < n_cols; tile += blockDim.x) {
    // Which columns of this tile are real, and how many real ones precede each in the warp.
    const int64_t l = tile + threadIdx.x;
    const bool real = l < n_cols && mask[row * stride_mask_row + l * stride_mask_col] != M(0);
    const unsigned ballot = __ballot_sync(0xffffffffu, real);
    const int before_in_warp = __popc(ballot & ((1u << lane) - 1u));
    if (lane == 0) warp_counts[warp] = __popc(ballot);
    __syncthreads();

    // Real tokens in earlier warps of the tile, then write this token to its slot.
    int before = before_in_warp;
    int tile_total = 0;
    for (int w = 0; w < n_warps; ++w) {
      if (w < warp) before += warp_counts[w];
      tile_total += warp_counts[w];
    }
    if (real) {
      packed[slot + before] = ids[row * stride_ids_row + l * stride_ids_col];
      indices[slot + before] = row * n_cols + l;
    }
    slot += tile_total;
    __syncthreads();
  }
}

// Calls fn(W{}) with W the unsigned word of `bytes` bytes.
template <typename Fn>
cudaError_t dispatch_word(int bytes, Fn&& fn) {
  switch (bytes) {
    case 1:
      return fn(uint8_t{});
    case 2:
      return fn(uint16_t{});
    case 4:
      return fn(uint32_t{});
    case 8:
      return fn(uint64_t{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t launch_pack_offsets(const PackArgs& a, cudaStream_t stream) {
  // Counts go to cu_seqlens[1..B], then the scan turns them into offsets in place.
  if (a.n_rows > 0) {
    const cudaError_t err = dispatch_word(a.mask_bytes, [&](auto tag) {
      using M = decltype(tag);
      count_kernel<M><<<a.n_rows, kThreads, 0, stream>>>(static_cast<const M*>(a.attention_mask),
                                                         a.stride_mask_row, a.stride_mask_col,
                                                         a.n_cols, a.cu_seqlens + 1);
      return cudaGetLastError();
    });
    if (err != cudaSuccess) return err;
  }
  scan_kernel<<<1, 1024, 0, stream>>>(a.cu_seqlens, a.n_rows);
  return cudaGetLastError();
}

cudaError_t launch_pack_gather(const PackArgs& a, cudaStream_t stream) {
  if (a.n_rows == 0 || a.n_cols == 0) return cudaSuccess;
  return dispatch_word(a.mask_bytes, [&](auto mask_tag) {
    using M = decltype(mask_tag);
    return dispatch_word(a.ids_bytes, [&](auto ids_tag) {
      using I = decltype(ids_tag);
      gather_kernel<M, I><<<a.n_rows, kThreads, 0, stream>>>(
          static_cast<const M*>(a.attention_mask), a.stride_mask_row, a.stride_mask_col,
          static_cast<const I*>(a.input_ids), a.stride_ids_row, a.stride_ids_col, a.n_cols,
          a.cu_seqlens, static_cast<I*>(a.packed), a.indices);
      return cudaGetLastError();
    });
  });
}

}  // namespace mlservices::cuda
