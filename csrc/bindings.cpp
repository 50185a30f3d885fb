// Op registration (TORCH_LIBRARY) and the pybind11 module with build information.
//
// Schemas are defined once here; each backend registers its implementation under its dispatch
// key (CPU below, CUDA in cuda/glue.cpp when built with CUDA). Fake (meta) implementations are
// registered from Python in mlservices/ops/_cpp.py.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include "cpu/capability.h"
#include "cpu/pool.h"

TORCH_LIBRARY(mlservices, m) {
  m.def("segment_pool(Tensor x, Tensor cu_seqlens, str mode, bool normalize, float eps) -> Tensor");
}

TORCH_LIBRARY_IMPL(mlservices, CPU, m) {
  m.impl("segment_pool", &mlservices::cpu::segment_pool);
}

namespace {

pybind11::dict build_info() {
  pybind11::dict info;
#ifdef MLSERVICES_WITH_CUDA
  info["cuda"] = true;
#else
  info["cuda"] = false;
#endif
#ifdef _OPENMP
  info["openmp"] = _OPENMP;
#endif
  info["compiler"] = __VERSION__;
  info["cplusplus"] = __cplusplus;
  info["cpu_capability"] = mlservices::cpu::capability_name(mlservices::cpu::active_capability());
  info["cpu_capability_supported"] =
      mlservices::cpu::capability_name(mlservices::cpu::supported_capability());
  return info;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "mlservices compiled kernels (CPU, and CUDA when built with it)";
  m.def("build_info", &build_info, "How this extension was built: CUDA, OpenMP, compiler.");
  m.def("set_cpu_capability", &mlservices::cpu::set_capability, pybind11::arg("name"),
        "Run CPU kernels at tier default, avx2 or avx512 (at most what the CPU supports); "
        "returns the previous tier.");
}
