"""``mlservices bench``: our encoder against sentence-transformers on the same texts, in one run.

This module also holds the measurement primitives that the benchmark suites in ``benchmarks/``
share, so that the CLI and the suites measure the same way:

- ``environment``: device name, CPU flags (AVX-512, AMX), thread count, package versions.
- ``time_rounds``: wall time of a callable, median with p20/p80, device synchronised.
- ``PeakMemory``: peak memory growth during a block (CUDA allocator peak, or sampled RSS on CPU).
- ``encoder_flops`` and ``matmul_roofline``: the FLOPs an encoder needs for given text lengths
  and the fp32 matmul rate measured on this machine, which give "% of roofline".

Example:
    $ mlservices bench --texts 200 --output-dir bench-out
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

VERSIONED_PACKAGES = (
    "mlservices",
    "torch",
    "triton",
    "transformers",
    "sentence_transformers",
    "tokenizers",
    "numpy",
)
# Text-length buckets of the throughput plot: upper bounds in tokens (special tokens included).
BUCKET_EDGES = (16, 32, 64, 128, 256)
SAMPLE_CORPUS = Path(__file__).resolve().parent / "data" / "sample_corpus.jsonl"
ST_BATCH_SIZE = 32


# -- environment --------------------------------------------------------------------------------


def package_version(name: str) -> str:
    """The version of an importable package, or ``not installed``."""
    try:
        return str(importlib.import_module(name).__version__)
    except Exception:  # a broken install is reported, never fatal for a benchmark
        return "not installed"


def environment(
    device: str | torch.device = "cpu", dtype: torch.dtype | str | None = None, **sizes: object
) -> dict[str, object]:
    """What a benchmark result must carry: device, CPU flags, threads, versions, dtype, sizes.

    Args:
        device: the device the measurement ran on.
        dtype: the compute dtype, if one applies.
        **sizes: the problem sizes (texts, tokens, hidden, ...), recorded as given.

    Returns:
        A JSON-serialisable dict.
    """
    from mlservices import hardware

    dev = torch.device(device)
    cpu = hardware.cpu_info()
    record: dict[str, object] = {
        "device": hardware.device_name(dev),
        "device_type": dev.type,
        "cpu_model": cpu["model"],
        "cpu_flags": cpu["flags"],
        "cpu_has_fast_bf16": hardware.cpu_has_fast_bf16(),
        "torch_threads": torch.get_num_threads(),
        "versions": {name: package_version(name) for name in VERSIONED_PACKAGES},
        "extension": _extension_info(),
    }
    if dev.type == "cuda":
        record["gpu"] = hardware.gpu_info()
        record["cuda"] = torch.version.cuda
    if dtype is not None:
        record["dtype"] = str(dtype).removeprefix("torch.")
    record["sizes"] = dict(sizes)
    return record


def _extension_info() -> dict | str:
    from mlservices.ops import _cpp

    return _cpp.BUILD_INFO if _cpp.BUILD_INFO is not None else f"missing: {_cpp.IMPORT_ERROR}"


# -- timing -------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall times of repeated rounds, in seconds."""

    seconds: list[float]

    def quantile(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.seconds), q))

    @property
    def median(self) -> float:
        return self.quantile(0.5)

    @property
    def p20(self) -> float:
        return self.quantile(0.2)

    @property
    def p80(self) -> float:
        return self.quantile(0.8)

    def summary(self) -> dict[str, float]:
        return {
            "median_s": self.median,
            "p20_s": self.p20,
            "p80_s": self.p80,
            "rounds": len(self.seconds),
        }


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_rounds(
    fn: Callable[[], object], rounds: int, warmup: int = 1, device: str | torch.device = "cpu"
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``rounds`` times timed (device synchronised)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return Timing(seconds)


# -- memory -------------------------------------------------------------------------------------


def _release_freed_memory() -> None:
    """Give freed heap pages back to the OS (glibc) so RSS growth reflects the next block."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory growth (MiB) of the block it wraps.

    On CUDA: the allocator's peak above what was allocated at entry. On CPU: the process's
    resident set sampled every ``interval`` seconds, peak above the value at entry (after freed
    heap pages are returned to the OS), so it counts every allocator, torch's included.

    Example:
        >>> with PeakMemory("cpu") as mem:
        ...     work()
        >>> mem.peak_mib
    """

    def __init__(self, device: str | torch.device = "cpu", interval: float = 0.002) -> None:
        self.device = torch.device(device)
        self.interval = interval
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_bytes = 0
        self._peak_bytes = 0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start_bytes = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        _release_freed_memory()
        self._process = psutil.Process()
        self._start_bytes = self._peak_bytes = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak_bytes = max(self._peak_bytes, self._process.memory_info().rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            assert self._thread is not None
            self._thread.join()
            peak = max(self._peak_bytes, self._process.memory_info().rss)
        self.peak_mib = max(peak - self._start_bytes, 0) / 2**20


# -- FLOPs and the roofline ---------------------------------------------------------------------


def encoder_flops(
    lengths: Sequence[int] | np.ndarray, hidden: int, layers: int, intermediate: int | None = None
) -> float:
    """FLOPs a BERT encoder needs for texts of the given token counts (no padding).

    Per layer and text of n tokens: QKV, output and FFN projections cost
    ``2 * n * (4 * hidden**2 + 2 * hidden * intermediate)`` (``24 * hidden**2 * n`` when
    intermediate = 4 * hidden), and attention's QK^T and PV products ``4 * hidden * n**2``.
    Embeddings, LayerNorm, softmax and pooling are not counted.
    """
    n = np.asarray(lengths, dtype=np.float64)
    inter = 4 * hidden if intermediate is None else intermediate
    linear = 2.0 * n * (4 * hidden * hidden + 2 * hidden * inter)
    attention = 4.0 * hidden * n * n
    return float(layers * (linear + attention).sum())


def matmul_roofline(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    n_tokens: int = 2048,
    hidden: int = 384,
    intermediate: int = 1536,
    rounds: int = 5,
    min_round_s: float = 0.02,
) -> dict[str, object]:
    """torch matmul GFLOP/s on the linear-layer shapes of a BERT layer, measured now.

    Shapes are ``[n_tokens, in] x [in, out]`` through ``F.linear`` (as the encoder runs them):
    QKV (hidden -> 3 hidden), output (hidden -> hidden), FFN in and out. Each shape runs enough
    repetitions per round to last ``min_round_s``; the median round gives its rate.

    Returns:
        ``{"shapes": {name: GFLOP/s}, "peak_gflops": best shape, "mix_gflops": all four shapes'
        FLOPs over their summed time, ...}``. ``peak_gflops`` is the roofline rate.
    """
    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(0)
    shapes = {
        "qkv": (hidden, 3 * hidden),
        "out": (hidden, hidden),
        "ffn_in": (hidden, intermediate),
        "ffn_out": (intermediate, hidden),
    }
    rates, total_flops, total_s = {}, 0.0, 0.0
    for name, (d_in, d_out) in shapes.items():
        x = torch.randn(n_tokens, d_in, generator=gen).to(dev, dtype)
        w = torch.randn(d_out, d_in, generator=gen).to(dev, dtype)
        flops = 2.0 * n_tokens * d_in * d_out
        reps = _repetitions(lambda x=x, w=w: F.linear(x, w), min_round_s, dev)
        timing = time_rounds(lambda x=x, w=w, r=reps: _repeat(F.linear, r, x, w), rounds, 1, dev)
        seconds = timing.median / reps
        rates[name] = flops / seconds / 1e9
        total_flops += flops
        total_s += seconds
    return {
        "shapes": rates,
        "peak_gflops": max(rates.values()),
        "mix_gflops": total_flops / total_s / 1e9,
        "n_tokens": n_tokens,
        "hidden": hidden,
        "intermediate": intermediate,
        "dtype": str(dtype).removeprefix("torch."),
    }


def _repeat(fn: Callable, times: int, *args) -> None:
    for _ in range(times):
        fn(*args)


def _repetitions(fn: Callable[[], object], min_round_s: float, device: torch.device) -> int:
    """How many calls of ``fn`` make a round of at least ``min_round_s`` (after one warm call)."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(np.ceil(min_round_s / once)))


def min_cosine(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Smallest row-wise cosine similarity of two [n, d] matrices (float64; zero pairs count 1)."""
    a64, b64 = (_as_float64(m) for m in (a, b))
    na, nb = np.linalg.norm(a64, axis=1), np.linalg.norm(b64, axis=1)
    cos = (a64 * b64).sum(axis=1) / np.maximum(na * nb, 1e-300)
    cos = np.where((na == 0) & (nb == 0), 1.0, cos)
    return float(cos.min()) if len(cos) else 1.0


def _as_float64(m: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(m, torch.Tensor):
        return m.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(m, dtype=np.float64)


# -- engines ------------------------------------------------------------------------------------


@dataclass
class Engine:
    """One way of embedding texts: a name, a dtype and a call that returns [n, dim] float32."""

    name: str
    dtype: str
    encode: Callable[[Sequence[str]], np.ndarray]


def ours_engine(encoder, batch_size: int = 32) -> Engine:
    """Our ``Encoder.encode`` with its defaults (packed batches of at most ``batch_size``)."""

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = encoder.encode(list(texts), batch_size, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    return Engine("mlservices", str(encoder.dtype).removeprefix("torch."), encode)


def st_engine(
    model_path: str | Path,
    device: str | torch.device,
    dtype: torch.dtype = torch.float32,
    batch_size: int = ST_BATCH_SIZE,
) -> Engine:
    """Stock sentence-transformers on the same folder, converted to ``dtype`` when not fp32."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device=str(device))
    if dtype != torch.float32:
        model = model.to(dtype)

    def encode(texts: Sequence[str]) -> np.ndarray:
        out = model.encode(
            list(texts), batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False
        )
        return out.float().cpu().numpy()

    return Engine("sentence-transformers", str(dtype).removeprefix("torch."), encode)


@dataclass
class EngineResult:
    """Throughput and memory of one engine on one set of texts."""

    engine: str
    dtype: str
    texts: int
    tokens: int
    timing: dict[str, float]
    texts_per_s: float
    tokens_per_s: float
    peak_memory_mib: float
    min_cosine_vs_st_fp32: float | None = None
    ratio_vs_st_fp32: float | None = None
    ratio_vs_st_same_dtype: float | None = None
    buckets: dict[str, float] = field(default_factory=dict)  # bucket label -> tokens/s

    @property
    def label(self) -> str:
        return f"{self.engine} {self.dtype}"


def measure(
    engine: Engine, texts: Sequence[str], tokens: int, rounds: int, device: str | torch.device
) -> tuple[EngineResult, np.ndarray]:
    """Peak memory on a first (warm-up) call, then ``rounds`` timed calls; returns the output."""
    with PeakMemory(device) as mem:
        out = engine.encode(texts)
    timing = time_rounds(lambda: engine.encode(texts), rounds, warmup=0, device=device)
    result = EngineResult(
        engine=engine.name,
        dtype=engine.dtype,
        texts=len(texts),
        tokens=tokens,
        timing=timing.summary(),
        texts_per_s=len(texts) / timing.median,
        tokens_per_s=tokens / timing.median,
        peak_memory_mib=mem.peak_mib,
    )
    return result, out


# -- the `mlservices bench` command -------------------------------------------------------------


def read_sample_texts(n: int, path: Path = SAMPLE_CORPUS) -> list[str]:
    """The first ``n`` texts of a JSONL corpus (``text`` field), the shipped sample by default."""
    texts = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                texts.append(json.loads(line)["text"])
            if len(texts) >= n:
                break
    return texts


def bucket_labels(edges: Sequence[int] = BUCKET_EDGES) -> list[str]:
    lows = [1, *(e + 1 for e in edges[:-1])]
    return [f"{lo}-{hi}" for lo, hi in zip(lows, edges, strict=True)] + [f">{edges[-1]}"]


def length_buckets(
    lengths: np.ndarray, edges: Sequence[int] = BUCKET_EDGES
) -> dict[str, np.ndarray]:
    """Indices of texts per token-length bucket (label -> indices), empty buckets left out."""
    which = np.searchsorted(np.asarray(edges), lengths, side="left")
    out = {}
    for i, label in enumerate(bucket_labels(edges)):
        indices = np.flatnonzero(which == i)
        if len(indices):
            out[label] = indices
    return out


@dataclass
class BenchReport:
    """Everything ``mlservices bench`` measured, JSON-serialisable through ``to_dict``."""

    environment: dict[str, object]
    texts: int
    tokens: int
    results: list[EngineResult]
    skipped: dict[str, str] = field(default_factory=dict)  # peer -> why it did not run

    def to_dict(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "texts": self.texts,
            "tokens": self.tokens,
            "results": [asdict(r) for r in self.results],
            "skipped": self.skipped,
        }


def run_bench(
    texts: Sequence[str],
    *,
    model: str | Path | None = None,
    device: str | None = None,
    dtype: str | None = None,
    rounds: int = 1,
    buckets: bool = True,
) -> BenchReport:
    """Ours against sentence-transformers (fp32 and, when ours is not fp32, the same dtype).

    Every engine first runs once untimed (warm-up, peak memory), then ``rounds`` timed calls
    on all texts; with ``buckets`` each engine also runs once per text-length bucket.
    """
    from mlservices.encoder import Encoder

    encoder = Encoder.from_pretrained(model, device=device, dtype=dtype)
    dev = encoder.device
    lengths = encoder.tokenizer(list(texts)).lengths
    tokens = int(lengths.sum())
    engines = [st_engine(encoder.spec.path, dev), ours_engine(encoder)]
    skipped = {}
    if encoder.dtype != torch.float32:
        reason = same_dtype_peer_skip_reason(dev, encoder.dtype)
        if reason is None:
            engines.insert(1, st_engine(encoder.spec.path, dev, encoder.dtype))
        else:
            skipped[f"sentence-transformers {encoder.dtype}"] = reason
    results, outputs = [], {}
    with quiet_encoder_warnings():
        for engine in engines:
            logger.info("bench: %s %s on %d texts", engine.name, engine.dtype, len(texts))
            result, out = measure(engine, texts, tokens, rounds, dev)
            if buckets:
                result.buckets = bucket_throughput(engine, texts, lengths, dev)
            results.append(result)
            outputs[result.label] = out
    add_ratios(results, outputs)
    env = environment(
        dev,
        encoder.dtype,
        texts=len(texts),
        tokens=tokens,
        truncated=int(encoder.tokenizer(list(texts)).truncated.sum()),
        rounds=rounds,
        st_batch_size=ST_BATCH_SIZE,
        model=str(encoder.spec.path),
    )
    return BenchReport(env, len(texts), tokens, results, skipped)


@contextlib.contextmanager
def quiet_encoder_warnings():
    """Silence the encoder's per-call truncation warning while the same texts run many times
    (the report counts truncated texts once instead)."""
    encoder_logger = logging.getLogger("mlservices.encoder")
    level = encoder_logger.level
    encoder_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        encoder_logger.setLevel(level)


def same_dtype_peer_skip_reason(device: torch.device, dtype: torch.dtype) -> str | None:
    """Why sentence-transformers in ``dtype`` is not run as a peer here, or None to run it."""
    from mlservices import hardware

    if device.type == "cpu" and dtype == torch.bfloat16 and not hardware.cpu_has_fast_bf16():
        flags = hardware.cpu_info()["flags"]
        return (
            "this CPU has neither AMX-BF16 nor AVX512-BF16 "
            f"(amx_bf16={flags['amx_bf16']}, avx512_bf16={flags['avx512_bf16']}): bf16 is "
            "emulated and slower than fp32, so it is no meaningful peer"
        )
    if device.type == "cpu" and dtype == torch.float16:
        return "fp16 matmuls on CPU are emulated; no meaningful peer"
    return None


def bucket_throughput(
    engine: Engine, texts: Sequence[str], lengths: np.ndarray, device: torch.device
) -> dict[str, float]:
    """Tokens/s of one timed call per text-length bucket (after the full-run warm-up)."""
    out = {}
    for label, indices in length_buckets(lengths).items():
        subset = [texts[i] for i in indices]
        timing = time_rounds(lambda s=subset: engine.encode(s), 1, warmup=0, device=device)
        out[label] = float(lengths[indices].sum()) / timing.median
    return out


def add_ratios(results: list[EngineResult], outputs: dict[str, np.ndarray]) -> None:
    """Fill each result's ratios and min cosine against sentence-transformers fp32 (and same
    dtype), all measured in this run."""
    by_label = {r.label: r for r in results}
    st32 = by_label.get("sentence-transformers float32")
    for r in results:
        if st32 is not None:
            r.ratio_vs_st_fp32 = r.tokens_per_s / st32.tokens_per_s
            r.min_cosine_vs_st_fp32 = min_cosine(outputs[r.label], outputs[st32.label])
        same = by_label.get(f"sentence-transformers {r.dtype}")
        if same is not None:
            r.ratio_vs_st_same_dtype = r.tokens_per_s / same.tokens_per_s


def format_table(report: BenchReport) -> str:
    """A fixed-width table: one row per engine."""
    header = (
        "engine",
        "dtype",
        "texts/s",
        "tokens/s",
        "x ST fp32",
        "x ST same",
        "min cos",
        "peak MiB",
    )
    rows = [header]
    for r in report.results:
        rows.append(
            (
                r.engine,
                r.dtype,
                f"{r.texts_per_s:,.1f}",
                f"{r.tokens_per_s:,.0f}",
                _fmt(r.ratio_vs_st_fp32, "{:.2f}"),
                _fmt(r.ratio_vs_st_same_dtype, "{:.2f}"),
                _fmt(r.min_cosine_vs_st_fp32, "{:.7f}"),
                f"{r.peak_memory_mib:,.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i > 1 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def plot_buckets(report: BenchReport, path: Path) -> str | None:
    """Write a grouped bar chart of tokens/s per text-length bucket to ``path`` (PNG).

    Returns None on success, or why no plot was written (matplotlib missing, nothing to plot).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'mlservices[bench]')"
    labels = [b for b in bucket_labels() if any(b in r.buckets for r in report.results)]
    if not labels:
        return "no bucket timings to plot"
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(report.results)
    for i, r in enumerate(report.results):
        xs = [j + (i - (len(report.results) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, [r.buckets.get(b, 0.0) for b in labels], width, label=r.label)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("text length (tokens, special tokens included)")
    ax.set_ylabel("real tokens / s")
    env = report.environment
    ax.set_title(f"Throughput by text length on {env['device']} ({report.texts} texts)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def main(args) -> int:
    """The ``mlservices bench`` handler: measure, print the table, write JSON and the plot."""
    from mlservices.errors import ValidationError

    if args.texts <= 0:
        raise ValidationError(f"--texts must be a positive number, got {args.texts}")
    if args.rounds <= 0:
        raise ValidationError(f"--rounds must be a positive number, got {args.rounds}")
    texts = read_sample_texts(args.texts, Path(args.input) if args.input else SAMPLE_CORPUS)
    if len(texts) < args.texts:
        logger.warning("bench: the corpus has only %d texts (asked for %d)", len(texts), args.texts)
    report = run_bench(
        texts,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        rounds=args.rounds,
        buckets=not args.no_plot,
    )
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = report.environment
    print(
        f"{report.texts} texts ({env['sizes']['truncated']} truncated at max_seq_length), "
        f"{report.tokens} real tokens on {env['device']} ({env['torch_threads']} threads)"
    )
    print(format_table(report))
    for peer, reason in report.skipped.items():
        print(f"skipped {peer}: {reason}")
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"results: {json_path}")
    if not args.no_plot:
        png = out_dir / "throughput_by_length.png"
        why_not = plot_buckets(report, png)
        print(f"plot: {png}" if why_not is None else f"plot skipped: {why_not}")
    return 0


def add_arguments(parser) -> None:
    """The ``mlservices bench`` options (the CLI's subparser calls this)."""
    parser.add_argument("--texts", type=int, default=600, help="texts to embed (default 600)")
    parser.add_argument(
        "--input",
        default=None,
        help="a .jsonl corpus with a 'text' field (default: the shipped sample)",
    )
    parser.add_argument("--model", default=None, help="model folder (default: all-MiniLM-L6-v2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: automatic)")
    parser.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "float16", "bfloat16"],
        help="our compute dtype (default float32)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="timed rounds per engine")
    parser.add_argument(
        "--output-dir",
        default="mlservices-bench",
        help="where bench.json and the PNG plot go (default ./mlservices-bench)",
    )
    parser.add_argument(
        "--no-plot", action="store_true", help="skip the per-length runs and the plot"
    )
