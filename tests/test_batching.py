"""Dynamic batching under load, on the real model: concurrent callers get their own rows, bad
items and cancellations stay local, out-of-memory splits lose nothing, threads agree."""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from test_service_support import WORDS, assert_rows, random_texts, run

from mlservices.errors import InputTypeError, ResourceExhaustedError, ValidationError
from mlservices.state import ServiceState


@pytest.fixture(scope="module")
def pool(encoder):
    """240 short texts of 1-8 words, 8 of 40-120 words, and their Encoder.encode rows."""
    rng = np.random.default_rng(1)
    texts = random_texts(rng, 240, 1, 8) + random_texts(rng, 8, 40, 120)
    return texts, dict(zip(texts, encoder.encode(texts, batch_size=256)))


def expected(reference: dict, texts: list[str]) -> np.ndarray:
    return np.stack([reference[t] for t in texts]) if texts else np.zeros((0, 384), np.float32)


def test_1000_concurrent_requests_get_their_own_rows(encoder, pool):
    texts, reference = pool
    rng = np.random.default_rng(2)
    sizes = rng.choice([0, 1, 1, 1, 2, 2, 3, 5, 9], size=1000)
    requests = [[texts[j] for j in rng.integers(0, len(texts), size=k)] for k in sizes]

    async def body(service):
        results = await asyncio.gather(*(service.embed_batch(r) for r in requests))
        return results, service._batcher.batches, service.snapshot()

    results, batches, snap = run(encoder, body, max_wait_ms=20, max_batch_tokens=2048)
    for request, got in zip(requests, results):
        assert_rows(got, expected(reference, request))
    metrics = snap["metrics"]
    assert metrics["requests_total{operation=embed_batch,status=ok}"] == 1000
    assert batches < sum(sizes) / 4, f"{batches} batches for {sum(sizes)} texts: no coalescing"
    assert metrics["batch_tokens"]["max"] <= 2048
    assert metrics["padding_avoided_tokens_total"] > 0


def test_bad_items_fail_alone_with_their_index(encoder, pool):
    texts, reference = pool
    bad = {
        3: ["fine", None, "fine too"],
        7: [42],
        11: ["ok", "ok", "lone \ud83d surrogate"],
        15: ["x" * 301],
        19: ["ok", 2.5],
    }
    want = {3: (InputTypeError, 1), 7: (InputTypeError, 0), 11: (ValidationError, 2)}
    want.update({15: (ValidationError, 0), 19: (InputTypeError, 1)})
    good = {i: texts[i * 3 : i * 3 + 3] for i in range(24) if i not in bad}
    requests = [bad.get(i, good.get(i)) for i in range(24)]

    async def body(service):
        calls = (service.embed_batch(r) for r in requests)
        return await asyncio.gather(*calls, return_exceptions=True)

    results = run(encoder, body, max_wait_ms=20, max_text_chars=300)
    for i, result in enumerate(results):
        if i in bad:
            kind, index = want[i]
            assert isinstance(result, kind), f"request {i}: {result!r}"
            assert result.context["index"] == index and f"input {index}" in str(result)
        else:
            assert_rows(result, expected(reference, good[i]))


class ForwardGate:
    """Holds the real encoder's forward until released (fault injection on the real model)."""

    def __init__(self, encoder):
        self.forward = encoder.forward
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, batch):
        self.entered.set()
        assert self.release.wait(60), "the test never released the forward pass"
        return self.forward(batch)


def test_a_cancelling_caller_does_not_disturb_its_batch(encoder, pool, monkeypatch):
    texts, reference = pool
    gate = ForwardGate(encoder)
    monkeypatch.setattr(encoder, "forward", gate)
    requests = [texts[i * 4 : i * 4 + 4] for i in range(12)]

    async def body(service):
        gate.release.set()  # the warm-up has run; hold the next batches
        gate.release.clear()
        tasks = [asyncio.create_task(service.embed_batch(r)) for r in requests]
        await asyncio.to_thread(gate.entered.wait, 30)  # the first batch is in the forward
        await asyncio.sleep(0.05)  # the rest are queued behind it
        for i in (0, 5, 11):  # one in the running batch, two still queued
            tasks[i].cancel()
        gate.release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    gate.release.set()
    results = run(encoder, body, max_wait_ms=10, max_batch_texts=16)
    for i, result in enumerate(results):
        if i in (0, 5, 11):
            assert isinstance(result, asyncio.CancelledError)
        else:
            assert_rows(result, expected(reference, requests[i]))


