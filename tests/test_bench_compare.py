"""The regression comparer (benchmarks/compare.py) on synthetic pytest-benchmark JSON files."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

COMPARE_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("bench_compare_under_test", COMPARE_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def bench(
    name,
    throughput=None,
    median=0.5,
    memory=None,
    device="cpu-x",
    quick=False,
    suite="e2e",
    sizes=None,
):
    info = {"env": {"device": device, "sizes": sizes or {"texts": 100}}, "quick": quick}
    if throughput is not None:
        info["throughput"], info["throughput_unit"] = throughput, "tokens/s"
    if memory is not None:
        info["peak_memory_mib"] = memory
    return {
        "name": name,
        "fullname": f"benchmarks/test_{suite}.py::{name}",
        "stats": {"median": median},
        "extra_info": info,
    }


def write_run(path: Path, benchmarks: list[dict]) -> Path:
    run = {"machine_info": {}, "commit_info": {"id": "abc123"}, "datetime": "now"}
    path.write_text(json.dumps({**run, "benchmarks": benchmarks}), encoding="utf-8")
    return path


def run_compare(compare, tmp_path, base, new, *extra, results_dir=None):
    base_path = write_run(tmp_path / "base.json", base)
    new_path = write_run(tmp_path / "new.json", new)
    argv = [str(new_path), "--baseline", str(base_path), *extra]
    return compare.main(argv, results_dir=results_dir or tmp_path / "results")


def test_unchanged_and_small_drop_pass(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0, memory=200.0)]
    assert run_compare(compare, tmp_path, base, base) == 0
    new = [bench("a", throughput=950.0, memory=210.0)]
    assert run_compare(compare, tmp_path, base, new) == 0
    assert "REGRESSION" not in capsys.readouterr().out


def test_throughput_drop_over_threshold_fails(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0), bench("b", throughput=10.0)]
    new = [bench("a", throughput=850.0), bench("b", throughput=10.0)]
    assert run_compare(compare, tmp_path, base, new) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "-15.0%" in out and "::a" in out


def test_memory_growth_over_threshold_fails_above_floor(compare, tmp_path):
    base = [bench("a", throughput=1000.0, memory=100.0)]
    assert run_compare(compare, tmp_path, base, [bench("a", throughput=1000.0, memory=120.0)]) == 1
    # +50% but only 0.5 MiB: under the floor, RSS sampling noise.
    base = [bench("a", throughput=1000.0, memory=1.0)]
    assert run_compare(compare, tmp_path, base, [bench("a", throughput=1000.0, memory=1.5)]) == 0


def test_threshold_option_and_per_suite_config(compare, tmp_path):
    base = [bench("a", throughput=1000.0)]
    new = [bench("a", throughput=800.0)]
    assert run_compare(compare, tmp_path, base, new) == 1
    assert run_compare(compare, tmp_path, base, new, "--threshold", "0.25") == 0
    config = tmp_path / "thresholds.json"
    config.write_text(json.dumps({"suites": {"e2e": {"throughput": 0.3}}}), encoding="utf-8")
    assert run_compare(compare, tmp_path, base, new, "--thresholds-file", str(config)) == 0
    other_suite = [bench("a", throughput=800.0, suite="kernels")]
    base_other = [bench("a", throughput=1000.0, suite="kernels")]
    args = ("--thresholds-file", str(config))
    assert run_compare(compare, tmp_path, base_other, other_suite, *args) == 1


def test_median_time_when_no_throughput_recorded(compare, tmp_path):
    base = [bench("a", median=1.0)]
    assert run_compare(compare, tmp_path, base, [bench("a", median=1.05)]) == 0
    assert run_compare(compare, tmp_path, base, [bench("a", median=1.25)]) == 1


def test_save_then_compare_against_stored_baseline(compare, tmp_path, capsys):
    results = tmp_path / "results"
    first = write_run(tmp_path / "first.json", [bench("a", throughput=1000.0, memory=50.0)])
    assert compare.main([str(first), "--save"], results_dir=results) == 0
    assert (results / "cpu-x" / "e2e.json").exists()
    summary = (results / "cpu-x" / "e2e.md").read_text()
    assert "| a | 1,000 tokens/s |" in summary and "abc123" in summary

    slower = write_run(tmp_path / "slower.json", [bench("a", throughput=700.0, memory=50.0)])
    assert compare.main([str(slower), "--save"], results_dir=results) == 1
    stored = json.loads((results / "cpu-x" / "e2e.json").read_text())
    assert stored["benchmarks"][0]["extra_info"]["throughput"] == 1000.0  # not overwritten

    faster = write_run(tmp_path / "faster.json", [bench("a", throughput=1200.0, memory=50.0)])
    assert compare.main([str(faster)], results_dir=results) == 0
    assert "+20.0%" in capsys.readouterr().out


def test_no_stored_baseline_for_device_is_unusable(compare, tmp_path, capsys):
    new = write_run(tmp_path / "new.json", [bench("a", throughput=1.0, device="other-gpu")])
    assert compare.main([str(new)], results_dir=tmp_path / "results") == 2
    assert "other-gpu" in capsys.readouterr().out


def test_device_mismatch_is_refused(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0, device="cpu-x")]
    new = [bench("a", throughput=1000.0, device="nvidia-h200")]
    assert run_compare(compare, tmp_path, base, new) == 2
    assert "same device" in capsys.readouterr().err


def test_quick_or_resized_runs_are_not_compared(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0)]
    assert run_compare(compare, tmp_path, base, [bench("a", throughput=1.0, quick=True)]) == 2
    assert "quick mode" in capsys.readouterr().out
    resized = [bench("a", throughput=1.0, sizes={"texts": 48})]
    assert run_compare(compare, tmp_path, base, resized) == 2
    assert "sizes differ" in capsys.readouterr().out


def test_new_and_missing_benchmarks_are_noted(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0), bench("gone", throughput=5.0)]
    new = [bench("a", throughput=1000.0), bench("added", throughput=5.0)]
    assert run_compare(compare, tmp_path, base, new) == 0
    out = capsys.readouterr().out
    assert "no baseline: benchmarks/test_e2e.py::added" in out
    assert "baseline only: benchmarks/test_e2e.py::gone" in out


@pytest.mark.parametrize(
    "content, message",
    [("not json", "is not JSON"), ('{"benchmarks": []}', "no timed benchmarks"), ("[]", "no 'b")],
)
def test_unusable_input_exits_2(compare, tmp_path, capsys, content, message):
    path = tmp_path / "new.json"
    path.write_text(content, encoding="utf-8")
    assert compare.main([str(path)], results_dir=tmp_path / "results") == 2
    assert message in capsys.readouterr().err


def test_explicit_baseline_is_matched_suite_by_suite(compare, tmp_path, capsys):
    base = [bench("a", throughput=1000.0), bench("k", throughput=5.0, suite="kernels")]
    assert run_compare(compare, tmp_path, base, [bench("a", throughput=1000.0)]) == 0
    out = capsys.readouterr().out
    assert "kernels" not in out and "baseline only" not in out
