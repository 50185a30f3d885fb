"""EmbeddingService and ProcessingService on the real model: lifecycle, stopping under load,
strict vs lenient, limits, metrics, alerts, chunked documents, memory over many calls."""

import asyncio
import gc
import string

import numpy as np
import psutil
import pytest
from test_batching import ForwardGate
from test_service_support import (
    DEADLINE_S,
    WORDS,
    assert_rows,
    random_texts,
    run,
    settings,
)

from mlservices.errors import (
    InputTypeError,
    ModelLoadError,
    OperationTimeoutError,
    ResourceExhaustedError,
    StateError,
    ValidationError,
)
from mlservices.services import EmbeddingService, ServiceFactory, running
from mlservices.services.processing import window_starts
from mlservices.state import ServiceState

MIB = 2**20


def test_lifecycle_and_state_checks(encoder):
    async def main():
        service = ServiceFactory.create_embedding_service(settings(), encoder=encoder)
        assert service.state is ServiceState.CREATED
        with pytest.raises(StateError, match="but it is created") as info:
            await service.embed_text("too early")
        assert info.value.context["state"] == "created"
        async with service:
            assert service.state is ServiceState.READY
            vector = await service.embed_text("a cat sits on the mat")
            with pytest.raises(StateError, match="from ready to starting"):
                await service.start()
        assert service.state is ServiceState.STOPPED
        with pytest.raises(StateError, match="but it is stopped"):
            await service.embed_batch(["too late"])
        await service.stop()  # stopping twice is a no-op
        with pytest.raises(StateError, match="holds no model"):
            service.encoder  # noqa: B018 - the model was released
        return vector

    vector = asyncio.run(main())
    assert vector.shape == (384,)
    assert_rows(vector[None], encoder.encode(["a cat sits on the mat"]))


def test_a_model_that_cannot_load_fails_the_service(tmp_path):
    async def main():
        service = EmbeddingService(settings(model=str(tmp_path / "missing")))
        with pytest.raises(ModelLoadError):
            await service.start()
        assert service.state is ServiceState.FAILED
        await service.stop()
        assert service.state is ServiceState.STOPPED

    asyncio.run(main())


def test_stopping_with_requests_in_flight_drains_them(encoder, monkeypatch):
    rng = np.random.default_rng(5)
    requests = [random_texts(rng, 3, 1, 6) for _ in range(30)]
    gate = ForwardGate(encoder)

    async def main():
        service = EmbeddingService(settings(max_wait_ms=5, max_batch_texts=8), encoder=encoder)
        await service.start()
        monkeypatch.setattr(encoder, "forward", gate)
        tasks = [asyncio.create_task(service.embed_batch(r)) for r in requests]
        await asyncio.to_thread(gate.entered.wait, 30)
        stopping = asyncio.create_task(service.stop())
        await asyncio.sleep(0.05)
        assert service.state is ServiceState.STOPPING
        with pytest.raises(StateError, match="but it is stopping"):
            await service.embed_text("refused while stopping")
        gate.release.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), DEADLINE_S)
        await asyncio.wait_for(stopping, DEADLINE_S)
        return results, service.state

    results, state = asyncio.run(main())
    assert state is ServiceState.STOPPED
    for request, got in zip(requests, results):
        assert_rows(got, encoder.encode(request))


def test_stopping_past_the_drain_deadline_fails_the_rest_with_state_errors(encoder, monkeypatch):
    rng = np.random.default_rng(6)
    requests = [random_texts(rng, 2, 1, 6) for _ in range(20)]
    gate = ForwardGate(encoder)

    async def main():
        service = EmbeddingService(
            settings(max_wait_ms=5, max_batch_texts=4, drain_timeout_s=0.2), encoder=encoder
        )
        await service.start()
        monkeypatch.setattr(encoder, "forward", gate)
        tasks = [asyncio.create_task(service.embed_batch(r)) for r in requests]
        await asyncio.to_thread(gate.entered.wait, 30)
        try:
            await asyncio.wait_for(service.stop(), DEADLINE_S)
            return await asyncio.wait_for(
                asyncio.gather(*tasks, return_exceptions=True), DEADLINE_S
            )
        finally:
            gate.release.set()

    results = asyncio.run(main())
    assert all(isinstance(r, StateError) for r in results), results
    assert "stopped before this request finished" in str(results[0])


def test_strict_and_lenient_at_the_service(encoder):
    messy = ["a\x00 cat\u200b", "cafe\u0301  au   lait", "broken \udc80 text", "z" * 80]

    async def strict(service):
        with pytest.raises(ValidationError) as info:
            await service.embed_batch(messy)
        return info.value

    error = run(encoder, strict, max_text_chars=64)
    assert error.context["index"] == 2  # the first item strict refuses: the lone surrogate

    async def lenient(service):
        with pytest.raises(InputTypeError, match="input 1 is NoneType"):
            await service.embed_batch(["ok", None])  # None is refused, never made ""
        return await service.embed_with_report(messy)

    report = run(encoder, lenient, max_text_chars=64, validation_strategy="lenient")
    repaired = ["a cat\u200b", "café au lait", "broken \ufffd text", "z" * 64]
    assert_rows(report.embeddings, encoder.encode(repaired))
    assert {(r.index, r.kind) for r in report.repairs} == {
        (0, "control_chars"),
        (1, "unicode_nfc"),
        (1, "whitespace"),
        (2, "surrogates"),
        (3, "truncated_chars"),
    }


