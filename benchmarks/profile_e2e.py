"""Where ``Encoder.encode`` spends its time: one encode under torch.profiler, by category.

Categories: linear layers (QKV, output, FFN GEMMs with their bias), attention, layer norm
(residual add included), activation (GELU), embeddings, pooling, and tokenization (timed on its
own, outside torch). Each profiled op's self time goes to the outermost enclosing op that names a
category, so a GEMM inside the attention kernel counts as attention; what no op covers (Python,
batch planning and packing, tokenization) is "other".

    python benchmarks/profile_e2e.py [--texts 2000] [--device cpu] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks import _common  # noqa: E402
from mlservices import bench  # noqa: E402

# (category, substrings of profiler op names); the first match wins for an op name.
CATEGORIES = (
    ("attention", ("varlen_attention", "scaled_dot_product", "softmax", "bmm", "baddbmm")),
    ("layer norm", ("layer_norm",)),
    ("linear", ("aten::linear", "aten::addmm", "aten::mm", "aten::matmul")),
    ("activation", ("gelu",)),
    ("embeddings", ("index_select", "embedding")),
    ("pooling", ("pool", "l2_normalize")),
)


def category(name: str) -> str | None:
    for label, needles in CATEGORIES:
        if any(n in name for n in needles):
            return label
    return None


def outermost_category(event) -> str:
    """The category of the outermost enclosing op that has one (else this op's name)."""
    found, node = None, event
    while node is not None:
        found = category(node.name) or found
        node = node.cpu_parent
    return found or f"op {event.name}"


def profile(encoder, texts: list[str]) -> dict[str, float]:
    """Seconds per category for one ``encoder.encode(texts)``, plus ``wall`` and ``other``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    start = time.perf_counter()
    encoder.tokenizer(texts)
    tokenize_s = time.perf_counter() - start
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        encoder.encode(texts, show_progress_bar=False)
        wall = time.perf_counter() - start
    seconds: dict[str, float] = {}
    for event in prof.events():
        if event.device_type != torch.autograd.DeviceType.CPU:
            continue
        label = outermost_category(event)
        seconds[label] = seconds.get(label, 0.0) + event.self_cpu_time_total / 1e6
    small = [k for k, v in seconds.items() if k.startswith("op ") and v < 0.01 * wall]
    seconds["other ops"] = sum(seconds.pop(k) for k in small)
    seconds["tokenization"] = tokenize_s
    seconds["other (python, planning, packing)"] = max(wall - sum(seconds.values()), 0.0)
    seconds["wall"] = wall
    return seconds


def main(argv: list[str] | None = None) -> int:
    from mlservices import Encoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path, default=None, help="write the breakdown here")
    args = parser.parse_args(argv)
    path = _common.shared_data("corpus.jsonl") or bench.SAMPLE_CORPUS
    texts = bench.read_sample_texts(args.texts, path)
    encoder = Encoder.from_pretrained(device=args.device, dtype=args.dtype)
    encoder.encode(texts[:64], show_progress_bar=False)  # warm-up
    seconds = profile(encoder, texts)
    wall = seconds.pop("wall")
    tokens = int(encoder.tokenizer(texts).lengths.sum())
    print(
        f"{len(texts)} texts, {tokens} tokens from {path.name}; one encode: {wall:.2f} s "
        f"({tokens / wall:,.0f} tokens/s), {torch.get_num_threads()} threads"
    )
    for label, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<36}{s:8.3f} s {100 * s / wall:6.1f}%")
    if args.json is not None:
        record = {
            "environment": bench.environment(
                args.device, args.dtype, texts=len(texts), tokens=tokens
            ),
            "wall_s": wall,
            "seconds": seconds,
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
