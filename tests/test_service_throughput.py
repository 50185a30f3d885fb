"""Throughput of the embedding service with many concurrent callers vs one caller, and RSS over
time. A measurement, not a check: it runs only with MLSERVICES_MEASURE=1 and prints its table.

    MLSERVICES_MEASURE=1 pytest -s tests/test_service_throughput.py
"""

import asyncio
import gc
import os
import time

import numpy as np
import psutil
import pytest
from test_service_support import assert_rows, random_texts, settings

from mlservices.services import EmbeddingService

pytestmark = pytest.mark.skipif(
    os.environ.get("MLSERVICES_MEASURE") != "1", reason="a measurement: set MLSERVICES_MEASURE=1"
)
CALLERS, TEXTS_PER_CALLER = 200, 5


def rss_mib() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


async def timed(label, coroutine, n_texts, tokens, table):
    began = time.perf_counter()
    result = await coroutine
    seconds = time.perf_counter() - began
    table.append((label, seconds, n_texts / seconds, tokens / seconds, rss_mib()))
    return result


async def measure(encoder, requests, tokens):
    texts = [t for r in requests for t in r]
    table, memory = [], [("start", rss_mib())]
    service = EmbeddingService(settings(), encoder=encoder)
    async with service:
        memory.append(("after start + warm-up", rss_mib()))

        async def concurrent():
            return await asyncio.gather(*(service.embed_batch(r) for r in requests))

        async def one_at_a_time():
            return [await service.embed_text(t) for t in texts]

        async def one_caller_batches():
            return [await service.embed_batch(r) for r in requests]

        rows = await timed(
            f"{CALLERS} concurrent callers x {TEXTS_PER_CALLER} texts",
            concurrent(),
            len(texts),
            tokens,
            table,
        )
        memory.append((f"after {CALLERS} concurrent calls", rss_mib()))
        single = await timed(
            "1 caller, 1 text per request", one_at_a_time(), len(texts), tokens, table
        )
        memory.append((f"after {len(texts)} more calls", rss_mib()))
        await timed(
            f"1 caller, {TEXTS_PER_CALLER} texts per request",
            one_caller_batches(),
            len(texts),
            tokens,
            table,
        )
        memory.append((f"after {CALLERS} more calls", rss_mib()))
        batches = service.snapshot()["metrics"]["batch_texts"]
    began = time.perf_counter()
    direct = encoder.encode(texts, batch_size=256)
    seconds = time.perf_counter() - began
    table.append(
        (
            "Encoder.encode, all texts at once",
            seconds,
            len(texts) / seconds,
            tokens / seconds,
            rss_mib(),
        )
    )
    assert_rows(np.concatenate(rows), direct)
    assert_rows(np.stack(single), direct)
    return table, memory, batches


def test_throughput_concurrent_vs_single_caller(encoder):
    rng = np.random.default_rng(42)
    requests = [random_texts(rng, TEXTS_PER_CALLER, 4, 16) for _ in range(CALLERS)]
    tokens = int(sum(encoder.tokenizer(r).lengths.sum() for r in requests))
    table, memory, batches = asyncio.run(measure(encoder, requests, tokens))
    print(
        f"\n{CALLERS * TEXTS_PER_CALLER} texts, {tokens} tokens, torch threads "
        f"{__import__('torch').get_num_threads()}"
    )
    print(f"{'mode':45s} {'seconds':>8s} {'texts/s':>9s} {'tokens/s':>9s} {'RSS MiB':>8s}")
    for label, seconds, texts_s, tokens_s, rss in table:
        print(f"{label:45s} {seconds:8.2f} {texts_s:9.1f} {tokens_s:9.0f} {rss:8.1f}")
    print(f"texts per batch over the run: mean {batches['mean']:.1f}, max {batches['max']:.0f}")
    for label, rss in memory:
        print(f"RSS {label}: {rss:.1f} MiB")
