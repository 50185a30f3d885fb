"""Parity with sentence-transformers on real text, with the real bundled model (fp32, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_parity, spearman

SAMPLE = 1000  # texts in the default-run parity sample (a shuffled length mix)


@pytest.fixture(scope="module")
def raw_models(raw_model_path):
    """The default model without its Normalize module, in both libraries: unnormalised output."""
    from sentence_transformers import SentenceTransformer

    from mlservices import Encoder

    st = SentenceTransformer(str(raw_model_path), device="cpu")
    return Encoder.from_pretrained(raw_model_path, device="cpu"), st


def check_corpus_parity(texts, raw_models) -> None:
    """Unnormalised and normalised (ours fused in pooling; theirs ST's own F.normalize)."""
    ours, theirs = raw_models
    reference = theirs.encode(texts, convert_to_tensor=True)
    assert_parity(ours.encode(texts), reference)
    normalized = ours.encode(texts, normalize_embeddings=True)
    assert_parity(normalized, F.normalize(reference, p=2, dim=1))
    assert ours.last_stats.truncated > 0, "the corpus holds texts over 256 tokens"


def test_corpus_sample_parity(corpus_texts, raw_models):
    check_corpus_parity(corpus_texts[:SAMPLE], raw_models)


@pytest.mark.slow
def test_full_corpus_parity(corpus_texts, raw_models):
    check_corpus_parity(corpus_texts, raw_models)


def test_default_model_parity(corpus_texts, encoder, st_model):
    """The bundled model as shipped (its Normalize module included)."""
    texts = corpus_texts[SAMPLE : SAMPLE + 200]
    assert_parity(encoder.encode(texts), st_model.encode(texts))


def test_stsb_spearman_matches_published(encoder, stsb_test):
    """STS-B test: Spearman x 100 of cosine similarities = 82.03 (MTEB) +- 0.05."""
    scores, first, second = stsb_test
    a = encoder.encode(first, normalize_embeddings=True)
    b = encoder.encode(second, normalize_embeddings=True)
    value = 100 * spearman((a * b).sum(axis=1), scores)
    assert abs(value - 82.03) <= 0.05, f"Spearman x100 = {value:.3f}"


def test_empty_and_whitespace_texts(encoder, st_model):
    texts = ["", " ", "\t\n", "   word   ", "a"]
    assert_parity(encoder.encode(texts), st_model.encode(texts))


def test_texts_longer_than_max_seq_length(encoder, st_model, corpus_texts):
    long_texts = [" ".join(corpus_texts[:40]), "word " * 2000, corpus_texts[0] * 30]
    assert_parity(encoder.encode(long_texts), st_model.encode(long_texts))
    assert encoder.last_stats.truncated == 3
    assert encoder.last_stats.truncated_indices == [0, 1, 2]


def test_single_string_gives_a_vector(encoder, st_model):
    ours = encoder.encode("A single sentence.")
    assert ours.shape == (384,) and ours.dtype == np.float32
    assert_parity(ours[None], st_model.encode("A single sentence.")[None])


def test_output_containers_match_sentence_transformers(encoder, st_model):
    texts = ["one", "two words", "three words here"]
    tensor = encoder.encode(texts, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (3, 384)
    listed = encoder.encode(texts, convert_to_numpy=False)
    assert isinstance(listed, list) and all(t.shape == (384,) for t in listed)
    assert encoder.encode([]).shape == st_model.encode([]).shape
    assert encoder.encode([], convert_to_tensor=True).numel() == 0


@pytest.mark.parametrize("precision", ["int8", "uint8", "binary", "ubinary"])
def test_quantized_precisions_match(encoder, st_model, corpus_texts, precision):
    texts = corpus_texts[:64]
    ours = encoder.encode(texts, precision=precision)
    theirs = st_model.encode(texts, precision=precision)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    # Bucket edges can flip by one on last-bit differences; binary signs must agree.
    assert np.abs(ours.astype(np.int32) - theirs.astype(np.int32)).max() <= 1
    assert (ours != theirs).mean() < 0.001


def test_truncate_dim_and_prompt_match(encoder, st_model, corpus_texts):
    texts = corpus_texts[:32]
    assert_parity(
        encoder.encode(texts, truncate_dim=128, normalize_embeddings=True),
        st_model.encode(texts, truncate_dim=128, normalize_embeddings=True),
    )
    assert_parity(encoder.encode(texts, prompt="query: "), st_model.encode(texts, prompt="query: "))


def test_token_embeddings_match(encoder, st_model, corpus_texts):
    texts = corpus_texts[:16]
    ours = encoder.encode(texts, output_value="token_embeddings")
    theirs = st_model.encode(texts, output_value="token_embeddings")
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
        assert_parity(a, b)
