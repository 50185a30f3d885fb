"""End to end: ``Encoder.encode`` against sentence-transformers on the same texts, same run.

Texts: the first 2,000 of ../shared/data/corpus.jsonl (a natural length mix, mean ~75 tokens)
and a short-text mix (the STS-B test sentences, ~14 tokens); without shared data, the shipped
sample corpus stands in (recorded as the dataset's source). Peers: stock sentence-transformers
fp32 (batch 32) and sentence-transformers in our low-precision dtype (bf16 on CPU when the CPU
has AMX or AVX512-bf16, fp16 on CUDA); a skipped peer is recorded with the reason.

Each result's ``extra_info``: texts/s, real tokens/s (``throughput``), peak memory growth,
median with p20/p80, the ratio to sentence-transformers fp32 and to the same dtype measured
earlier in this run, the min cosine against sentence-transformers fp32, and the share of the
fp32 roofline: (FLOPs the texts need / median time) / (torch fp32 matmul GFLOP/s measured in
this run: the mean of the rate at session start and right after the case, since on a shared
machine the rate moves with the load), with FLOPs per layer and text of n tokens
24·hidden²·n + 4·hidden·n².
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from benchmarks import _common
from mlservices import hardware
from mlservices.bench import SAMPLE_CORPUS, Engine, ours_engine, st_engine

CORPUS_TEXTS = 2000
SHORT_TEXTS = 2000
QUICK_TEXTS = 48
FULL_ROUNDS = 3
FORCE_LOW_PRECISION_ENV = "MLSERVICES_BENCH_FORCE_LOWP"

CASES = [
    (dataset, engine, precision)
    for dataset in ("corpus", "short")
    for precision in ("fp32", "lowp")
    for engine in ("sentence-transformers", "mlservices")
]


@dataclass
class Dataset:
    name: str
    source: str
    texts: list[str]
    lengths: np.ndarray  # real tokens per text (special tokens included, truncated at 256)

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum())


def _read_jsonl(path, limit: int) -> list[str]:
    texts = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            texts.append(json.loads(line)["text"])
            if len(texts) >= limit:
                break
    return texts


def _corpus_texts(limit: int) -> tuple[str, list[str]]:
    path = _common.shared_data("corpus.jsonl")
    if path is None:
        return "sample_corpus.jsonl (shared data missing)", _read_jsonl(SAMPLE_CORPUS, limit)
    return f"corpus.jsonl first {limit}", _read_jsonl(path, limit)


def _short_texts(limit: int) -> tuple[str, list[str]]:
    path = _common.shared_data("stsb-test.tsv")
    if path is None:
        texts = sorted(_read_jsonl(SAMPLE_CORPUS, 10_000), key=len)[:limit]
        return "shortest sample_corpus.jsonl texts (shared data missing)", texts
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    texts = [sentence for row in rows for sentence in (row[1], row[2])][:limit]
    return f"stsb-test.tsv sentences first {limit}", texts


class Peers:
    """Engines, datasets and the outputs of this run, shared by the parametrised cases."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.lowp = torch.float16 if device.type == "cuda" else torch.bfloat16
        self._engines: dict[tuple[str, str], Engine] = {}
        self._encoders: dict[str, object] = {}
        self._datasets: dict[str, Dataset] = {}
        self.outputs: dict[tuple[str, str, str], np.ndarray] = {}
        self.tokens_per_s: dict[tuple[str, str, str], float] = {}

    def dtype(self, precision: str) -> torch.dtype:
        return torch.float32 if precision == "fp32" else self.lowp

    def encoder(self, dtype: torch.dtype):
        from mlservices import Encoder

        key = str(dtype)
        if key not in self._encoders:
            self._encoders[key] = Encoder.from_pretrained(device=self.device, dtype=dtype)
        return self._encoders[key]

    def engine(self, name: str, precision: str) -> Engine:
        key = (name, precision)
        if key not in self._engines:
            dtype = self.dtype(precision)
            if name == "mlservices":
                self._engines[key] = ours_engine(self.encoder(dtype))
            else:
                path = self.encoder(torch.float32).spec.path
                self._engines[key] = st_engine(path, self.device, dtype)
        return self._engines[key]

    def dataset(self, name: str) -> Dataset:
        if name not in self._datasets:
            limit = QUICK_TEXTS if _common.quick_mode() else None
            if name == "corpus":
                source, texts = _corpus_texts(limit or CORPUS_TEXTS)
            else:
                source, texts = _short_texts(limit or SHORT_TEXTS)
            lengths = self.encoder(torch.float32).tokenizer(texts).lengths
            self._datasets[name] = Dataset(name, source, texts, lengths)
        return self._datasets[name]

    def st_fp32_output(self, dataset: Dataset) -> np.ndarray:
        """sentence-transformers fp32 on the dataset: from its timed case, or computed now."""
        key = (dataset.name, "sentence-transformers", "fp32")
        if key not in self.outputs:
            self.outputs[key] = self.engine("sentence-transformers", "fp32").encode(dataset.texts)
        return self.outputs[key]

    def low_precision_skip_reason(self) -> str | None:
        if os.environ.get(FORCE_LOW_PRECISION_ENV) == "1" or self.device.type == "cuda":
            return None
        if hardware.cpu_has_fast_bf16():
            return None
        flags = hardware.cpu_info()["flags"]
        return (
            f"bf16 on {hardware.device_name()}: no AMX-BF16 and no AVX512-BF16 "
            f"(amx_bf16={flags['amx_bf16']}, avx512_bf16={flags['avx512_bf16']}), so bf16 "
            f"matmuls are emulated and slower than fp32; set {FORCE_LOW_PRECISION_ENV}=1 to run"
        )


