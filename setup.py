"""Build driver: setuptools hands the extension build to CMake (CMakeLists.txt owns it).

Set MLSERVICES_SKIP_EXT=1 to install without the compiled extension (the package then runs on
the reference ops). MLSERVICES_BUILD_TYPE selects the CMake build type (default Release).
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def _want_cuda() -> bool:
    """CUDA kernels are built when torch is a CUDA build and nvcc can be found."""
    import shutil

    import torch

    if os.environ.get("MLSERVICES_WITH_CUDA") in ("0", "1"):
        return os.environ["MLSERVICES_WITH_CUDA"] == "1"
    return torch.version.cuda is not None and shutil.which("nvcc") is not None


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        if os.environ.get("MLSERVICES_SKIP_EXT") == "1":
            print("MLSERVICES_SKIP_EXT=1: skipping mlservices._C", file=sys.stderr)
            return
        try:
            import pybind11
            import torch.utils
        except ImportError as exc:
            raise RuntimeError(
                "building mlservices._C needs torch and pybind11 in the build environment; "
                "install torch first and build with `pip install --no-build-isolation .`"
            ) from exc

        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / "cmake"
        build_dir.mkdir(parents=True, exist_ok=True)
        prefix_path = ";".join([torch.utils.cmake_prefix_path, pybind11.get_cmake_dir()])
        build_type = os.environ.get("MLSERVICES_BUILD_TYPE", "Release")
        configure = [
            "cmake",
            str(ROOT),
            "-G",
            "Ninja",
            f"-DCMAKE_BUILD_TYPE={build_type}",
            f"-DCMAKE_PREFIX_PATH={prefix_path}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DMLSERVICES_OUTPUT_DIR={out_dir}",
            f"-DMLSERVICES_WITH_CUDA={'ON' if _want_cuda() else 'OFF'}",
        ]
        subprocess.run(configure, cwd=build_dir, check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(["cmake", "--build", ".", "-j", jobs], cwd=build_dir, check=True)


setup(ext_modules=[CMakeExtension("mlservices._C")], cmdclass={"build_ext": CMakeBuild})
