"""The CLI end to end on real files, and every bad-input case (exit non-zero, line named, no
traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_parity

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlservices.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd or REPO.parent,
        timeout=600,
    )


@pytest.fixture(scope="module")
def texts(corpus_texts) -> list[str]:
    return corpus_texts[:50]


def test_embed_jsonl_end_to_end(tmp_path, texts, encoder):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(texts)))
    out = tmp_path / "out" / "vectors.npy"
    result = run_cli("embed", str(source), "-o", str(out), "--field", "body", "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    matrix = np.load(out)
    assert matrix.dtype == np.float32 and matrix.shape == (50, 384)
    assert_parity(matrix, encoder.encode(texts))
    for label in ("texts", "tokens", "tokens/s", "texts truncated", "padding avoided", "peak"):
        assert label in result.stdout, label
    first = result.stdout.splitlines()[0].split()
    assert first == ["texts", "50"]


def test_embed_txt_with_normalize(tmp_path, texts, encoder):
    lines = [t.replace("\n", " ") for t in texts[:20]]
    source = tmp_path / "in.txt"
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "v.npy"
    result = run_cli("embed", str(source), "-o", str(out), "--normalize")
    assert result.returncode == 0, result.stderr
    assert_parity(np.load(out), encoder.encode(lines, normalize_embeddings=True))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "ok"}\nnot json at all\n', "line 2 is not valid JSON"),
        ('{"text": "ok"}\n{"title": "no text"}\n', "line 2 has no field 'text'"),
        ('{"text": "ok"}\n{"text": "fine"}\n{"text": 42}\n', "line 3: field 'text' is int"),
        ('{"text": "ok"}\n["a", "list"]\n', "line 2 is a JSON list"),
        ('{"text": "ok"}\n{"text": null}\n', "line 2: field 'text' is NoneType"),
    ],
)
def test_bad_jsonl_lines_are_named(tmp_path, content, message):
    source = tmp_path / "bad.jsonl"
    source.write_text(content)
    result = run_cli("embed", str(source), "-o", str(tmp_path / "x.npy"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "x.npy").exists()


def test_missing_file_and_bad_suffixes(tmp_path):
    result = run_cli("embed", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "x.npy"))
    assert result.returncode == 2 and "does not exist" in result.stderr
    (tmp_path / "in.csv").write_text("a,b\n")
    result = run_cli("embed", str(tmp_path / "in.csv"), "-o", str(tmp_path / "x.npy"))
    assert result.returncode == 2 and ".txt" in result.stderr
    (tmp_path / "in.txt").write_text("a\n")
    result = run_cli("embed", str(tmp_path / "in.txt"), "-o", str(tmp_path / "x.csv"))
    assert result.returncode == 2 and ".npy" in result.stderr
    assert "Traceback" not in result.stderr


def test_info_lists_versions_and_backends():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    for fragment in ("torch", "cpu:", "extension mlservices._C: built", "varlen_attention"):
        assert fragment in result.stdout
    assert "pool              cpu: cpu, reference" in result.stdout


def test_no_top_level_kernels_module_is_ours():
    """kernels/ ships as mlservices.kernels; `import kernels` from the repo root must still find
    the unrelated distribution transformers needs (or nothing), never our folder."""
    code = (
        "import kernels, mlservices.kernels as mk, pathlib;"
        "assert pathlib.Path(mk.__file__).parent.name == 'kernels';"
        "print(kernels.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert str(REPO / "kernels") not in result.stdout
    from importlib.metadata import distribution

    files = [str(f) for f in distribution("mlservices").files or []]
    assert not any(f.startswith("kernels/") for f in files)


def test_txt_lines_end_only_at_newline(tmp_path, encoder):
    """Vertical tabs, NEL and U+2028 belong to the text: row i is line i."""
    lines = ["a\x0bb\x1cc", "line one\x85still one", "para\u2028graph", "plain"]
    source = tmp_path / "odd.txt"
    source.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    result = run_cli("embed", str(source), "-o", str(tmp_path / "o.npy"))
    assert result.returncode == 0, result.stderr
    assert_parity(np.load(tmp_path / "o.npy"), encoder.encode(lines))


def test_jsonl_string_with_line_separator_is_valid(tmp_path, encoder):
    source = tmp_path / "ls.jsonl"
    source.write_text(json.dumps({"text": "first\u2028second"}, ensure_ascii=False) + "\n")
    result = run_cli("embed", str(source), "-o", str(tmp_path / "o.npy"))
    assert result.returncode == 0, result.stderr
    assert_parity(np.load(tmp_path / "o.npy"), encoder.encode(["first\u2028second"]))


def test_empty_input_writes_an_empty_matrix(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    result = run_cli("embed", str(tmp_path / "empty.txt"), "-o", str(tmp_path / "e.npy"))
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "e.npy").shape == (0, 384)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"ok\n\xff\xfe bad\n", "line 2 is not UTF-8 text"),
        (b'{"text": "a"}\n\n{"text": "\\ud800"}\n', "line 3 holds an invalid code point"),
    ],
)
def test_undecodable_lines_are_named(tmp_path, content, message):
    source = tmp_path / ("bad.jsonl" if content.startswith(b"{") else "bad.txt")
    source.write_bytes(content)
    result = run_cli("embed", str(source), "-o", str(tmp_path / "x.npy"))
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_device_and_unwritable_output(tmp_path):
    (tmp_path / "in.txt").write_text("a\n")
    result = run_cli(
        "embed", str(tmp_path / "in.txt"), "-o", str(tmp_path / "x.npy"), "--device", "tpu"
    )
    assert result.returncode == 2 and "not a valid device" in result.stderr
    result = run_cli("embed", str(tmp_path / "in.txt"), "-o", "/proc/nowhere/x.npy")
    assert result.returncode == 2 and "cannot write" in result.stderr
    assert "Traceback" not in result.stderr
