"""`mlservices bench` on a few texts of the shipped sample (real model, real sentence-transformers),
and the measurement primitives it shares with the benchmark suites."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch

from mlservices import bench, cli

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench")
    code = cli.main(["bench", "--texts", "12", "--device", "cpu", "--output-dir", str(out_dir)])
    return code, out_dir


def test_bench_prints_table_and_writes_json(bench_run, capsys):
    code, out_dir = bench_run
    assert code == 0
    report = json.loads((out_dir / "bench.json").read_text())
    assert report["texts"] == 12 and report["tokens"] > 12
    assert report["environment"]["device"] == bench.environment("cpu")["device"]
    assert set(report["environment"]["cpu_flags"]) >= {"avx512f", "amx_bf16"}
    by_engine = {r["engine"]: r for r in report["results"]}
    assert set(by_engine) == {"sentence-transformers", "mlservices"}
    ours = by_engine["mlservices"]
    assert ours["dtype"] == "float32"
    assert ours["min_cosine_vs_st_fp32"] >= 0.99999
    assert ours["tokens_per_s"] > 0 and ours["ratio_vs_st_fp32"] > 0
    assert ours["timing"]["rounds"] == 1
    assert set(ours["buckets"]) <= set(bench.bucket_labels())
    assert by_engine["sentence-transformers"]["ratio_vs_st_fp32"] == pytest.approx(1.0)


def test_bench_writes_plot_or_says_why_not(bench_run, capsys):
    code, out_dir = bench_run
    png = out_dir / "throughput_by_length.png"
    if HAS_MATPLOTLIB:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not png.exists()
        report = bench.BenchReport({"device": "x"}, 1, 1, [])
        assert "matplotlib is not installed" in bench.plot_buckets(report, png)


def test_bench_table_columns():
    result = bench.EngineResult(
        "mlservices",
        "float32",
        10,
        500,
        {"rounds": 1},
        5.0,
        250.0,
        12.5,
        min_cosine_vs_st_fp32=0.9999951,
        ratio_vs_st_fp32=1.8,
    )
    table = bench.format_table(bench.BenchReport({"device": "x"}, 10, 500, [result]))
    header, rule, row = table.splitlines()
    for column in ("texts/s", "tokens/s", "x ST fp32", "min cos", "peak MiB"):
        assert column in header
    assert "250" in row and "1.80" in row and "0.9999951" in row and "12.5" in row


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--texts", "0"], "--texts must be a positive number, got 0"),
        (["--rounds", "0"], "--rounds must be a positive number, got 0"),
        (["--dtype", "int4"], "invalid choice: 'int4'"),
    ],
)
def test_bench_bad_arguments_exit_non_zero(argv, message, tmp_path, capsys):
    try:
        code = cli.main(["bench", *argv, "--output-dir", str(tmp_path)])
    except SystemExit as exc:  # argparse refuses a bad choice itself
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_length_buckets_cover_every_text():
    lengths = np.array([3, 16, 17, 64, 65, 256, 300])
    buckets = bench.length_buckets(lengths)
    assert list(buckets) == ["1-16", "17-32", "33-64", "65-128", "129-256", ">256"]
    assert sorted(np.concatenate(list(buckets.values())).tolist()) == list(range(len(lengths)))
    assert buckets["1-16"].tolist() == [0, 1]


def test_encoder_flops_counts_linear_and_attention():
    hidden, layers = 384, 6
    per_text = 24 * hidden**2 * 10 + 4 * hidden * 10**2
    assert bench.encoder_flops([10, 10], hidden, layers) == pytest.approx(2 * layers * per_text)
    assert bench.encoder_flops([], hidden, layers) == 0.0


def test_peak_memory_sees_a_large_allocation():
    with bench.PeakMemory("cpu") as mem:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert mem.peak_mib >= 48


def test_timing_quantiles_and_min_cosine():
    timing = bench.Timing([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (timing.p20, timing.median, timing.p80) == pytest.approx((1.8, 3.0, 4.2))
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert bench.min_cosine(a, np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(2**-0.5)