def test_input_longer_than_the_token_budget(encoder):
    long_text = " ".join(["cat"] * 100)  # 102 tokens

    async def strict(service):
        ok = service.embed_batch(["a dog"])
        refused = asyncio.wait_for(service.embed_batch(["fine", long_text]), 5)
        return await asyncio.gather(ok, refused, return_exceptions=True)

    ok, refused = run(encoder, strict, max_batch_tokens=32)
    assert_rows(ok, encoder.encode(["a dog"]))
    assert isinstance(refused, ValidationError) and refused.context == {"index": 1, "limit": 32}

    async def lenient(service):
        return await asyncio.wait_for(service.embed_with_report(["fine", long_text]), 30)

    report = run(encoder, lenient, max_batch_tokens=32, validation_strategy="lenient")
    # Truncation keeps 31 leading tokens and [SEP]: the tokens of 30 "cat"s.
    assert_rows(report.embeddings, encoder.encode(["fine", " ".join(["cat"] * 30)]))
    assert report.truncated_indices == [1]
    assert [(r.index, r.kind) for r in report.repairs] == [(1, "truncated_tokens")]


@pytest.mark.parametrize(
    "fault",
    [
        lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        lambda: RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory"),
        lambda: ResourceExhaustedError("injected", device="cpu"),
    ],
    ids=["torch-oom", "runtime-oom", "resource-exhausted"],
)
def test_out_of_memory_splits_the_batch_and_loses_nothing(encoder, pool, monkeypatch, fault):
    texts, reference = pool
    real_forward = encoder.forward
    faults = []

    def forward(batch):
        if batch.n_tokens > 40:  # "runs out of memory" above 40 tokens
            faults.append(batch.n_tokens)
            raise fault()
        return real_forward(batch)

    requests = [texts[i * 3 : i * 3 + 3] for i in range(10)]

    async def body(service):
        monkeypatch.setattr(encoder, "forward", forward)
        results = await asyncio.gather(*(service.embed_batch(r) for r in requests))
        return results, service.state, service.snapshot()["metrics"]["oom_splits_total"]

    results, state, splits = run(encoder, body, max_wait_ms=30)
    for request, got in zip(requests, results):
        assert_rows(got, expected(reference, request))
    assert faults and splits >= 1
    assert state is ServiceState.DEGRADED


def test_one_text_that_alone_runs_out_of_memory_fails_only_its_request(encoder, monkeypatch):
    real_forward = encoder.forward
    big = " ".join(["dog"] * 60)

    def forward(batch):
        if int(batch.lengths.max()) > 40:
            raise torch.OutOfMemoryError("injected")
        return real_forward(batch)

    async def body(service):
        monkeypatch.setattr(encoder, "forward", forward)
        calls = [service.embed_batch(["a cat"]), service.embed_batch([big])]
        calls.append(service.embed_text("x"))
        return await asyncio.gather(*calls, return_exceptions=True)

    small, failed, single = run(encoder, body, max_wait_ms=30)
    assert_rows(small, encoder.encode(["a cat"]))
    assert_rows(single, encoder.encode("x"))
    assert isinstance(failed, ResourceExhaustedError) and failed.context["tokens"] == 62


def test_16_threads_on_one_encoder_give_the_serial_results(encoder, pool):
    texts, reference = pool
    rng = np.random.default_rng(3)
    jobs = [[texts[j] for j in rng.integers(0, len(texts), size=12)] for _ in range(32)]
    serial = [expected(reference, job) for job in jobs]
    with ThreadPoolExecutor(16) as executor:
        results = list(executor.map(lambda job: encoder.encode(job, batch_size=5), jobs))
    for got, want in zip(results, serial):
        assert_rows(got, want)


def test_words_are_single_tokens(encoder):
    lengths = encoder.tokenizer(WORDS).lengths
    assert (lengths == 3).all()


def test_the_budget_recovers_after_out_of_memory(encoder, monkeypatch):
    from mlservices.optimization import batching

    monkeypatch.setattr(batching, "RECOVER_AFTER_BATCHES", 1)
    real_forward = encoder.forward
    faults = []

    def forward(batch):
        if batch.n_tokens > 40 and not faults:  # one out-of-memory error, then none
            faults.append(batch.n_tokens)
            raise torch.OutOfMemoryError("injected")
        return real_forward(batch)

    async def body(service):
        monkeypatch.setattr(encoder, "forward", forward)
        states, texts = [], [" ".join(["cat"] * 12)] * 5
        first = await service.embed_batch(texts)
        states.append(service.state)
        for _ in range(4):
            await service.embed_text("a dog")
            states.append(service.state)
        return first, states

    first, states = run(encoder, body, max_batch_tokens=256)
    assert_rows(first, encoder.encode([" ".join(["cat"] * 12)] * 5))
    assert states[0] is ServiceState.DEGRADED and states[-1] is ServiceState.READY
