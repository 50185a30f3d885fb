"""Loading model folders: Dense/Normalize stacks, plain Hugging Face BERT folders, pickle
checkpoints, and clear errors for what we do not support."""

from __future__ import annotations

import datetime
import json
import shutil

import pytest
import torch
from helpers import assert_parity
from sentence_transformers import SentenceTransformer
from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

from mlservices import Encoder
from mlservices.errors import ModelLoadError, UnsupportedModelError


@pytest.fixture(scope="module")
def plain_hf_folder(model_path, tmp_path_factory):
    """A plain Hugging Face BERT folder (no modules.json), saved by transformers itself."""
    from transformers import AutoModel, AutoTokenizer

    folder = tmp_path_factory.mktemp("plain") / "bert"
    AutoModel.from_pretrained(str(model_path)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(model_path)).save_pretrained(folder)
    return folder


def test_dense_and_normalize_stack(model_path, tmp_path, corpus_texts):
    torch.manual_seed(0)
    modules = [
        Transformer(str(model_path), max_seq_length=128),
        Pooling(384, pooling_mode="cls"),
        Dense(384, 96, activation_function=torch.nn.Tanh()),
        Normalize(),
        Dense(96, 64),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "stack"))
    texts = corpus_texts[:40]
    theirs = SentenceTransformer(str(tmp_path / "stack"), device="cpu").encode(texts)
    ours = Encoder.from_pretrained(tmp_path / "stack", device="cpu")
    assert ours.max_seq_length == 128 and ours.embedding_dimension == 64
    assert_parity(ours.encode(texts), theirs)


def test_plain_hugging_face_folder_uses_mean_pooling(plain_hf_folder, corpus_texts):
    texts = corpus_texts[:40]
    theirs = SentenceTransformer(str(plain_hf_folder), device="cpu").encode(texts)
    assert_parity(Encoder.from_pretrained(plain_hf_folder, device="cpu").encode(texts), theirs)


def test_pickle_checkpoint_loads_with_weights_only(plain_hf_folder, tmp_path, corpus_texts):
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(plain_hf_folder, folder)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    texts = corpus_texts[:8]
    reference = Encoder.from_pretrained(plain_hf_folder, device="cpu").encode(texts)
    assert_parity(Encoder.from_pretrained(folder, device="cpu").encode(texts), reference)


def test_pickle_with_code_is_refused(plain_hf_folder, tmp_path):
    folder = tmp_path / "evil"
    shutil.copytree(plain_hf_folder, folder)
    (folder / "model.safetensors").unlink()
    # Any global outside torch's weights-only allowlist stands in for code a pickle could run.
    payload = {"weights": torch.zeros(1), "payload": datetime.datetime(2024, 1, 1)}
    torch.save(payload, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        Encoder.from_pretrained(folder, device="cpu")


def test_unsupported_architecture_names_it_and_lists_supported(plain_hf_folder, tmp_path):
    folder = tmp_path / "gpt2ish"
    shutil.copytree(plain_hf_folder, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="gpt2", architectures=["GPT2Model"])
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError) as info:
        Encoder.from_pretrained(folder, device="cpu")
    assert "gpt2" in str(info.value) and "GPT2Model" in str(info.value)
    assert "supported: bert" in str(info.value)


def test_unsupported_module_and_pooling_fail_at_load(model_path, tmp_path):
    from conftest import make_model_variant

    folder = make_model_variant(model_path, tmp_path / "wm", {"pooling_mode": "weightedmean"})
    with pytest.raises(UnsupportedModelError, match="weightedmean"):
        Encoder.from_pretrained(folder, device="cpu")
    lstm = make_model_variant(model_path, tmp_path / "lstm")
    modules = json.loads((lstm / "modules.json").read_text())
    modules.insert(1, {"idx": 9, "name": "9", "path": "", "type": "sentence_transformers.LSTM"})
    (lstm / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsupportedModelError, match="LSTM"):
        Encoder.from_pretrained(lstm, device="cpu")


def test_missing_folder_and_missing_weights(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        Encoder.from_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match="no weights"):
        Encoder.from_pretrained(tmp_path / "empty")


def test_bad_device_and_dtype_are_refused():
    from mlservices.errors import ValidationError

    with pytest.raises(ValidationError, match="dtype"):
        Encoder.from_pretrained(dtype="int4")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="no CUDA device"):
            Encoder.from_pretrained(device="cuda")
