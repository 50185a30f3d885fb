"""The data path, one function per step:

validate -> tokenize -> plan batches -> pack -> (encoder forward) -> pool -> head -> convert.

Every caller (``Encoder.encode``, the service, the CLI, the benchmarks) goes through these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mlservices import ops
from mlservices.errors import (
    InputTypeError,
    ModelLoadError,
    UnsupportedModelError,
    ValidationError,
)
from mlservices.models.loading import DenseSpec, PoolingSpec

PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")


def validate_texts(texts: Sequence[object]) -> list[str]:
    """Every item must be a str that encodes as UTF-8 (no lone surrogates).

    Raises:
        InputTypeError: an item is not a str; ``context['index']`` names it.
        ValidationError: an item cannot be encoded as UTF-8.
    """
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputTypeError(
                f"input {i} is {type(text).__name__}, not str",
                hint="pass text as str (convert numbers, drop None)",
                index=i,
            )
        problem = unicode_problem(text)
        if problem is not None:
            raise ValidationError(
                f"input {i} is not valid Unicode text ({problem})",
                hint="remove lone surrogates, or decode the source with errors='replace'",
                index=i,
            )
    return list(texts)


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be encoded as UTF-8 (a lone surrogate), or None when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{exc.reason} at position {exc.start}"
    return None


@dataclass
class Tokenized:
    """Token ids of each text (with special tokens), truncated at the model's limit."""

    ids: list[np.ndarray]  # one int64 array per text
    lengths: np.ndarray  # [n] int64
    truncated: np.ndarray  # [n] bool: text lost tokens to max_seq_length


class TextTokenizer:
    """The model's fast tokenizer, set to truncate at ``max_seq_length`` and never pad.

    Args:
        hf_tokenizer: a transformers fast tokenizer (only its Rust backend is used, copied).
        max_seq_length: tokens per text including special tokens.
        do_lower_case: lower-case text first (sentence_bert_config.json's setting).
    """

    def __init__(self, hf_tokenizer, max_seq_length: int, do_lower_case: bool = False) -> None:
        from tokenizers import Tokenizer

        if not getattr(hf_tokenizer, "is_fast", False):
            raise UnsupportedModelError(
                f"tokenizer {type(hf_tokenizer).__name__} has no fast (Rust) implementation",
                hint="add a tokenizer.json to the model folder",
            )
        # A private copy: truncation/padding settings are never shared with anyone else's object.
        self._tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_seq_length)
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self.special_ids = set(hf_tokenizer.all_special_ids)

    @classmethod
    def from_folder(cls, folder, max_seq_length: int, do_lower_case: bool = False):
        """The fast tokenizer saved in ``folder`` (tokenizer.json, or vocab files to convert)."""
        from transformers import AutoTokenizer

        try:
            hf_tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"no usable tokenizer in {folder}: {exc}") from exc
        return cls(hf_tokenizer, max_seq_length, do_lower_case)

    def __call__(self, texts: list[str]) -> Tokenized:
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        encodings = self._tokenizer.encode_batch(texts) if texts else []
        ids = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        truncated = np.fromiter((bool(e.overflowing) for e in encodings), bool, count=len(ids))
        return Tokenized(ids, lengths, truncated)

    def prompt_length(self, prompt: str) -> int:
        """Tokens of ``prompt`` as a prefix, without a trailing special token (like ST)."""
        ids = self([prompt]).ids[0]
        return len(ids) - 1 if len(ids) and int(ids[-1]) in self.special_ids else len(ids)


def plan_batches(lengths: np.ndarray, max_texts: int, max_tokens: int) -> list[np.ndarray]:
    """Group text indices, longest first, into batches of <= max_texts texts and <= max_tokens
    real tokens (a single text longer than the budget gets a batch of its own).

    The order is a stable sort on length, so a text's batch neighbours never depend on how the
    caller ordered equal-length texts.
    """
    order = np.argsort(-lengths, kind="stable")
    batches, current, tokens = [], [], 0
    for idx in order:
        n = int(lengths[idx])
        if current and (len(current) >= max_texts or tokens + n > max_tokens):
            batches.append(np.asarray(current, dtype=np.int64))
            current, tokens = [], 0
        current.append(idx)
        tokens += n
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


@dataclass
class PackedBatch:
    """One packed batch: every tensor is over real tokens only."""

    input_ids: torch.Tensor  # [T] int64
    positions: torch.Tensor  # [T] int64, position within each text
    cu_seqlens: torch.Tensor  # [B + 1] int32
    max_seqlen: int
    lengths: np.ndarray  # [B] int64 (host copy)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def padded_tokens(self) -> int:
        """Tokens a padded [B, max_seqlen] batch would have computed."""
        return int(len(self.lengths) * self.max_seqlen)


