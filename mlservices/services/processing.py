"""``ProcessingService``: documents of any length to one vector each.

Each document is validated (the configured strategy), normalised (Unicode NFC, whitespace runs
collapsed), tokenized without truncation and cut into overlapping windows of the model's
length (``[CLS] body[s : s + window - 2] [SEP]``, consecutive windows sharing
``chunk_overlap_tokens`` tokens). The windows are embedded through the embedding service's
shared batches and averaged per document (then L2-normalised when asked). A document that fits
in one window gets exactly ``Encoder.encode`` of its normalised text.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlservices import pipeline
from mlservices.encoder import Encoder
from mlservices.errors import SettingsError, UnsupportedModelError
from mlservices.services.embedding import TOKENIZE_IN_THREAD_CHARS, EmbeddingService
from mlservices.services.lifecycle import ManagedService
from mlservices.settings import Settings
from mlservices.validation import (
    ProcessRequest,
    Repair,
    parse_request,
    validate_input,
    validate_state,
)
from mlservices.validation.strategies import normalize_unicode, normalize_whitespace

UNTRUNCATED = 1 << 30  # a tokenizer limit no document reaches


@dataclass
class ProcessedDocuments:
    """One vector per document, and how each was cut.

    Attributes:
        embeddings: float32 [n_documents, dim], in input order.
        chunks: windows per document.
        tokens: tokens per document (special tokens excluded).
        repairs: changes the lenient strategy made, by document index.
    """

    embeddings: np.ndarray
    chunks: list[int]
    tokens: list[int]
    repairs: list[Repair] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """Unicode NFC, whitespace runs collapsed to one space, ends stripped."""
    return normalize_whitespace(normalize_unicode(text)[0])[0]


def window_starts(n_body: int, body_window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``body_window`` tokens over ``n_body`` tokens, each sharing
    ``overlap`` tokens with the previous one; the last window ends at the last token."""
    if n_body <= body_window:
        return [0]
    step = body_window - overlap
    count = 1 + math.ceil((n_body - body_window) / step)
    return [min(k * step, n_body - body_window) for k in range(count)]


class ProcessingService(ManagedService):
    """Normalise, chunk, embed and pool documents.

    Args:
        settings: configuration (``chunk_window_tokens``, ``chunk_overlap_tokens``, strategy).
        embedding_service: a service to embed windows with; None creates (and owns) one.
        encoder: passed to the embedding service this service creates.
    """

    name = "processing"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedding_service: EmbeddingService | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        super().__init__(
            settings if settings is not None else getattr(embedding_service, "settings", None)
        )
        self._owns_embedding = embedding_service is None
        self.embedding = embedding_service or EmbeddingService(self.settings, encoder=encoder)
        self._tokenizer: pipeline.TextTokenizer | None = None
        self._special = (0, 0)
        self.window = 0

    async def _on_start(self) -> None:
        if self._owns_embedding:
            await self.embedding.start()
        validate_state(self.embedding.machine, "starting the processing service")
        encoder = self.embedding.encoder
        self.window = self._window(encoder)
        spec = encoder.spec
        self._tokenizer = await asyncio.to_thread(
            pipeline.TextTokenizer.from_folder,
            spec.tokenizer_path or spec.path,
            UNTRUNCATED,
            spec.do_lower_case,
        )
        self._special = self._special_ids(self._tokenizer([""]).ids[0])

    def _window(self, encoder: Encoder) -> int:
        window = min(
            self.settings.chunk_window_tokens or encoder.max_seq_length,
            encoder.max_seq_length,
            self.settings.max_batch_tokens,
        )
        if self.settings.chunk_overlap_tokens > window - 3:
            raise SettingsError(
                f"chunk_overlap_tokens={self.settings.chunk_overlap_tokens} does not fit windows "
                f"of {window} tokens",
                hint=f"allowed: 0 <= chunk_overlap_tokens <= {window - 3}",
                setting="chunk_overlap_tokens",
                value=self.settings.chunk_overlap_tokens,
                allowed=f"0..{window - 3}",
            )
        return window

    async def _on_stop(self) -> None:
        self._tokenizer = None
        if self._owns_embedding:
            await self.embedding.stop()

    async def process(
        self,
        documents: Sequence[str],
        *,
        normalize: bool | None = None,
        timeout_s: float | None = None,
    ) -> ProcessedDocuments:
        """Embed each document as the mean of its windows' vectors.

        Raises:
            InputTypeError, ValidationError: a document is invalid (``context['index']``).
            StateError: this service or its embedding service is not serving.
        """
        validate_state(self.machine, "process")
        async with self.embedding.instrumentation.operation("process"):
            return await self._process(documents, normalize, timeout_s)

    async def _process(self, documents, normalize, timeout_s) -> ProcessedDocuments:
        request = parse_request(
            ProcessRequest, documents=list(documents), normalize=normalize, timeout_s=timeout_s
        )
        checked = validate_input(request.documents, self.embedding.strategy)
        texts = [normalize_text(t) for t in checked.texts]
        bodies = await self._bodies(texts)
        windows, owners = self._windows(bodies)
        vectors = await self.embedding.embed_token_ids(
            windows, normalize=False, timeout_s=request.timeout_s
        )
        do_normalize = (
            request.normalize
            if request.normalize is not None
            else self.settings.normalize_embeddings
        )
        pooled = _mean_by_owner(vectors, owners, len(texts), do_normalize)
        chunks = np.bincount(owners, minlength=len(texts)).tolist()
        return ProcessedDocuments(pooled, chunks, [len(b) for b in bodies], checked.repairs)

    async def _bodies(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text without its leading and trailing special tokens."""
        if sum(map(len, texts)) > TOKENIZE_IN_THREAD_CHARS:
            tokenized = await asyncio.to_thread(self._tokenizer, texts)
        else:
            tokenized = self._tokenizer(texts)
        return [ids[1:-1] for ids in tokenized.ids]

    def _special_ids(self, ids: np.ndarray) -> tuple[int, int]:
        special = self._tokenizer.special_ids
        if len(ids) < 2 or int(ids[0]) not in special or int(ids[-1]) not in special:
            raise UnsupportedModelError(
                "chunking needs a tokenizer that wraps each text in one leading and one "
                "trailing special token (BERT's [CLS] ... [SEP])",
                hint="embed documents that fit in the model window with EmbeddingService",
            )
        return int(ids[0]), int(ids[-1])

    def _windows(self, bodies: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
        first, last = self._special
        body_window = self.window - 2
        windows, owners = [], []
        for doc, body in enumerate(bodies):
            for start in window_starts(len(body), body_window, self.settings.chunk_overlap_tokens):
                piece = body[start : start + body_window]
                windows.append(np.concatenate([[first], piece, [last]]).astype(np.int64))
                owners.append(doc)
        return windows, np.asarray(owners, dtype=np.int64)


def _mean_by_owner(vectors: np.ndarray, owners: np.ndarray, n: int, normalize: bool) -> np.ndarray:
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    sums = np.zeros((n, dim), dtype=np.float64)
    np.add.at(sums, owners, vectors)
    counts = np.maximum(np.bincount(owners, minlength=n), 1)[:, None]
    out = (sums / counts).astype(np.float32)
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = np.where(norms > 0, out / np.maximum(norms, 1e-12), out)
    return out


__all__ = ["ProcessedDocuments", "ProcessingService", "normalize_text", "window_starts"]
