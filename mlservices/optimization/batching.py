"""Dynamic batching: concurrent callers' texts are coalesced into shared packed batches.

One background task takes queued rows in arrival order until the token budget or the text limit
is reached, or until the oldest queued request has waited ``max_wait_s``; the batch then runs on
one dedicated worker thread through the encoder's public stages (pack, forward, pool), and every
caller gets exactly its own rows back, in its own order.

- A cancelled caller's rows still queued are dropped; rows already in a running batch are
  computed and thrown away, so the batch's other callers never notice.
- On out-of-memory the batch is split in half and each half retried (recursively), losing no
  row; the budget is capped at half the failed batch and grows back after a run of good batches.
- ``close()`` stops accepting work, lets queued and running work finish within a deadline, and
  fails what is left with a StateError: no caller is left waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from mlservices import ops, pipeline
from mlservices.encoder import Encoder
from mlservices.errors import ResourceExhaustedError, StateError
from mlservices.monitoring.metrics import MetricsRegistry
from mlservices.monitoring.profiler import StageProfiler

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)
RECOVER_AFTER_BATCHES = 32  # good batches at a capped budget before the cap is doubled


def is_out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, MemoryError (ResourceExhaustedError included), or a
    RuntimeError whose message says "out of memory" (CPU allocators and older torch)."""
    if isinstance(exc, OUT_OF_MEMORY):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass(eq=False)
class _Request:
    """One caller's rows: token ids in, vectors out, and how far batching has got."""

    ids: list[np.ndarray]
    normalize: bool
    future: asyncio.Future
    out: np.ndarray
    pending_tokens: int
    remaining: int
    cursor: int = 0
    enqueued_at: float = field(default_factory=time.perf_counter)
    waited: bool = False