@pytest.fixture(scope="module")
def peers(bench_device) -> Peers:
    return Peers(bench_device)


def _case_id(case) -> str:
    dataset, engine, precision = case
    return f"{dataset}-{engine}-{precision}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_e2e(benchmark, case, peers, fp32_roofline):
    dataset_name, engine_name, precision = case
    if precision == "lowp":
        reason = peers.low_precision_skip_reason()
        if reason is not None:
            _common.SKIPPED_PEERS[f"{engine_name} {str(peers.lowp).removeprefix('torch.')}"] = (
                reason
            )
            pytest.skip(reason)
    data = peers.dataset(dataset_name)
    engine = peers.engine(engine_name, precision)
    dtype = peers.dtype(precision)
    benchmark.group = f"e2e-{dataset_name}"
    encoder = peers.encoder(torch.float32)
    hidden, layers = encoder.model.hidden, len(encoder.model.layers)
    intermediate = int(encoder.model.layers[0].ffn_in_weight.shape[0])
    _common.record(
        benchmark,
        peers.device,
        dtype,
        texts=len(data.texts),
        tokens=data.tokens,
        mean_tokens=data.tokens / len(data.texts),
        dataset=data.source,
        hidden=hidden,
        layers=layers,
        engine=engine_name,
    )

    with _common.PeakMemory(peers.device) as mem:
        out = engine.encode(data.texts)
    timing = _common.run_timed(
        benchmark, lambda: engine.encode(data.texts), _common.rounds(FULL_ROUNDS), peers.device
    )
    key = (dataset_name, engine_name, precision)
    peers.outputs[key] = out
    rates = _common.record_rate(benchmark, timing, items=data.tokens, item_unit="tokens/s")
    tokens_per_s = rates["tokens/s"]
    peers.tokens_per_s[key] = tokens_per_s

    flops = _common.encoder_flops(data.lengths, hidden, layers, intermediate)
    # On a shared machine the matmul rate moves with the load: measure it again right after
    # this case, and set the case against the mean of the session's and this measurement.
    adjacent = _common.matmul_roofline(peers.device, rounds=_common.rounds(3), min_round_s=0.01)
    roofline = (float(fp32_roofline["peak_gflops"]) + float(adjacent["peak_gflops"])) / 2
    info = benchmark.extra_info
    info["texts/s"] = len(data.texts) / timing.median
    info["peak_memory_mib"] = mem.peak_mib
    info["effective_gflops"] = flops / timing.median / 1e9
    info["fp32_roofline_gflops"] = roofline
    info["fp32_roofline_shapes"] = fp32_roofline["shapes"]
    info["fp32_roofline_gflops_session_start"] = fp32_roofline["peak_gflops"]
    info["fp32_roofline_gflops_after_case"] = adjacent["peak_gflops"]
    info["pct_fp32_roofline"] = 100 * info["effective_gflops"] / roofline
    info["min_cosine_vs_st_fp32"] = _common.min_cosine(out, peers.st_fp32_output(data))
    for label, peer_key in (
        ("ratio_vs_st_fp32", (dataset_name, "sentence-transformers", "fp32")),
        ("ratio_vs_st_same_dtype", (dataset_name, "sentence-transformers", precision)),
    ):
        if peer_key in peers.tokens_per_s:
            info[label] = tokens_per_s / peers.tokens_per_s[peer_key]
    _common.SUMMARY_LINES.append(_summary_line(data, engine, info))

    assert out.shape[0] == len(data.texts)
    if precision == "fp32":
        assert info["min_cosine_vs_st_fp32"] >= 0.99999


def _summary_line(data: Dataset, engine: Engine, info: dict) -> str:
    ratio = info.get("ratio_vs_st_fp32")
    return (
        f"{data.name:<6} {engine.name:<21} {engine.dtype:<8} "
        f"{info['tokens/s']:>9,.0f} tok/s  {info['texts/s']:>8,.1f} texts/s  "
        f"x ST fp32 {'-' if ratio is None else f'{ratio:.2f}':>5}  "
        f"{info['pct_fp32_roofline']:5.1f}% of fp32 roofline "
        f"({info['fp32_roofline_gflops']:.0f} GFLOP/s)  "
        f"min cos {info['min_cosine_vs_st_fp32']:.6f}  peak {info['peak_memory_mib']:.0f} MiB"
    )


def test_matmul_roofline(benchmark, bench_device):
    """torch fp32 F.linear on MiniLM's FFN-in shape [T, 384] x [384, 1536]: the roofline rate."""
    n_tokens = 256 if _common.quick_mode() else 2048
    hidden, intermediate = 384, 1536
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_tokens, hidden, generator=gen).to(bench_device)
    w = torch.randn(intermediate, hidden, generator=gen).to(bench_device)
    benchmark.group = "roofline"
    _common.record(
        benchmark,
        bench_device,
        torch.float32,
        n_tokens=n_tokens,
        hidden=hidden,
        intermediate=intermediate,
    )
    timing = _common.run_timed(
        benchmark, lambda: torch.nn.functional.linear(x, w), _common.rounds(20), bench_device, 2
    )
    _common.record_rate(benchmark, timing, flops=2.0 * n_tokens * hidden * intermediate)
