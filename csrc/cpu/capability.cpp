// Detects the CPU's kernel tier once, and lets tests and users cap it.
#include "cpu/capability.h"

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdlib>

namespace mlservices::cpu {

namespace {

Capability detect() {
  Capability best = Capability::kDefault;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
#if defined(MLS_HAVE_AVX2_KERNELS)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Capability::kAvx2;
#endif
#if defined(MLS_HAVE_AVX512_KERNELS)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    best = Capability::kAvx512;
  }
#endif
#endif
  return best;
}

Capability parse(const std::string& name) {
  if (name == "default") return Capability::kDefault;
  if (name == "avx2") return Capability::kAvx2;
  if (name == "avx512") return Capability::kAvx512;
  TORCH_CHECK(false, "mlservices: CPU capability must be one of default, avx2, avx512; got '", name,
              "'");
}

Capability initial() {
  const Capability best = supported_capability();
  const char* env = std::getenv("MLSERVICES_CPU_CAPABILITY");
  if (env == nullptr || *env == '\0') return best;
  const Capability wanted = parse(env);
  return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

std::atomic<int>& active() {
  static std::atomic<int> value{static_cast<int>(initial())};
  return value;
}

}  // namespace

Capability supported_capability() {
  static const Capability best = detect();
  return best;
}

Capability active_capability() {
  return static_cast<Capability>(active().load(std::memory_order_relaxed));
}

std::string capability_name(Capability capability) {
  switch (capability) {
    case Capability::kAvx512:
      return "avx512";
    case Capability::kAvx2:
      return "avx2";
    default:
      return "default";
  }
}

std::string set_capability(const std::string& name) {
  const Capability wanted = parse(name);
  TORCH_CHECK(static_cast<int>(wanted) <= static_cast<int>(supported_capability()),
              "mlservices: CPU capability '", name,
              "' is not supported here (best: ", capability_name(supported_capability()), ")");
  const int previous = active().exchange(static_cast<int>(wanted));
  return capability_name(static_cast<Capability>(previous));
}

}  // namespace mlservices::cpu