def test_limits_and_timeouts_refuse_cleanly(encoder):
    async def memory(service):
        with pytest.raises(ResourceExhaustedError, match="memory_limit_mb=1") as info:
            await service.embed_batch(["a", "b"])
        return info.value

    error = run(encoder, memory, memory_limit_mb=1, warmup=False)
    assert error.context["device"] == "cpu" and error.context["current"] > MIB

    async def sizes(service):
        with pytest.raises(ValidationError, match="max_request_texts=4"):
            await service.embed_batch(["a"] * 5)
        with pytest.raises(InputTypeError, match="got a single str"):
            await service.embed_batch("not a list")
        with pytest.raises(OperationTimeoutError, match="within 1e-06s"):
            await service.embed_batch(["slow " * 50], timeout_s=1e-6)
        return await service.embed_batch([])

    assert run(encoder, sizes, max_request_texts=4).shape == (0, 384)


def test_metrics_snapshot_prometheus_and_instrument(encoder):
    async def body(service):
        async with service.instrument("lookup"):
            await service.embed_text("where is the river bank")
        await asyncio.gather(*(service.embed_batch(["a dog", "a cat runs"]) for _ in range(5)))
        with pytest.raises(InputTypeError):
            await service.embed_batch([None])
        return service.snapshot(), service.prometheus_text()

    snap, text = run(encoder, body, max_wait_ms=10)
    metrics = snap["metrics"]
    assert snap["state"] == "ready" and snap["token_budget"] > 0
    assert metrics["requests_total{operation=embed_batch,status=ok}"] == 5
    assert metrics["requests_total{operation=embed_batch,status=InputTypeError}"] == 1
    assert metrics["requests_total{operation=embed_text,status=ok}"] == 1
    assert metrics["operations_total{name=lookup,status=ok}"] == 1
    assert metrics["rejected_items_total{reason=type}"] == 1
    assert metrics["request_latency_seconds{operation=embed_batch}"]["count"] == 6
    assert metrics["queue_wait_seconds"]["count"] >= 6
    assert metrics["tokens_total"] > 0 and metrics["memory_rss_bytes"] > 0
    assert set(snap["stages"]) >= {"tokenize", "pack", "forward", "pool", "copy_back"}
    assert 'mlservices_requests_total{operation="embed_text",status="ok"} 1.0' in text
    assert 'mlservices_state{state="ready"} 1.0' in text
    assert "mlservices_batch_tokens_bucket" in text and "mlservices_tokens_per_second" in text


def test_alerts_fire_on_latency_and_memory(encoder, caplog):
    fired = []

    async def main():
        service = EmbeddingService(
            settings(alert_latency_ms=0.01, alert_memory_mb=1),
            encoder=encoder,
            alert_callbacks=[fired.append],
        )
        async with service:
            await service.embed_text("a slow request")
            service.snapshot()

    asyncio.run(main())
    assert {a.name for a in fired} == {"latency_ms", "memory_mb"}
    assert "alert: latency_ms is" in caplog.text


def test_processing_service_chunks_and_pools(encoder):
    words = [WORDS[i % len(WORDS)] for i in range(34)]
    short = "  The cafe\u0301   is open  "
    long_doc = "\n".join(" ".join(words[i : i + 5]) for i in range(0, 34, 5))

    async def main():
        embedding = EmbeddingService(
            settings(chunk_window_tokens=16, chunk_overlap_tokens=4), encoder=encoder
        )
        processing = ServiceFactory.create_processing_service(embedding_service=embedding)
        async with running(embedding, processing):
            plain = await processing.process([short, long_doc, ""])
            unit = await processing.process([long_doc], normalize=True)
        return plain, unit

    plain, unit = asyncio.run(main())
    assert plain.chunks == [1, 3, 1] and plain.tokens == [4, 34, 0]
    starts = window_starts(34, 14, 4)
    assert starts == [0, 10, 20]
    windows = encoder.encode([" ".join(words[s : s + 14]) for s in starts])
    assert_rows(plain.embeddings[1:2], windows.mean(axis=0, keepdims=True))
    assert_rows(plain.embeddings[[0, 2]], encoder.encode(["The café is open", ""]))
    mean = windows.mean(axis=0)
    assert_rows(unit.embeddings, (mean / np.linalg.norm(mean))[None])


def test_window_starts():
    assert window_starts(0, 14, 4) == [0] and window_starts(14, 14, 4) == [0]
    assert window_starts(15, 14, 4) == [0, 1]
    assert window_starts(100, 30, 0) == [0, 30, 60, 70]


def test_memory_stays_flat_over_many_calls(encoder):
    rng = np.random.default_rng(11)
    letters = np.array(list(string.ascii_lowercase))

    def unique_text() -> str:
        return " ".join("".join(rng.choice(letters, rng.integers(3, 8))) for _ in range(5))

    def rss() -> int:
        gc.collect()
        return psutil.Process().memory_info().rss

    async def body(service):
        start = rss()
        for _ in range(50):
            await service.embed_text(unique_text())
        warm = rss()
        for _ in range(300):
            await service.embed_text(unique_text())
        return start, warm, rss()

    start, warm, end = run(encoder, body, max_wait_ms=0)
    print(
        f"\nRSS start {start / MIB:.1f} MiB, after 50 warm-up calls {warm / MIB:.1f} MiB, "
        f"after 300 more {end / MIB:.1f} MiB (growth {(end - warm) / MIB:+.1f} MiB)"
    )
    assert end - warm < 32 * MIB
