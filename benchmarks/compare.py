"""Compare a pytest-benchmark JSON against the stored baseline of the same device.

    python -m benchmarks.compare NEW.json [--baseline PATH] [--threshold 0.10] [--save]

Baselines live in ``benchmarks/results/<device>/<suite>.json`` (suite = the test module without
``test_``, e.g. ``e2e`` or ``kernels``), each beside a ``<suite>.md`` summary. For every
benchmark present in both runs it compares the throughput (``extra_info['throughput']``, else
1 / median time) and the peak memory (``extra_info['peak_memory_mib']``, when recorded), and
fails when throughput drops or memory grows by more than the suite's threshold
(``benchmarks/thresholds.json``; ``--threshold`` overrides it). Memory growth below
``MEMORY_FLOOR_MIB`` is never flagged (sampled RSS moves by a few pages between runs).

``--save`` stores the new run as the baseline of its device (per suite) once it passed, or when
no baseline exists yet. Quick-mode runs are never compared with, nor saved as, full baselines.

Exit status: 0 no regression, 1 a regression, 2 nothing could be compared (bad input, no
baseline given and none stored for the device, device mismatch).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.json"
DEFAULT_THRESHOLD = 0.10
MEMORY_FLOOR_MIB = 1.0

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2


class CompareError(Exception):
    """The inputs cannot be compared; the message says why and what to do."""


@dataclass
class Row:
    """One benchmark compared with its baseline."""

    suite: str
    name: str
    metric: str  # "throughput" or "peak memory"
    unit: str
    baseline: float
    new: float
    threshold: float

    @property
    def change(self) -> float:
        return self.new / self.baseline - 1.0 if self.baseline else 0.0

    @property
    def regressed(self) -> bool:
        if self.metric == "throughput":
            return self.change < -self.threshold
        return self.change > self.threshold and self.new - self.baseline > MEMORY_FLOOR_MIB


def load_run(path: Path) -> dict:
    """A pytest-benchmark JSON file (``--benchmark-json``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise CompareError(
            f"{path} has no 'benchmarks' list: is it a pytest-benchmark --benchmark-json file?"
        )
    return data


def suite_of(bench: dict) -> str:
    """``benchmarks/test_e2e.py::test_x[...]`` -> ``e2e``."""
    module = str(bench.get("fullname", bench.get("name", ""))).split("::")[0]
    return Path(module).stem.removeprefix("test_") or "unknown"


def device_of(bench: dict, run: dict) -> str:
    env = bench.get("extra_info", {}).get("env", {})
    if "device" in env:
        return str(env["device"])
    run_env = run.get("mlservices", {}).get("environment", {})
    if "device" in run_env:
        return str(run_env["device"])
    raise CompareError(
        f"benchmark {bench.get('fullname')!r} records no device (extra_info.env.device): "
        "was it recorded with benchmarks._common.record()?"
    )


def is_quick(bench: dict, run: dict) -> bool:
    return bool(bench.get("extra_info", {}).get("quick", run.get("mlservices", {}).get("quick")))


def throughput(bench: dict) -> tuple[float, str] | None:
    """The benchmark's throughput and unit: recorded, or 1 / median time (calls/s)."""
    info = bench.get("extra_info", {})
    if "throughput" in info:
        return float(info["throughput"]), str(info.get("throughput_unit", ""))
    median = (bench.get("stats") or {}).get("median")
    return (1.0 / median, "calls/s") if median else None


def split_by_suite(run: dict) -> dict[tuple[str, str], dict]:
    """The run's benchmarks grouped by (device, suite), each group a run of its own."""
    groups: dict[tuple[str, str], dict] = {}
    for bench in run["benchmarks"]:
        key = (device_of(bench, run), suite_of(bench))
        group = groups.setdefault(key, {k: v for k, v in run.items() if k != "benchmarks"})
        group.setdefault("benchmarks", []).append(bench)
    return groups


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, dict[str, float]]:
    """``{suite: {"throughput": t, "peak_memory": t}}`` with a ``default`` entry."""
    config = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    default = {"throughput": DEFAULT_THRESHOLD, "peak_memory": DEFAULT_THRESHOLD}
    default.update(config.get("default", {}))
    out = {"default": default}
    for suite, values in config.get("suites", {}).items():
        out[suite] = {**default, **values}
    return out


def compare_runs(
    new: dict,
    baseline: dict,
    thresholds: dict[str, dict[str, float]],
    override: float | None = None,
) -> tuple[list[Row], list[str]]:
    """Rows for every benchmark in both runs, and notes on what was not compared."""
    base_by_name = {b["fullname"]: b for b in baseline["benchmarks"]}
    rows, notes = [], []
    for bench in new["benchmarks"]:
        name, suite = bench["fullname"], suite_of(bench)
        limits = thresholds.get(suite, thresholds["default"])
        old = base_by_name.get(name)
        if old is None:
            notes.append(f"new benchmark, no baseline: {name}")
            continue
        if is_quick(bench, new) != is_quick(old, baseline):
            notes.append(f"not compared (quick mode in one run only): {name}")
            continue
        if _sizes(bench) != _sizes(old):
            notes.append(f"not compared (sizes differ: {_sizes(old)} -> {_sizes(bench)}): {name}")
            continue
        rows.extend(_metric_rows(suite, name, bench, old, limits, override))
    for name in sorted(set(base_by_name) - {b["fullname"] for b in new["benchmarks"]}):
        notes.append(f"in the baseline only: {name}")
    return rows, notes


def _sizes(bench: dict) -> object:
    return bench.get("extra_info", {}).get("env", {}).get("sizes")


