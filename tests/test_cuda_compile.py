"""Every CUDA source compiles for sm_90 with nvcc, warning-free; no GPU is needed.

The .cu files include no torch headers (their torch glue is csrc/cuda/glue.cpp), so each compiles
on its own in about a second.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CUDA_SOURCES = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
NVCC = shutil.which("nvcc") or (
    "/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").exists() else None
)


def test_there_are_cuda_sources():
    assert {p.stem for p in CUDA_SOURCES} >= {
        "pool",
        "l2_normalize",
        "layer_norm",
        "pack",
        "unpack",
    }


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed (CUDA toolkit absent)")
@pytest.mark.parametrize("source", CUDA_SOURCES, ids=lambda p: p.name)
def test_compiles_for_sm90(source, tmp_path):
    cmd = [
        NVCC,
        "-arch=sm_90",
        "-std=c++17",
        "-I",
        str(ROOT / "csrc"),
        "-Xcompiler",
        "-Wall",
        "--Werror",
        "all-warnings",
        "-c",
        str(source),
        "-o",
        str(tmp_path / f"{source.stem}.o"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / f"{source.stem}.o").stat().st_size > 0
