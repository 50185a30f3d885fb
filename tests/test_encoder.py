"""Encoder behaviour: batch invariance, input order, pooling modes, accelerate(), bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import make_model_variant
from helpers import assert_parity, max_abs_diff
from sentence_transformers import SentenceTransformer

import mlservices
from mlservices import Encoder
from mlservices.errors import InputTypeError, ValidationError

# Packed GEMMs of different row counts may block differently: allow float32 last-bit noise.
BATCH_NOISE = 1e-6


def test_results_do_not_depend_on_batching(encoder, corpus_texts):
    texts = corpus_texts[:120]
    reference = encoder.encode(texts, batch_size=32)
    for batch_size, max_tokens in ((1, None), (7, None), (120, None), (64, 300)):
        other = encoder.encode(texts, batch_size=batch_size, max_batch_tokens=max_tokens)
        assert max_abs_diff(other, reference) <= BATCH_NOISE, (batch_size, max_tokens)


def test_results_do_not_depend_on_batch_neighbours(encoder, corpus_texts):
    text = corpus_texts[3]
    alone = encoder.encode([text])
    crowded = encoder.encode(corpus_texts[10:40] + [text] + corpus_texts[40:70])
    assert max_abs_diff(crowded[30], alone[0]) <= BATCH_NOISE


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_come_back_in_input_order(encoder, corpus_texts, seed):
    rng = np.random.default_rng(seed)
    texts = [corpus_texts[i] for i in rng.choice(len(corpus_texts), 60, replace=False)]
    # Random lengths: cut each text at a random word count.
    texts = [" ".join(t.split()[: rng.integers(0, 80)]) for t in texts]
    batch_size = int(rng.integers(1, 40))
    forward = encoder.encode(texts, batch_size=batch_size)
    perm = rng.permutation(len(texts))
    shuffled = encoder.encode([texts[i] for i in perm], batch_size=batch_size)
    assert max_abs_diff(shuffled, forward[perm]) <= BATCH_NOISE


POOLING_CONFIGS = {
    "mean": {"pooling_mode": "mean"},
    "cls": {"pooling_mode": "cls"},
    "max": {"pooling_mode": "max"},
    "last": {"pooling_mode": "lasttoken"},
    "mean_sqrt_len": {"pooling_mode": "mean_sqrt_len_tokens"},
    "legacy_cls_booleans": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False},
    "legacy_max_booleans": {"pooling_mode_max_tokens": True},
    "mean_and_max": {"pooling_mode": ["mean", "max"]},
}


@pytest.mark.parametrize("name", sorted(POOLING_CONFIGS))
@pytest.mark.parametrize("normalize", [False, True])
def test_pooling_modes_match_sentence_transformers(
    name, normalize, model_path, tmp_path, corpus_texts
):
    folder = make_model_variant(
        model_path, tmp_path / name, POOLING_CONFIGS[name], normalize=normalize
    )
    texts = corpus_texts[:24] + ["", "x"]
    ours = Encoder.from_pretrained(folder, device="cpu").encode(texts)
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts)
    assert_parity(ours, theirs)


def test_accelerate_gives_identical_results(model_path, corpus_texts, caplog):
    st = SentenceTransformer(str(model_path), device="cpu")
    texts = corpus_texts[:48]
    before = st.encode(texts)
    before_single = st.encode("one text")
    accelerated = mlservices.accelerate(st)
    assert accelerated is st and hasattr(st, "mlservices_encoder")
    assert_parity(st.encode(texts), before)
    assert_parity(st.encode("one text")[None], before_single[None])
    assert_parity(st.encode(texts, batch_size=5, normalize_embeddings=True), before)

    with caplog.at_level(logging.WARNING, logger="mlservices.accelerate"):
        features = st.encode(texts[:2], output_value=None)
        st.encode(texts[:2], output_value=None)
    assert isinstance(features[0], dict), "output_value=None runs sentence-transformers' code"
    reasons = [r for r in caplog.records if "falling back" in r.getMessage()]
    assert len(reasons) == 1 and "output_value=None" in reasons[0].getMessage()


def test_accelerate_keeps_unsupported_models(model_path, caplog):
    from sentence_transformers.models import Pooling, Transformer
    from sentence_transformers.sentence_transformer.modules import Dropout

    transformer = Transformer(str(model_path))
    st = SentenceTransformer(modules=[transformer, Pooling(384), Dropout(0.1)], device="cpu")
    with caplog.at_level(logging.WARNING, logger="mlservices.accelerate"):
        same = mlservices.accelerate(st)
    assert same is st and not hasattr(st, "mlservices_encoder")
    assert any("Dropout" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("bad", "error", "index"),
    [
        (None, InputTypeError, 1),
        (3.5, InputTypeError, 1),
        ("lone \ud800 surrogate", ValidationError, 1),
    ],
)
def test_bad_items_raise_typed_errors_naming_the_index(encoder, bad, error, index):
    with pytest.raises(error) as info:
        encoder.encode(["fine", bad, "also fine"])
    assert info.value.context["index"] == index
    assert f"input {index}" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "float8"}, "precision"),
        ({"output_value": "nope"}, "output_value"),
        ({"truncate_dim": 1000}, "truncate_dim"),
        ({"prompt_name": "missing"}, "prompt_name"),
    ],
)
def test_bad_arguments_raise_validation_errors(encoder, kwargs, fragment):
    with pytest.raises(ValidationError, match=fragment):
        encoder.encode(["text"], **kwargs)


@pytest.mark.parametrize("bad", [{"a": 1, "b": 2}, {"a", "b"}])
def test_unordered_containers_are_refused(encoder, bad):
    with pytest.raises(ValidationError, match="ordered sequence"):
        encoder.encode(bad)


@pytest.mark.parametrize(
    "kwargs", [{"max_batch_tokens": 0}, {"max_batch_tokens": -5}, {"batch_size": True}]
)
def test_non_positive_budgets_are_refused(encoder, kwargs):
    with pytest.raises(ValidationError):
        encoder.encode(["text"], **kwargs)


def test_default_query_and_document_prompts(encoder, st_model):
    texts = ["what is a cat?", "a cat is an animal"]
    for name in ("query", "document"):
        assert_parity(
            encoder.encode(texts, prompt_name=name), st_model.encode(texts, prompt_name=name)
        )
