"""``EmbeddingService``: async embeddings with validation, dynamic batching, resource limits,
metrics, alerts and a checked lifecycle, around one :class:`~mlservices.Encoder`.

Example:
    >>> service = EmbeddingService(Settings(device="cpu"))
    >>> async with service:
    ...     vector = await service.embed_text("example")            # [384] float32
    ...     matrix = await service.embed_batch(["a", "b", "c"])     # [3, 384] float32
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mlservices.encoder import Encoder
from mlservices.errors import (
    InputTypeError,
    MLServicesError,
    ModelLoadError,
    OperationTimeoutError,
    StateError,
    ValidationError,
)
from mlservices.monitoring import (
    AlertManager,
    Instrumentation,
    ServiceMetrics,
    StageProfiler,
    TensorBoardWriter,
)
from mlservices.monitoring.alerts import AlertCallback
from mlservices.optimization.batching import DynamicBatcher
from mlservices.optimization.resources import (
    MIB,
    ResourceManager,
    activation_bytes_per_token,
)
from mlservices.services.lifecycle import ManagedService, mark_degraded, mark_recovered
from mlservices.settings import Settings
from mlservices.state import ServiceState
from mlservices.validation import (
    EmbedBatchRequest,
    EmbedOptions,
    EmbedTextRequest,
    Repair,
    get_strategy,
    parse_request,
    validate_batch,
    validate_input,
    validate_resources,
    validate_state,
)

logger = logging.getLogger(__name__)

TOKENIZE_IN_THREAD_CHARS = 20_000  # requests with more characters are tokenized off the loop
SAMPLE_EVERY_S = 0.5  # how often requests refresh the memory gauges and memory alerts
BUDGET_REFRESH_S = 1.0  # how long a token budget sized from free memory is reused
WARMUP_TEXTS = ["warm up", "The service is warming up its kernels and caches."]


@dataclass
class EmbeddingReport:
    """Embeddings with what validation changed (lenient) and which texts the model truncated.

    Attributes:
        embeddings: float32 [n, dim], in input order.
        repairs: changes the lenient strategy made, by input index.
        truncated_indices: inputs cut to the model's max_seq_length or to the token budget.
    """

    embeddings: np.ndarray
    repairs: list[Repair] = field(default_factory=list)
    truncated_indices: list[int] = field(default_factory=list)


class EmbeddingService(ManagedService):
    """Sentence embeddings for concurrent async callers, coalesced into shared packed batches.

    Args:
        settings: configuration; None reads ``Settings()`` (environment and config file).
        encoder: an already loaded encoder to serve (it is then not owned: stop() drops the
            reference but leaves the object to its owner); None loads ``settings.model``.
        alert_callbacks: called with each :class:`~mlservices.monitoring.Alert`.
    """

    name = "embedding"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        encoder: Encoder | None = None,
        alert_callbacks: list[AlertCallback] | None = None,
    ) -> None:
        super().__init__(settings)
        self.metrics = ServiceMetrics()
        self.alerts = AlertManager.from_settings(self.settings, alert_callbacks)
        self.instrumentation = Instrumentation(self.metrics, self.alerts)
        self.strategy = get_strategy(
            self.settings.validation_strategy, self.settings.max_text_chars
        )
        self.tensorboard = TensorBoardWriter(self.settings.tensorboard_dir)
        self._encoder = encoder
        self._owns_encoder = encoder is None
        self.resources: ResourceManager | None = None
        self.profiler: StageProfiler | None = None
        self._batcher: DynamicBatcher | None = None
        self._bytes_per_token = 0
        self._budget = (0, 0.0)
        self._last_sample = 0.0
        self._requests = 0
        self._in_flight_count = 0
        self.machine.add_listener(self._on_transition)
        self._on_transition(ServiceState.CREATED, ServiceState.CREATED)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def encoder(self) -> Encoder:
        """The served encoder (while started)."""
        if self._encoder is None:
            raise StateError(
                f"the {self.name} service holds no model in state {self.state}",
                hint="start the service first",
                state=self.state.value,
            )
        return self._encoder

    async def _on_start(self) -> None:
        if self._encoder is None:
            self._encoder = await asyncio.to_thread(self._load)
        encoder, settings = self._encoder, self.settings
        self.resources = ResourceManager(settings, encoder.device)
        self.profiler = StageProfiler(encoder.device, self.metrics)
        self._bytes_per_token = activation_bytes_per_token(
            encoder.spec.config,
            encoder.max_seq_length,
            torch.empty(0, dtype=encoder.dtype).element_size(),
        )
        self._batcher = DynamicBatcher(
            encoder,
            self.token_budget,
            settings.max_batch_texts,
            settings.max_wait_ms / 1000.0,
            metrics=self.metrics,
            profiler=self.profiler,
            on_oom=self._on_oom,
            on_recovered=lambda: mark_recovered(self.machine),
        )
        await self._batcher.start()
        if settings.warmup:
            await self._batcher.submit(encoder.tokenizer(WARMUP_TEXTS).ids, False)
        logger.info(
            "%s service on %s: token budget %d, strategy %s",
            self.name,
            encoder.device,
            self.token_budget(),
            self.strategy.name,
        )

    def _load(self) -> Encoder:
        device = None if self.settings.device == "auto" else self.settings.device
        try:
            return Encoder.from_pretrained(
                self.settings.model, device=device, dtype=self.settings.dtype
            )
        except MLServicesError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"loading model {self.settings.model or 'all-MiniLM-L6-v2 (bundled)'} failed: "
                f"{exc}",
                hint="check the model folder (settings.model) and the device",
                device=self.settings.device,
            ) from exc

    async def _on_stop(self) -> None:
        if self._batcher is not None:
            failed = await self._batcher.close(self.settings.drain_timeout_s)
            if failed:
                logger.warning("%d requests were failed at stop (drain deadline passed)", failed)
        self.tensorboard.write(self.metrics.snapshot(), self._requests)
        self.tensorboard.close()
        self._release()

    def _release(self) -> None:
        device = self._encoder.device if self._encoder is not None else None
        self._encoder = None
        self._batcher = None
        if self._owns_encoder:
            gc.collect()
            if device is not None and device.type == "cuda":
                torch.cuda.empty_cache()

    def _on_transition(self, old: ServiceState, new: ServiceState) -> None:
        for state in ServiceState:
            self.metrics.set("state", 1.0 if state is new else 0.0, state=state.value)

    def _on_oom(self, tokens: int) -> None:
        mark_degraded(self.machine, f"out of memory on a batch of {tokens} tokens")

    # -- budgets -------------------------------------------------------------------------------

    def token_budget(self) -> int:
        """Tokens per batch: sized from free memory, clamped to the settings (cached ~1 s)."""
        budget, at = self._budget
        now = time.monotonic()
        if budget and now - at < BUDGET_REFRESH_S:
            return budget
        settings, encoder = self.settings, self.encoder
        floor = settings.min_batch_tokens or min(encoder.max_seq_length, settings.max_batch_tokens)
        budget = self.resources.token_budget(
            self._bytes_per_token, floor, settings.max_batch_tokens
        )
        self._budget = (budget, now)
        self.metrics.set("token_budget", budget)
        return budget

    # -- requests ------------------------------------------------------------------------------

    async def embed_text(
        self, text: str, *, normalize: bool | None = None, timeout_s: float | None = None
    ) -> np.ndarray:
        """One text's embedding, float32 [dim].

        Raises:
            InputTypeError, ValidationError: the text is invalid (``context['index']`` is 0).
            StateError: the service is not READY or DEGRADED.
            ResourceExhaustedError: a memory limit or the queue is full.
            OperationTimeoutError: no answer within the timeout.
        """
        request = parse_request(
            EmbedTextRequest, text=text, normalize=normalize, timeout_s=timeout_s
        )
        report = await self._embed("embed_text", [request.text], request)
        return report.embeddings[0]

    async def embed_batch(
        self,
        texts: Sequence[str],
        *,
        normalize: bool | None = None,
        timeout_s: float | None = None,
    ) -> np.ndarray:
        """Embeddings of ``texts``, float32 [n, dim], in input order.

        Raises:
            InputTypeError, ValidationError: an item is invalid; ``context['index']`` names it.
            StateError, ResourceExhaustedError, OperationTimeoutError: as for ``embed_text``.
        """
        return (
            await self.embed_with_report(texts, normalize=normalize, timeout_s=timeout_s)
        ).embeddings

    async def embed_with_report(
        self,
        texts: Sequence[str],
        *,
        normalize: bool | None = None,
        timeout_s: float | None = None,
    ) -> EmbeddingReport:
        """Like ``embed_batch``, with the lenient strategy's repairs and the truncated inputs."""
        request = parse_request(
            EmbedBatchRequest, texts=_as_list(texts), normalize=normalize, timeout_s=timeout_s
        )
        return await self._embed("embed_batch", request.texts, request)

    async def embed_token_ids(
        self,
        ids: list[np.ndarray],
        *,
        normalize: bool | None = None,
        timeout_s: float | None = None,
    ) -> np.ndarray:
        """Embeddings of already tokenized texts (special tokens included), float32 [n, dim].

        Each array must hold at most ``encoder.max_seq_length`` ids; ProcessingService uses
        this for document windows.
        """
        options = parse_request(EmbedOptions, normalize=normalize, timeout_s=timeout_s)
        async with self._request("embed_token_ids"):
            _check_ids(ids, min(self.encoder.max_seq_length, self.settings.max_batch_tokens))
            return await self._submit("embed_token_ids", ids, options)

    @contextlib.asynccontextmanager
    async def instrument(self, name: str) -> AsyncIterator[None]:
        """Record the block as the named operation: latency, count by outcome, latency alert.

        Example:
            >>> async with service.instrument("search"):
            ...     vector = await service.embed_text(query)
        """
        async with self.instrumentation.operation(name):
            yield

    async def _embed(self, operation: str, texts: list, options: EmbedOptions) -> EmbeddingReport:
        async with self._request(operation):
            validate_batch(
                texts,
                self.settings.max_request_texts,
                self._live_batcher(operation).queued_texts,
                self.settings.max_queue_texts,
            )
            ids, report = await self._prepare(texts)
            report.embeddings = await self._submit(operation, ids, options)
            return report

    @contextlib.asynccontextmanager
    async def _request(self, operation: str) -> AsyncIterator[None]:
        """State check, in-flight gauge, latency and outcome metrics around one request."""
        validate_state(self.machine, operation)
        began, status = time.perf_counter(), "ok"
        self._requests += 1
        self.metrics.set("in_flight_requests", self._in_flight(+1))
        try:
            yield
        except BaseException as exc:
            status = type(exc).__name__
            self._count_rejection(exc)
            raise
        finally:
            self.metrics.set("in_flight_requests", self._in_flight(-1))
            seconds = time.perf_counter() - began
            self.metrics.observe("request_latency_seconds", seconds, operation=operation)
            self.metrics.inc("requests_total", operation=operation, status=status)
            self.alerts.observe("latency_ms", seconds * 1000.0)
            self._sample_resources()

    def _live_batcher(self, operation: str) -> DynamicBatcher:
        """The batcher, after re-checking the state (a stop may have begun while we awaited)."""
        validate_state(self.machine, operation)
        if self._batcher is None:
            raise StateError(
                f"{operation}: the {self.name} service has no batcher in state {self.state}",
                hint="start the service first",
                state=self.state.value,
            )
        return self._batcher

    def _in_flight(self, delta: int) -> int:
        self._in_flight_count += delta
        return self._in_flight_count

    def _count_rejection(self, exc: BaseException) -> None:
        if isinstance(exc, (InputTypeError, ValidationError)) and "index" in exc.context:
            reason = "type" if isinstance(exc, InputTypeError) else "value"
            self.metrics.inc("rejected_items_total", reason=reason)

    async def _prepare(self, texts: list) -> tuple[list[np.ndarray], EmbeddingReport]:
        """Validate, tokenize and check each text against the token budget."""
        checked = validate_input(texts, self.strategy)
        tokenized = await self._tokenize(checked.texts)
        report = EmbeddingReport(np.empty(0), checked.repairs)
        budget = self.settings.max_batch_tokens
        ids = [
            self.strategy.check_tokens(i, x, budget, report.repairs)
            for i, x in enumerate(tokenized.ids)
        ]
        cut = {r.index for r in report.repairs if r.kind == "truncated_tokens"}
        report.truncated_indices = sorted(cut.union(np.flatnonzero(tokenized.truncated).tolist()))
        for repair in report.repairs:
            self.metrics.inc("repairs_total", kind=repair.kind)
        if report.repairs:
            logger.info(
                "lenient validation changed %d of %d inputs (first: input %d, %s)",
                len({r.index for r in report.repairs}),
                len(texts),
                report.repairs[0].index,
                report.repairs[0].kind,
            )
        return ids, report

    async def _tokenize(self, texts: list[str]):
        tokenizer, profiler = self.encoder.tokenizer, self.profiler
        if sum(map(len, texts)) > TOKENIZE_IN_THREAD_CHARS:
            began = time.perf_counter()
            tokenized = await asyncio.to_thread(tokenizer, texts)
            profiler.record("tokenize", time.perf_counter() - began)
            return tokenized
        with profiler.stage("tokenize", host=True):
            return tokenizer(texts)

    async def _submit(self, operation: str, ids: list[np.ndarray], options: EmbedOptions):
        tokens = int(sum(len(x) for x in ids))
        validate_resources(
            self.resources, min(tokens, self.token_budget()), operation, self._bytes_per_token
        )
        normalize = (
            options.normalize
            if options.normalize is not None
            else self.settings.normalize_embeddings
        )
        timeout = options.timeout_s or self.settings.request_timeout_s
        batcher = self._live_batcher(operation)
        try:
            return await asyncio.wait_for(batcher.submit(ids, normalize), timeout)
        except asyncio.TimeoutError:
            raise OperationTimeoutError(
                f"{operation} of {len(ids)} texts did not finish within {timeout:g}s",
                hint="raise timeout_s or request_timeout_s, or send fewer texts per request",
                limit=timeout,
            ) from None

    def _sample_resources(self) -> None:
        now = time.monotonic()
        if self.resources is None or now - self._last_sample < SAMPLE_EVERY_S:
            return
        self._last_sample = now
        usage = self.resources.usage()
        self.metrics.set("memory_rss_bytes", usage.rss_bytes)
        self.alerts.observe("memory_mb", usage.rss_bytes / MIB)
        if usage.gpu_memory_used_bytes is not None:
            self.metrics.set("gpu_memory_bytes", usage.gpu_memory_used_bytes)
        if usage.gpu_utilization is not None:
            self.metrics.set("gpu_utilization_percent", usage.gpu_utilization)
            self.alerts.observe("gpu_utilization", usage.gpu_utilization)
        if self._batcher is not None:
            self.metrics.set("queue_texts", self._batcher.queued_texts)

    # -- reading the service -------------------------------------------------------------------

    def snapshot(self) -> dict[str, object]:
        """Metrics (see ServiceMetrics), stage timings, state and the current token budget."""
        self._last_sample = 0.0
        self._sample_resources()
        return {
            "state": self.state.value,
            "metrics": self.metrics.snapshot(),
            "stages": self.profiler.summary() if self.profiler else {},
            "token_budget": self._budget[0],
            "alerts": [a.message for a in self.alerts.fired],
        }

    def prometheus_text(self) -> str:
        """All metrics in the Prometheus text exposition format."""
        self._last_sample = 0.0
        self._sample_resources()
        return self.metrics.prometheus_text()


def _as_list(texts) -> list:
    if isinstance(texts, (str, bytes)):
        raise InputTypeError(
            f"embed_batch takes a list of texts, got a single {type(texts).__name__}",
            hint="use embed_text for one text, or wrap it in a list",
        )
    try:
        return list(texts)
    except TypeError:
        raise InputTypeError(
            f"embed_batch takes a list of texts, got {type(texts).__name__}",
            hint="pass a list of str",
        ) from None


def _check_ids(ids: list[np.ndarray], limit: int) -> None:
    for i, x in enumerate(ids):
        if not isinstance(x, np.ndarray) or x.ndim != 1 or x.dtype.kind not in "iu":
            raise InputTypeError(
                f"token ids {i} must be a 1-D integer numpy array",
                hint="pass what the tokenizer returns",
                index=i,
            )
        if not 0 < len(x) <= limit:
            raise ValidationError(
                f"token ids {i} has {len(x)} tokens; between 1 and {limit} are allowed",
                hint="split the text into windows of at most that many tokens",
                index=i,
                limit=limit,
            )


__all__ = ["EmbeddingReport", "EmbeddingService"]
