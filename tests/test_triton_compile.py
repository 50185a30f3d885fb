"""Every Triton kernel compiles to an sm_90 cubin, with the constexpr variants the launchers use.

No GPU is needed: ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))`` runs the
whole pipeline (TTIR, TTGIR, LLVM, PTX, ptxas). ``@triton.jit`` picks interpreter or compiler
when a kernel is decorated, and conftest sets TRITON_INTERPRET=1 here, so the compiling happens
in one subprocess without it (and with a fresh cache, so every kernel is really compiled).
Tile sizes come from the same helpers the launchers call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton")

from mlservices.kernels._utils import attention_tile, row_tile  # noqa: E402
from mlservices.kernels.pack import PACK_BLOCK_COLS  # noqa: E402
from mlservices.kernels.pool import SPLIT_BLOCK_COLS  # noqa: E402
from mlservices.kernels.varlen_attention import dot_precision  # noqa: E402

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}

# Runs in the subprocess: compile each case and report the cubin size or the error.
COMPILE_SCRIPT = r"""
import importlib, json, re, subprocess, sys, tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

target = GPUTarget("cuda", 90, 32)
cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"


def spill_bytes(cubin):
    # Per-thread stack (register spills) ptxas reserved, or None without cuobjdump.
    if not cuobjdump.exists():
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        usage = subprocess.run(
            [str(cuobjdump), "-res-usage", f.name], capture_output=True, text=True, check=True
        ).stdout
    return int(re.search(r"STACK:(\d+)", usage).group(1))


results = {}
for case in json.load(sys.stdin):
    kernel = getattr(importlib.import_module(case["module"]), case["kernel"])
    names = kernel.arg_names
    missing = set(names) - set(case["signature"]) - set(case["constexprs"])
    assert not missing, f"{case['id']}: no type for {sorted(missing)}"
    signature = {n: case["signature"].get(n, "constexpr") for n in names}
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in case["aligned"]}
    src = ASTSource(kernel, signature, case["constexprs"], attrs)
    options = {"num_warps": case["num_warps"], "num_stages": case["num_stages"]}
    try:
        compiled = triton.compile(src, target=target, options=options)
        cubin = compiled.asm["cubin"]
        results[case["id"]] = {"cubin_bytes": len(cubin), "spill_bytes": spill_bytes(cubin)}
    except Exception as exc:
        results[case["id"]] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(results))
