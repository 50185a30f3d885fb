"""Shared pieces of the service tests: texts, a service runner and row comparison."""

from __future__ import annotations

import asyncio

import numpy as np

from mlservices.services import EmbeddingService
from mlservices.settings import Settings

# Single-token words of the MiniLM vocabulary, so a text of k words has k + 2 tokens.
WORDS = (
    "the a cat dog sat on mat river bank money fast slow blue green house tree runs quickly "
    "over under bright dark night day music plays loud soft city road car train plane "
    "apple orange sweet sour water fire earth wind cold warm old new small large"
).split()
TOLERANCE = 1e-5  # max abs difference: batch composition changes the GEMM blocking
DEADLINE_S = 120.0  # no test request may take longer; a hang fails the test instead


def random_texts(rng: np.random.Generator, n: int, min_words: int, max_words: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, rng.integers(min_words, max_words + 1))) for _ in range(n)]


def settings(**overrides) -> Settings:
    """CPU settings for tests: no env or file influence beyond what the test sets."""
    return Settings(device="cpu", **overrides)


def run(encoder, body, **overrides):
    """Start a service on the shared encoder, run ``await body(service)``, stop it."""

    async def main():
        service = EmbeddingService(settings(**overrides), encoder=encoder)
        async with service:
            return await asyncio.wait_for(body(service), DEADLINE_S)

    return asyncio.run(main())


def assert_rows(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape and got.dtype == np.float32
    if got.size:
        diff = float(np.abs(got - expected).max())
        assert diff <= TOLERANCE, f"max abs difference {diff:.3g} > {TOLERANCE}"