class DynamicBatcher:
    """Coalesces concurrent ``submit`` calls into packed batches on one worker thread.

    Args:
        encoder: the model; only its public stages are used (forward, sentence_head).
        token_budget: returns the current budget in real tokens per batch (sized from memory).
        max_batch_texts: at most this many texts per batch.
        max_wait_s: how long the oldest queued request may wait for company.
        metrics: a :class:`~mlservices.monitoring.ServiceMetrics` registry, or None.
        profiler: times pack, forward, pool and copy back, or None.
        on_oom: called (from the worker thread) with the token count of a batch that ran out
            of memory, before it is split.
        on_recovered: called (from the worker thread) when the out-of-memory cap is lifted.

    Must be started inside a running event loop (``await batcher.start()``).
    """

    def __init__(
        self,
        encoder: Encoder,
        token_budget: Callable[[], int],
        max_batch_texts: int,
        max_wait_s: float,
        metrics: MetricsRegistry | None = None,
        profiler: StageProfiler | None = None,
        on_oom: Callable[[int], None] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self.encoder = encoder
        self._token_budget = token_budget
        self.max_batch_texts = max_batch_texts
        self.max_wait_s = max_wait_s
        self.metrics = metrics
        self.profiler = profiler or StageProfiler(encoder.device)
        self._on_oom = on_oom
        self._on_recovered = on_recovered
        self._dim = encoder.embedding_dimension
        self._queue: deque[_Request] = deque()
        self._running: list[_Request] = []
        self.queued_texts = 0
        self._queued_tokens = 0
        self._cap: int | None = None
        self._good_batches = 0
        self._closing = False
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._wakeup: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self.batches = 0

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker thread and the coalescing task on the running loop."""
        self._executor = concurrent.futures.ThreadPoolExecutor(1, "mlservices-encode")
        self._wakeup, self._idle = asyncio.Event(), asyncio.Event()
        self._idle.set()
        self._task = asyncio.create_task(self._run(), name="mlservices-batcher")
        self._task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task) -> None:
        """If the coalescing task ever dies of a bug, fail its callers rather than strand them."""
        if task.cancelled() or task.exception() is None:
            return
        logger.error("the batching task failed", exc_info=task.exception())
        self._closing = True
        self._fail_queued("the batching task failed before this request finished (see the log)")

    async def close(self, drain_timeout_s: float) -> int:
        """Stop accepting work, drain for up to ``drain_timeout_s``, fail the rest.

        Returns:
            how many requests were failed with a StateError because the deadline passed.
        """
        self._closing = True
        if self._idle is not None and not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), drain_timeout_s)
            except asyncio.TimeoutError:
                logger.warning(
                    "drain deadline of %.1fs passed with %d texts queued",
                    drain_timeout_s,
                    self.queued_texts,
                )
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        failed = self._fail_queued("the service stopped before this request finished")
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        return failed

    def _fail_queued(self, reason: str) -> int:
        failed = 0
        for request in [*self._running, *self._queue]:
            if not request.future.done():
                request.future.set_exception(
                    StateError(
                        reason,
                        hint="retry on a running service, or stop with a longer drain_timeout_s",
                        state="stopping",
                    )
                )
                failed += 1
        self._queue.clear()
        self._running = []
        self.queued_texts = self._queued_tokens = 0
        return failed

    # -- submitting ----------------------------------------------------------------------------

    async def submit(self, ids: list[np.ndarray], normalize: bool) -> np.ndarray:
        """Queue one caller's token ids; returns its vectors, float32 [len(ids), dim], in order.

        Raises:
            StateError: the batcher is closing.
            ResourceExhaustedError: one text alone does not fit in memory.
        """
        if self._closing or self._task is None:
            raise StateError(
                "the batcher is not accepting work (stopping or not started)",
                hint="send requests to a started service",
            )
        if not ids:
            return np.zeros((0, self._dim), dtype=np.float32)
        tokens = int(sum(len(x) for x in ids))
        request = _Request(
            ids=ids,
            normalize=normalize,
            future=asyncio.get_running_loop().create_future(),
            out=np.empty((len(ids), self._dim), dtype=np.float32),
            pending_tokens=tokens,
            remaining=len(ids),
        )
        self._queue.append(request)
        self.queued_texts += len(ids)
        self._queued_tokens += tokens
        self._idle.clear()
        self._wakeup.set()
        return await request.future

    # -- the coalescing loop -------------------------------------------------------------------

    def current_budget(self) -> int:
        budget = self._token_budget()
        return budget if self._cap is None else max(1, min(budget, self._cap))

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            budget = self.current_budget()
            await self._gather(budget)
            items = self._take(budget)
            if items:
                await self._run_batch(items)

    async def _gather(self, budget: int) -> None:
        """Wait for company until the budget fills or the oldest request's wait is over."""
        while (
            self._queue
            and self._queued_tokens < budget
            and self.queued_texts < self.max_batch_texts
        ):
            left = self._queue[0].enqueued_at + self.max_wait_s - time.perf_counter()
            if left <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except asyncio.TimeoutError:
                return

    def _take(self, budget: int) -> list[tuple[_Request, int]]:
        """Rows in arrival order up to the budget (a lone over-budget row still goes alone)."""
        items: list[tuple[_Request, int]] = []
        tokens = 0
        while self._queue:
            request = self._queue[0]
            if request.future.done():
                self._drop(request)
                continue
            while request.cursor < len(request.ids):
                n = len(request.ids[request.cursor])
                if items and (tokens + n > budget or len(items) >= self.max_batch_texts):
                    return items
                items.append((request, request.cursor))
                tokens += n
                request.cursor += 1
                request.pending_tokens -= n
                self._queued_tokens -= n
                self.queued_texts -= 1
            self._queue.popleft()
        return items

    def _drop(self, request: _Request) -> None:
        self._queue.popleft()
        self.queued_texts -= len(request.ids) - request.cursor
        self._queued_tokens -= request.pending_tokens

    async def _run_batch(self, items: list[tuple[_Request, int]]) -> None:
        started = time.perf_counter()
        requests = list(dict.fromkeys(request for request, _ in items))
        self._record_waits(requests, started)
        ids = [request.ids[row] for request, row in items]
        normalize = np.fromiter((request.normalize for request, _ in items), bool, len(items))
        loop = asyncio.get_running_loop()
        self._running = requests
        try:
            vectors, failed = await loop.run_in_executor(
                self._executor, self._encode, ids, normalize
            )
        except Exception as exc:
            self._running = []
            logger.error("batch of %d texts failed: %s", len(items), exc)
            for request in requests:
                if not request.future.done():
                    request.future.set_exception(copy.copy(exc).with_traceback(None))
            return
        self._running = []
        for k, error in failed.items():
            request = items[k][0]
            if not request.future.done():
                request.future.set_exception(error)
        self._scatter(items, vectors)

    def _record_waits(self, requests: list[_Request], started: float) -> None:
        for request in requests:
            if not request.waited:
                request.waited = True
                if self.metrics is not None:
                    self.metrics.observe("queue_wait_seconds", started - request.enqueued_at)

    @staticmethod
    def _scatter(items: list[tuple[_Request, int]], vectors: np.ndarray) -> None:
        for k, (request, row) in enumerate(items):
            if request.future.done():
                continue
            request.out[row] = vectors[k]
            request.remaining -= 1
            if request.remaining == 0:
                request.future.set_result(request.out)

    # -- the worker thread ---------------------------------------------------------------------

    def _encode(
        self, ids: list[np.ndarray], normalize: np.ndarray
    ) -> tuple[np.ndarray, dict[int, BaseException]]:
        """Vectors of ``ids`` [n, dim] and the rows that failed alone, by position.

        On out-of-memory the rows are split in half and each half retried; a row that runs out
        of memory on its own fails with ResourceExhaustedError, and only that row.
        """
        try:
            vectors = self._encode_once(ids, normalize)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            return self._split_after_oom(ids, normalize, exc)
        self._after_good_batch()
        return vectors, {}

    def _split_after_oom(self, ids, normalize, exc: BaseException):
        tokens = int(sum(len(x) for x in ids))
        if self.encoder.device.type == "cuda":
            torch.cuda.empty_cache()
        if len(ids) == 1:
            return np.full((1, self._dim), np.nan, np.float32), {0: self._too_big(tokens, exc)}
        self._cap = max(1, tokens // 2)
        self._good_batches = 0
        logger.warning(
            "out of memory on a batch of %d texts / %d tokens on %s; splitting it "
            "and capping the budget at %d tokens",
            len(ids),
            tokens,
            self.encoder.device,
            self._cap,
        )
        if self.metrics is not None:
            self.metrics.inc("oom_splits_total")
        if self._on_oom is not None:
            self._on_oom(tokens)
        half = len(ids) // 2
        first, first_failed = self._encode(ids[:half], normalize[:half])
        second, second_failed = self._encode(ids[half:], normalize[half:])
        failed = {**first_failed, **{half + k: v for k, v in second_failed.items()}}
        return np.concatenate([first, second]), failed

    def _too_big(self, tokens: int, exc: BaseException) -> ResourceExhaustedError:
        error = ResourceExhaustedError(
            f"one text of {tokens} tokens does not fit in memory on {self.encoder.device}",
            hint="free device memory, use a smaller dtype, or send a shorter text",
            device=str(self.encoder.device),
            tokens=tokens,
        )
        error.__cause__ = exc
        return error

    def _after_good_batch(self) -> None:
        if self._cap is None:
            return
        self._good_batches += 1
        if self._good_batches < RECOVER_AFTER_BATCHES:
            return
        self._good_batches = 0
        self._cap *= 2
        if self._cap >= self._token_budget():
            self._cap = None
            logger.info("token budget recovered after out-of-memory")
            if self._on_recovered is not None:
                self._on_recovered()

    def _encode_once(self, ids: list[np.ndarray], normalize: np.ndarray) -> np.ndarray:
        """pack -> forward -> pool (+ normalise where asked) -> copy back, each stage timed."""
        profiler, encoder = self.profiler, self.encoder
        began = time.perf_counter()
        with torch.inference_mode():
            with profiler.stage("pack", host=True):
                batch = pipeline.pack_batch(ids, encoder.device)
            with profiler.stage("forward"):
                hidden = encoder.forward(batch)
            with profiler.stage("pool"):
                vectors = encoder.sentence_head(hidden, batch)
                if normalize.any():
                    vectors = _normalize_rows(vectors, normalize)
            with profiler.stage("copy_back", host=True):
                out = vectors.float().cpu().numpy()
        profiler.flush()
        self.batches += 1
        self._record_batch(batch, time.perf_counter() - began)
        return out

    def _record_batch(self, batch: pipeline.PackedBatch, seconds: float) -> None:
        if self.metrics is None:
            return
        self.metrics.observe("batch_tokens", batch.n_tokens)
        self.metrics.observe("batch_texts", len(batch.lengths))
        self.metrics.inc("tokens_total", batch.n_tokens)
        self.metrics.inc("padding_avoided_tokens_total", batch.padded_tokens - batch.n_tokens)
        if seconds > 0:
            self.metrics.set("tokens_per_second", batch.n_tokens / seconds)


def _normalize_rows(vectors: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    if mask.all():
        return ops.l2_normalize(vectors.contiguous())
    index = torch.from_numpy(np.flatnonzero(mask)).to(vectors.device)
    out = vectors.clone()
    out[index] = ops.l2_normalize(vectors.index_select(0, index).contiguous())
    return out


__all__ = ["DynamicBatcher", "is_out_of_memory"]