"""


def _case(id_, module, kernel, signature, constexprs, aligned, num_warps=4, num_stages=3):
    return {
        "id": id_,
        "module": f"mlservices.kernels.{module}",
        "kernel": kernel,
        "signature": signature,
        "constexprs": constexprs,
        "aligned": aligned,
        "num_warps": num_warps,
        "num_stages": num_stages,
    }


def _row_args(dtype: str, n_cols: int) -> tuple[dict, list[str]]:
    """Types shared by the row kernels, and which values are 16-divisible (pointers always)."""
    signature = {"n_rows": "i32", "n_cols": "i32", "stride_x_row": "i32", "eps": "fp32"}
    aligned = ["x_ptr", "out_ptr"] + (["n_cols", "stride_x_row"] if n_cols % 16 == 0 else [])
    return {"x_ptr": f"*{dtype}", "out_ptr": f"*{dtype}", **signature}, aligned


def _l2_cases():
    for dtype, n_cols in ((torch.float16, 384), (torch.bfloat16, 1023), (torch.float32, 4096)):
        name = DTYPE_NAMES[dtype]
        tile = row_tile("l2_normalize", n_cols)
        signature, aligned = _row_args(name, n_cols)
        constexprs = {"BLOCK_ROWS": tile.block_rows, "BLOCK_COLS": tile.block_cols}
        yield _case(
            f"l2_normalize-{name}-{n_cols}",
            "l2_normalize",
            "_l2_normalize_kernel",
            signature,
            constexprs,
            aligned,
            tile.num_warps,
        )


def _layer_norm_cases():
    for has_residual in (False, True):
        for dtype, n_cols in ((torch.float16, 384), (torch.bfloat16, 1023), (torch.float32, 1024)):
            name = DTYPE_NAMES[dtype]
            tile = row_tile("layer_norm", n_cols)
            signature, aligned = _row_args(name, n_cols)
            signature.update(
                residual_ptr=f"*{name}",
                weight_ptr="*fp32",
                bias_ptr="*fp32",
                stride_residual_row="i32",
            )
            aligned += ["residual_ptr", "weight_ptr", "bias_ptr"]
            constexprs = {
                "HAS_RESIDUAL": has_residual,
                "BLOCK_ROWS": tile.block_rows,
                "BLOCK_COLS": tile.block_cols,
            }
            yield _case(
                f"layer_norm-{name}-{n_cols}-residual{int(has_residual)}",
                "layer_norm",
                "_layer_norm_kernel",
                signature,
                constexprs,
                aligned,
                tile.num_warps,
            )


def _pool_cases():
    modes = ("mean", "cls", "last", "max")
    variants = [(m, n, torch.float16, 384) for m in modes for n in (False, True)]
    variants += [("mean", True, torch.bfloat16, 1023), ("max", False, torch.float32, 1024)]
    for mode, normalize, dtype, n_cols in variants:
        name = DTYPE_NAMES[dtype]
        tile = row_tile("pool", n_cols, None if normalize else SPLIT_BLOCK_COLS)
        signature = {
            "x_ptr": f"*{name}",
            "cu_seqlens_ptr": "*i32",
            "out_ptr": f"*{name}",
            "n_cols": "i32",
            "stride_x_row": "i32",
            "eps": "fp32",
        }
        aligned = ["x_ptr", "cu_seqlens_ptr", "out_ptr"]
        aligned += ["n_cols", "stride_x_row"] if n_cols % 16 == 0 else []
        constexprs = {
            "MODE": mode,
            "NORMALIZE": normalize,
            "BLOCK_ROWS": tile.block_rows,
            "BLOCK_COLS": tile.block_cols,
        }
        yield _case(
            f"pool-{mode}-normalize{int(normalize)}-{name}-{n_cols}",
            "pool",
            "_pool_kernel",
            signature,
            constexprs,
            aligned,
            tile.num_warps,
        )


def _pack_cases():
    for mask in ("i64", "i1"):
        signature = {
            "mask_ptr": f"*{mask}",
            "seqlens_ptr": "*i32",
            "seq_len": "i32",
            "stride_mask_row": "i32",
            "stride_mask_col": "i32",
        }
        constexprs = {"BLOCK_COLS": PACK_BLOCK_COLS}
        yield _case(
            f"row_lengths-mask_{mask}",
            "pack",
            "_row_lengths_kernel",
            signature,
            constexprs,
            ["mask_ptr", "seqlens_ptr"],
        )
        signature = {
            "ids_ptr": "*i64",
            "mask_ptr": f"*{mask}",
            "cu_seqlens_ptr": "*i32",
            "packed_ptr": "*i64",
            "indices_ptr": "*i64",
            "seq_len": "i32",
            "stride_ids_row": "i32",
            "stride_ids_col": "i32",
            "stride_mask_row": "i32",
            "stride_mask_col": "i32",
        }
        aligned = ["ids_ptr", "mask_ptr", "cu_seqlens_ptr", "packed_ptr", "indices_ptr"]
        yield _case(
            f"pack_rows-mask_{mask}", "pack", "_pack_rows_kernel", signature, constexprs, aligned
        )


def _unpack_cases():
    for dtype, n_cols in (("fp16", 384), ("fp32", 1023), ("i64", 1)):
        tile = row_tile("unpack", n_cols, 1024)
        signature = {
            "x_ptr": f"*{dtype}",
            "cu_seqlens_ptr": "*i32",
            "out_ptr": f"*{dtype}",
            "max_seqlen": "i32",
            "n_cols": "i32",
            "stride_x_row": "i32",
        }
        aligned = ["x_ptr", "cu_seqlens_ptr", "out_ptr"]
        aligned += ["n_cols", "stride_x_row"] if n_cols % 16 == 0 else []
        constexprs = {"BLOCK_ROWS": tile.block_rows, "BLOCK_COLS": tile.block_cols}
        yield _case(
            f"unpack-{dtype}-{n_cols}",
            "pack",
            "_unpack_kernel",
            signature,
            constexprs,
            aligned,
            tile.num_warps,
        )


def _attention_cases():
    # Longest segments of 12, 48 and 512 tokens give query blocks of 16, 64 and 128 (fp32: 64).
    variants = [
        (dtype, head_dim, max_seqlen)
        for dtype in (torch.float16, torch.float32)
        for head_dim in (32, 64, 128)
        for max_seqlen in (12, 48, 512)
    ]
    variants += [(torch.bfloat16, 64, 48), (torch.bfloat16, 128, 512)]
    for dtype, head_dim, max_seqlen in variants:
        name = DTYPE_NAMES[dtype]
        tile = attention_tile(head_dim, max_seqlen, dtype)
        strides = [f"stride_{t}_{s}" for t in ("q", "k", "v", "out") for s in ("token", "head")]
        signature = {f"{t}_ptr": f"*{name}" for t in ("q", "k", "v", "out")}
        signature.update({s: "i32" for s in strides}, cu_seqlens_ptr="*i32", scale="fp32")
        aligned = [f"{t}_ptr" for t in ("q", "k", "v", "out")] + ["cu_seqlens_ptr"] + strides
        constexprs = {
            "BLOCK_M": tile.block_m,
            "BLOCK_N": tile.block_n,
            "HEAD_DIM": head_dim,
            "DOT_PRECISION": dot_precision(dtype),
        }
        yield _case(
            f"varlen_attention-{name}-d{head_dim}-maxlen{max_seqlen}",
            "varlen_attention",
            "_varlen_attention_kernel",
            signature,
            constexprs,
            aligned,
            tile.num_warps,
            tile.num_stages,
        )


CASES = [
    *_l2_cases(),
    *_layer_norm_cases(),
    *_pool_cases(),
    *_pack_cases(),
    *_unpack_cases(),
    *_attention_cases(),
]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """Compile every case in one subprocess without TRITON_INTERPRET and a fresh cache."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path_factory.mktemp("triton_cache"))
    proc = subprocess.run(
        [sys.executable, "-c", COMPILE_SCRIPT],
        input=json.dumps(CASES),
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_compiles_to_sm90_cubin(compiled, case):
    result = compiled[case["id"]]
    assert "error" not in result, result.get("error")
    assert result["cubin_bytes"] > 0
    # The tile helpers are sized so that no kernel spills registers (see attention_tile).
    if result["spill_bytes"] is None:
        pytest.skip("triton ships no cuobjdump here: register spills not checked")
    assert result["spill_bytes"] == 0, f"{result['spill_bytes']} bytes of register spills"
