// Runtime choice of the CPU kernel tier (DEFAULT, AVX2, AVX512).
//
// Each *_kernel.cpp file is compiled once per tier with that tier's ISA flags and with
// CPU_CAPABILITY set to the tier's name, so its functions land in namespace
// mlservices::cpu::<tier>. The op files are compiled for the baseline ISA and call the tier that
// this CPU supports (capped by MLSERVICES_CPU_CAPABILITY=default|avx2|avx512).
#pragma once

#include <string>

namespace mlservices::cpu {

enum class Capability { kDefault = 0, kAvx2 = 1, kAvx512 = 2 };

// The tier kernels run at now.
Capability active_capability();

// The best tier this build and this CPU support.
Capability supported_capability();

// Runs kernels at `name` (default, avx2, avx512) from now on; returns the previous tier's name.
// Throws for an unknown name or a tier the CPU or the build does not support.
std::string set_capability(const std::string& name);

std::string capability_name(Capability capability);

}  // namespace mlservices::cpu

// Declares one kernel function in every tier's namespace.
#define MLS_DECLARE_CPU_KERNEL(name, ...) \
  namespace DEFAULT {                     \
  void name(__VA_ARGS__);                 \
  }                                       \
  namespace AVX2 {                        \
  void name(__VA_ARGS__);                 \
  }                                       \
  namespace AVX512 {                      \
  void name(__VA_ARGS__);                 \
  }

// Calls the active tier's version of a kernel declared with MLS_DECLARE_CPU_KERNEL.
#if defined(MLS_HAVE_AVX512_KERNELS)
#define MLS_CALL_AVX512(name, ...)             \
  case ::mlservices::cpu::Capability::kAvx512: \
    AVX512::name(__VA_ARGS__);                 \
    break;
#else
#define MLS_CALL_AVX512(name, ...)
#endif
#if defined(MLS_HAVE_AVX2_KERNELS)
#define MLS_CALL_AVX2(name, ...)             \
  case ::mlservices::cpu::Capability::kAvx2: \
    AVX2::name(__VA_ARGS__);                 \
    break;
#else
#define MLS_CALL_AVX2(name, ...)
#endif
#define MLS_DISPATCH_CPU_KERNEL(name, ...)          \
  switch (::mlservices::cpu::active_capability()) { \
    MLS_CALL_AVX512(name, __VA_ARGS__)              \
    MLS_CALL_AVX2(name, __VA_ARGS__)                \
    default:                                        \
      DEFAULT::name(__VA_ARGS__);                   \
      break;                                        \
  }