def pack_batch(ids: list[np.ndarray], device: torch.device) -> PackedBatch:
    """Concatenate token ids of one batch into a packed stream with offsets and positions."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    positions = np.arange(len(flat), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
    return PackedBatch(
        input_ids=torch.from_numpy(flat).to(device, non_blocking=True),
        positions=torch.from_numpy(positions).to(device, non_blocking=True),
        cu_seqlens=torch.from_numpy(offsets.astype(np.int32)).to(device, non_blocking=True),
        max_seqlen=int(lengths.max()) if len(lengths) else 0,
        lengths=lengths,
    )


def drop_prefix(
    hidden: torch.Tensor, batch: PackedBatch, prefix: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove the first ``prefix`` tokens of every segment (prompt tokens excluded from pooling).

    Returns the remaining rows [T', H] and their cu_seqlens. A segment no longer than the prefix
    keeps nothing.
    """
    keep = np.maximum(batch.lengths - prefix, 0)
    starts = np.concatenate([[0], np.cumsum(batch.lengths)[:-1]]) + np.minimum(
        prefix, batch.lengths
    )
    index = np.concatenate([np.arange(s, s + k) for s, k in zip(starts, keep)] or [np.zeros(0)])
    rows = hidden.index_select(0, torch.from_numpy(index.astype(np.int64)).to(hidden.device))
    cu = np.zeros(len(keep) + 1, dtype=np.int32)
    np.cumsum(keep, out=cu[1:])
    return rows, torch.from_numpy(cu).to(hidden.device)


def pool_segments(
    hidden: torch.Tensor,
    cu_seqlens: torch.Tensor,
    pooling: PoolingSpec,
    normalize: bool,
) -> torch.Tensor:
    """Pool [T, H] to [B, H * n_modes] in the model's pooling modes, concatenated in order.

    With ``normalize`` and a single mode the L2 normalisation is fused into the pooling pass.
    """
    fused = normalize and len(pooling.modes) == 1
    vectors = []
    for mode in pooling.modes:
        if mode == "mean_sqrt_len_tokens":
            counts = (cu_seqlens[1:] - cu_seqlens[:-1]).clamp_min(1).to(torch.float32)
            mean = ops.pool(hidden, cu_seqlens, "mean", check_inputs=False)
            vectors.append((mean.float() * counts.sqrt().unsqueeze(1)).to(hidden.dtype))
            fused = False
        else:
            op_mode = "last" if mode == "lasttoken" else mode
            vectors.append(ops.pool(hidden, cu_seqlens, op_mode, fused, check_inputs=False))
    out = vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)
    if normalize and not fused:
        out = ops.l2_normalize(out.contiguous())
    return out


_DENSE_ACTIVATIONS = {
    "Identity": lambda x: x,
    "Tanh": torch.tanh,
    "ReLU": F.relu,
    "GELU": F.gelu,
    "Sigmoid": torch.sigmoid,
}


def apply_dense(x: torch.Tensor, dense: DenseSpec) -> torch.Tensor:
    """One sentence-transformers Dense module: activation(x W^T + b), in float32."""
    weight = dense.weight.to(x.device, torch.float32)
    bias = None if dense.bias is None else dense.bias.to(x.device, torch.float32)
    return _DENSE_ACTIVATIONS[dense.activation](F.linear(x.float(), weight, bias))


def quantize(embeddings: np.ndarray, precision: str) -> np.ndarray:
    """float32 [n, d] to int8/uint8 (per-dimension ranges of these embeddings, 256 buckets) or
    binary/ubinary (sign bits packed 8 per byte), with sentence-transformers' conventions."""
    if precision == "float32":
        return embeddings.astype(np.float32, copy=False)
    if precision in ("binary", "ubinary"):
        bits = np.packbits(embeddings > 0, axis=-1)
        return bits if precision == "ubinary" else (bits.astype(np.int16) - 128).astype(np.int8)
    if embeddings.shape[0] < 2:
        raise ValidationError(
            f"precision={precision!r} needs at least 2 embeddings to calibrate per-dimension "
            f"ranges, got {embeddings.shape[0]}",
            hint="encode more texts at once, or quantize later with your own calibration ranges",
        )
    starts = embeddings.min(axis=0)
    steps = (embeddings.max(axis=0) - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    buckets = np.clip(np.floor((embeddings - starts) / steps), 0, 255)
    return buckets.astype(np.uint8) if precision == "uint8" else (buckets - 128).astype(np.int8)


__all__ = [
    "PRECISIONS",
    "PackedBatch",
    "TextTokenizer",
    "Tokenized",
    "apply_dense",
    "drop_prefix",
    "pack_batch",
    "plan_batches",
    "pool_segments",
    "quantize",
    "unicode_problem",
    "validate_texts",
]