def _metric_rows(suite, name, bench, old, limits, override) -> list[Row]:
    rows = []
    new_tp, old_tp = throughput(bench), throughput(old)
    if new_tp is not None and old_tp is not None:
        limit = limits["throughput"] if override is None else override
        rows.append(Row(suite, name, "throughput", new_tp[1], old_tp[0], new_tp[0], limit))
    new_mem = bench.get("extra_info", {}).get("peak_memory_mib")
    old_mem = old.get("extra_info", {}).get("peak_memory_mib")
    if new_mem is not None and old_mem is not None:
        limit = limits["peak_memory"] if override is None else override
        rows.append(Row(suite, name, "peak memory", "MiB", float(old_mem), float(new_mem), limit))
    return rows


def format_rows(rows: list[Row]) -> str:
    lines = []
    for r in rows:
        flag = "REGRESSION" if r.regressed else "ok"
        lines.append(
            f"{flag:<10} {r.change:+7.1%} (limit {r.threshold:.0%})  {r.metric:<11} "
            f"{r.baseline:,.4g} -> {r.new:,.4g} {r.unit}  {r.name}"
        )
    return "\n".join(lines)


def summary_markdown(run: dict, device: str, suite: str) -> str:
    """A small human summary of a stored run: one line per benchmark."""
    commit = run.get("commit_info", {}).get("id", "unknown")
    lines = [
        f"# {suite} on {device}",
        "",
        f"Commit {str(commit)[:12]}, pytest-benchmark run of {run.get('datetime', '?')}.",
        "",
        "| benchmark | throughput | median s | peak MiB |",
        "| --- | --- | --- | --- |",
    ]
    for bench in run["benchmarks"]:
        tp = throughput(bench)
        info = bench.get("extra_info", {})
        median = info.get("median_s", (bench.get("stats") or {}).get("median"))
        mem = info.get("peak_memory_mib")
        lines.append(
            f"| {bench['name']} | {'-' if tp is None else f'{tp[0]:,.4g} {tp[1]}'} | "
            f"{'-' if median is None else f'{median:.4g}'} | "
            f"{'-' if mem is None else f'{mem:,.1f}'} |"
        )
    return "\n".join(lines) + "\n"


def save_baseline(run: dict, device: str, suite: str, results_dir: Path = RESULTS_DIR) -> Path:
    folder = results_dir / device
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{suite}.json"
    path.write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    (folder / f"{suite}.md").write_text(summary_markdown(run, device, suite), encoding="utf-8")
    return path


def main(argv: list[str] | None = None, results_dir: Path = RESULTS_DIR) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("new", type=Path, help="pytest-benchmark JSON of the new run")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="baseline JSON (default: benchmarks/results/<device>/<suite>.json)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="allowed fraction for every metric, overriding thresholds.json",
    )
    parser.add_argument("--thresholds-file", type=Path, default=THRESHOLDS_FILE)
    parser.add_argument(
        "--save",
        action="store_true",
        help="store the new run as the device's baseline when it passes",
    )
    args = parser.parse_args(argv)
    try:
        return _run(args, results_dir)
    except CompareError as exc:
        print(f"compare: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE


def _run(args, results_dir: Path) -> int:
    if args.threshold is not None and not 0 <= args.threshold < 10:
        raise CompareError(f"--threshold must be a fraction such as 0.10, got {args.threshold}")
    new = load_run(args.new)
    if not new["benchmarks"]:
        raise CompareError(
            f"{args.new} holds no timed benchmarks (was the run made with --benchmark-disable?)"
        )
    thresholds = load_thresholds(args.thresholds_file)
    explicit = load_run(args.baseline) if args.baseline is not None else None
    regressed, compared = False, 0
    for (device, suite), group in split_by_suite(new).items():
        if explicit is not None:
            baseline = {**explicit, "benchmarks": _of_suite(explicit["benchmarks"], suite)}
        else:
            baseline = _stored(results_dir, device, suite)
        if baseline is None:
            print(f"{suite} on {device}: no stored baseline in {results_dir / device}")
            if args.save and not is_quick(group["benchmarks"][0], group):
                print(
                    f"  saved as the baseline: {save_baseline(group, device, suite, results_dir)}"
                )
            continue
        _check_same_device(baseline, device, args)
        rows, notes = compare_runs(group, baseline, thresholds, args.threshold)
        compared += len(rows)
        print(f"{suite} on {device}:")
        if rows:
            print(format_rows(rows))
        for note in notes:
            print(f"  note: {note}")
        suite_regressed = any(r.regressed for r in rows)
        regressed |= suite_regressed
        if args.save and not suite_regressed and not is_quick(group["benchmarks"][0], group):
            print(
                f"  saved as the new baseline: {save_baseline(group, device, suite, results_dir)}"
            )
    if regressed:
        print("compare: regression beyond the threshold (see REGRESSION lines)")
        return EXIT_REGRESSION
    if compared == 0 and not args.save:
        raise CompareError(
            "nothing was compared: no baseline shares a benchmark with this run; store one with "
            "--save (on the same device) or pass --baseline"
        )
    print(f"compare: {compared} metrics within their thresholds")
    return EXIT_OK


def _of_suite(benchmarks: list[dict], suite: str) -> list[dict]:
    return [b for b in benchmarks if suite_of(b) == suite]


def _stored(results_dir: Path, device: str, suite: str) -> dict | None:
    path = results_dir / device / f"{suite}.json"
    return load_run(path) if path.exists() else None


def _check_same_device(baseline: dict, device: str, args) -> None:
    devices = {device_of(b, baseline) for b in baseline["benchmarks"]}
    if devices and devices != {device}:
        raise CompareError(
            f"the baseline {args.baseline or ''} was measured on {sorted(devices)}, this run on "
            f"{device!r}: compare runs of the same device only"
        )


if __name__ == "__main__":
    sys.exit(main())
