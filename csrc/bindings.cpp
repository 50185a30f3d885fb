// Op registration (TORCH_LIBRARY) and the pybind11 module with build information.
//
// Schemas are defined once here; each backend registers its implementation under its dispatch
// key (CPU below, CUDA in cuda/glue.cpp when built with CUDA). Fake (meta) implementations are
// registered from Python in mlservices/ops/_cpp.py.
#include <pybind11/pybind11.h>
#include <torch/library.h>

#include "cpu/bias_gelu.h"
#include "cpu/capability.h"
#include "cpu/l2_normalize.h"
#include "cpu/layer_norm.h"
#include "cpu/pack.h"
#include "cpu/pool.h"
#include "cpu/unpack.h"
#include "cpu/varlen_attention.h"

TORCH_LIBRARY(mlservices, m) {
  // Packing: padded [B, L] <-> packed [T].
  m.def("pack(Tensor input_ids, Tensor attention_mask) -> (Tensor, Tensor, Tensor)");
  m.def("unpack(Tensor x, Tensor cu_seqlens, int max_seqlen) -> Tensor");

  // Row-wise ops on [T, H].
  m.def("segment_pool(Tensor x, Tensor cu_seqlens, str mode, bool normalize, float eps) -> Tensor");
  m.def("l2_normalize(Tensor x, float eps) -> Tensor");
  m.def("layer_norm(Tensor x, Tensor weight, Tensor bias, float eps, Tensor? residual) -> Tensor");

  // Elementwise epilogues of a matmul on [T, N]; the trailing-underscore op writes over x.
  m.def("bias_gelu(Tensor x, Tensor bias, str approximate) -> Tensor");
  m.def("bias_gelu_(Tensor(a!) x, Tensor bias, str approximate) -> ()");

  // Attention within segments of [T, heads, head_dim].
  m.def(
      "varlen_attention(Tensor q, Tensor k, Tensor v, Tensor cu_seqlens, int max_seqlen, "
      "float scale) -> Tensor");
}

TORCH_LIBRARY_IMPL(mlservices, CPU, m) {
  m.impl("pack", &mlservices::cpu::pack);
  m.impl("unpack", &mlservices::cpu::unpack);
  m.impl("segment_pool", &mlservices::cpu::segment_pool);
  m.impl("l2_normalize", &mlservices::cpu::l2_normalize);
  m.impl("layer_norm", &mlservices::cpu::layer_norm);
  m.impl("bias_gelu", &mlservices::cpu::bias_gelu);
  m.impl("bias_gelu_", &mlservices::cpu::bias_gelu_);
  m.impl("varlen_attention", &mlservices::cpu::varlen_attention);
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
