// Helpers for the *_kernel.cpp files, which are compiled once per CPU tier.
//
// Everything here lives in namespace mlservices::cpu::CPU_CAPABILITY so that the tiers never
// share an inline function compiled with another tier's instructions. Values are loaded into
// accumulator vectors (float for fp32/fp16/bf16, double for fp64) two vectors at a time, which
// is one full vector of the 16-bit types.
#pragma once

#ifndef CPU_CAPABILITY
#error "kernel_utils.h is for the per-tier kernel files (CMake sets CPU_CAPABILITY)"
#endif

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/core/impl/alloc_cpu.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

namespace mlservices::cpu::CPU_CAPABILITY {

template <typename T>
using acc_t = at::opmath_type<T>;

template <typename T>
using AccVec = at::vec::Vectorized<acc_t<T>>;

// Elements handled by one load2/store2: two accumulator vectors.
template <typename T>
constexpr int64_t kStep = 2 * AccVec<T>::size();

inline int64_t round_up(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Loads kStep<T> elements of `src` as two accumulator vectors.
template <typename T>
inline void load2(const T* src, AccVec<T>& lo, AccVec<T>& hi) {
  if constexpr (std::is_same_v<T, acc_t<T>>) {
    lo = AccVec<T>::loadu(src);
    hi = AccVec<T>::loadu(src + AccVec<T>::size());
  } else {
    at::vec::load_to_float<T>(src, lo, hi);
  }
}

// Loads n < kStep<T> elements of `src`; the remaining lanes are zero.
template <typename T>
inline void load2(const T* src, int64_t n, AccVec<T>& lo, AccVec<T>& hi) {
  T buf[kStep<T>];
  std::memset(static_cast<void*>(buf), 0, sizeof(buf));
  std::memcpy(static_cast<void*>(buf), src, n * sizeof(T));
  load2(buf, lo, hi);
}

// Stores two accumulator vectors as kStep<T> elements of `dst`.
template <typename T>
inline void store2(T* dst, const AccVec<T>& lo, const AccVec<T>& hi) {
  if constexpr (std::is_same_v<T, acc_t<T>>) {
    lo.store(dst);
    hi.store(dst + AccVec<T>::size());
  } else {
    at::vec::convert_from_float<T>(lo, hi).store(dst);
  }
}

// Stores the first n < kStep<T> lanes of two accumulator vectors.
template <typename T>
inline void store2(T* dst, int64_t n, const AccVec<T>& lo, const AccVec<T>& hi) {
  T buf[kStep<T>];
  store2(buf, lo, hi);
  std::memcpy(static_cast<void*>(dst), buf, n * sizeof(T));
}

// Converts n elements of `src` to the accumulator type (dst needs room for round_up(n, kStep)).
template <typename T>
inline void load_row(const T* src, int64_t n, acc_t<T>* dst) {
  constexpr int64_t V = AccVec<T>::size();
  AccVec<T> lo, hi;
  int64_t j = 0;
  for (; j + kStep<T> <= n; j += kStep<T>) {
    load2(src + j, lo, hi);
    lo.store(dst + j);
    hi.store(dst + j + V);
  }
  if (j < n) {
    load2(src + j, n - j, lo, hi);
    lo.store(dst + j);
    hi.store(dst + j + V);
  }
}

// A 64-byte aligned scratch array owned by one thread.
template <typename A>
class Scratch {
 public:
  explicit Scratch(int64_t n)
      : data_(static_cast<A*>(c10::alloc_cpu(std::max<int64_t>(n, 1) * sizeof(A)))) {}
  ~Scratch() { c10::free_cpu(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  A* get() const { return data_; }

 private:
  A* data_;
};

// Runs body(first, last) on all threads over runs [first, last) of [0, n_items) with about the
// same total cost each (one run per thread, so a run can set up its scratch once). start[i] is the
// cost of the items before i (size n_items + 1, start[n_items] the total); uneven segment lengths
// stay balanced this way.
template <typename Body>
void balanced_for(int64_t n_items, const int64_t* start, const Body& body) {
  const int64_t total = start[n_items];
  const int64_t n_chunks = std::min<int64_t>(n_items, at::get_num_threads());
  if (n_items == 0) return;

  // The first item whose start reaches chunk c's share of the total.
  auto first_item = [&](int64_t c) {
    if (c >= n_chunks) return n_items;
    const int64_t target = total / n_chunks * c + total % n_chunks * c / n_chunks;
    int64_t lo = 0, hi = n_items;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (start[mid] < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return lo;
  };

  at::parallel_for(0, n_chunks, 1, [&](int64_t chunk_begin, int64_t chunk_end) {
    const int64_t first = first_item(chunk_begin);
    const int64_t last = first_item(chunk_end);
    if (first < last) body(first, last);
  });
}

}  // namespace mlservices::cpu::CPU_CAPABILITY
