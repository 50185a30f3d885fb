"""``Encoder``: a sentence-transformers model folder run through the packed, fused data path."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mlservices import ops, pipeline
from mlservices.errors import ValidationError
from mlservices.models.bert import PackedBert
from mlservices.models.loading import ModelSpec, load_spec

logger = logging.getLogger(__name__)

DEFAULT_MAX_BATCH_TOKENS = 16384
OUTPUT_VALUES = ("sentence_embedding", "token_embeddings")
DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


@dataclass
class EncodeStats:
    """What one encode call did: texts, real tokens, truncation, padding avoided, time."""

    texts: int = 0
    tokens: int = 0
    truncated: int = 0
    padding_avoided: int = 0
    batches: int = 0
    seconds: float = 0.0
    truncated_indices: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def texts_per_second(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0


@dataclass
class EmbedResult:
    """Sentence embeddings [n, dim] float32 on the model's device (input order), or per-text
    token embeddings, with the call's statistics."""

    embeddings: torch.Tensor | list[torch.Tensor]
    stats: EncodeStats


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(
            f"device {device!r} is not a valid device", hint="use 'cpu', 'cuda' or 'cuda:N'"
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            f"device {str(dev)!r} was requested but torch sees no CUDA device",
            hint="use device='cpu' or None (automatic)",
            device=str(dev),
        )
    if dev.type not in ("cpu", "cuda"):
        raise ValidationError(f"device {str(dev)!r} is not supported", hint="use 'cpu' or 'cuda'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        if dtype in DTYPES.values():
            return dtype
    elif dtype in DTYPES:
        return DTYPES[dtype]
    raise ValidationError(
        f"dtype {dtype!r} is not supported", hint="use float32, float16 or bfloat16"
    )


class Encoder:
    """Sentence embeddings from a sentence-transformers (or plain BERT) folder, computed on
    packed batches with no padding tokens.

    Build one with :meth:`from_pretrained`. An ``Encoder`` is safe to share between threads.

    Example:
        >>> enc = Encoder.from_pretrained()              # bundled all-MiniLM-L6-v2
        >>> enc.encode(["a cat", "a dog"]).shape
        (2, 384)
    """

    def __init__(
        self,
        spec: ModelSpec,
        device: torch.device,
        dtype: torch.dtype,
        tokenizer: pipeline.TextTokenizer | None = None,
    ) -> None:
        self.spec = spec
        self.device = device
        self.dtype = dtype
        self.model = PackedBert(spec.config, spec.state_dict, device, dtype)
        if tokenizer is None:
            tokenizer = pipeline.TextTokenizer.from_folder(
                spec.tokenizer_path or spec.path, spec.max_seq_length, spec.do_lower_case
            )
        self.tokenizer = tokenizer
        spec.state_dict = {}  # the weights now live in the model; drop the second copy
        self._prompt_lengths: dict[str, int] = {}
        self._local = threading.local()

    @property
    def last_stats(self) -> EncodeStats | None:
        """Statistics of this thread's most recent encode call (None before the first)."""
        return getattr(self._local, "stats", None)

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path | None = None,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> Encoder:
        """Load a model folder; ``model=None`` loads the bundled all-MiniLM-L6-v2.

        Args:
            model: a local sentence-transformers folder or plain Hugging Face BERT folder.
            device: ``cpu``, ``cuda``, ``cuda:N`` or None (a GPU when torch sees one).
            dtype: ``float32`` (default, matches sentence-transformers), ``float16`` or
                ``bfloat16``; LayerNorm statistics, softmax and pooling stay in float32.

        Raises:
            ModelLoadError, UnsupportedModelError: the folder cannot be served.
        """
        dev, dt = resolve_device(device), resolve_dtype(dtype)
        spec = load_spec(model)
        encoder = cls(spec, dev, dt)
        logger.info(
            "Encoder ready: %s on %s in %s (max_seq_length %d, pooling %s)",
            spec.path,
            dev,
            str(dt).removeprefix("torch."),
            spec.max_seq_length,
            "+".join(spec.pooling.modes),
        )
        return encoder

    @property
    def max_seq_length(self) -> int:
        return self.spec.max_seq_length

    @property
    def embedding_dimension(self) -> int:
        """Width of the sentence embedding (after the model's Dense modules)."""
        if self.spec.dense:
            return int(self.spec.dense[-1].weight.shape[0])
        return self.model.hidden * len(self.spec.pooling.modes)

    # -- the data path ------------------------------------------------------------------------

    def resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.spec.default_prompt_name
        if name is None:
            return None
        # Like sentence-transformers: "query" and "document" exist (empty) unless configured.
        prompts = {"query": "", "document": "", **self.spec.prompts}
        if name not in prompts:
            raise ValidationError(
                f"prompt_name {name!r} is not one of this model's prompts {sorted(prompts)}",
                hint="pass prompt='...' or one of the configured names",
            )
        return prompts[name]

    def _prompt_prefix(self, prompt: str | None) -> int:
        """Tokens to exclude from pooling: the prompt's, when the model excludes prompts."""
        if not prompt or self.spec.pooling.include_prompt:
            return 0
        if prompt not in self._prompt_lengths:
            self._prompt_lengths[prompt] = self.tokenizer.prompt_length(prompt)
        return self._prompt_lengths[prompt]

    def forward(self, batch: pipeline.PackedBatch) -> torch.Tensor:
        """Last hidden states [T, hidden] of one packed batch."""
        return self.model.forward(
            batch.input_ids, batch.cu_seqlens, batch.max_seqlen, batch.positions
        )

    def sentence_head(
        self,
        hidden: torch.Tensor,
        batch: pipeline.PackedBatch,
        prefix: int = 0,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
    ) -> torch.Tensor:
        """Pooling, the model's Dense/Normalize modules, truncate_dim, normalisation: [B, D].

        The normalisation is fused into pooling when nothing sits between the two.
        """
        spec = self.spec
        if prefix:
            hidden, cu_seqlens = pipeline.drop_prefix(hidden, batch, prefix)
        else:
            cu_seqlens = batch.cu_seqlens
        fuse = spec.normalize_after_dense == 0 or (
            normalize_embeddings and not spec.dense and truncate_dim is None
        )
        out = pipeline.pool_segments(hidden, cu_seqlens, spec.pooling, fuse).float()
        for i, dense in enumerate(spec.dense, start=1):
            out = pipeline.apply_dense(out, dense)
            if spec.normalize_after_dense == i:
                out = ops.l2_normalize(out)
        if truncate_dim is not None:
            out = out[:, :truncate_dim]
        if normalize_embeddings and not (fuse and truncate_dim is None):
            out = ops.l2_normalize(out.contiguous())
        return out

    def iter_batches(
        self, tokenized: pipeline.Tokenized, batch_size: int, max_batch_tokens: int
    ) -> Iterator[tuple[np.ndarray, pipeline.PackedBatch]]:
        """Plan and pack batches: yields (indices into the inputs, packed batch)."""
        for indices in pipeline.plan_batches(tokenized.lengths, batch_size, max_batch_tokens):
            yield indices, pipeline.pack_batch([tokenized.ids[i] for i in indices], self.device)

    def embed(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        max_batch_tokens: int | None = None,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        prompt: str | None = None,
        output_value: str = "sentence_embedding",
        show_progress_bar: bool = False,
    ) -> EmbedResult:
        """The whole data path on validated arguments; returns embeddings in input order.

        Sentence embeddings come back as one float32 [n, dim] tensor on the model's device;
        token embeddings as a list of [n_tokens_i, hidden] float32 tensors.
        """
        start = time.perf_counter()
        texts = pipeline.validate_texts(texts)
        prefix = self._prompt_prefix(prompt)
        if prompt:
            texts = [prompt + t for t in texts]
        tokenized = self.tokenizer(texts)
        stats = EncodeStats(texts=len(texts), tokens=int(tokenized.lengths.sum()))
        stats.truncated_indices = np.flatnonzero(tokenized.truncated).tolist()
        stats.truncated = len(stats.truncated_indices)
        budget = max(max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS, self.max_seq_length)

        sentence = output_value == "sentence_embedding"
        out_dim = truncate_dim or self.embedding_dimension
        result = torch.empty((len(texts), out_dim), dtype=torch.float32, device=self.device)
        tokens_out: list[torch.Tensor | None] = [None] * len(texts)
        progress = _progress(len(texts), show_progress_bar)
        for indices, batch in self.iter_batches(tokenized, batch_size, budget):
            hidden = self.forward(batch)
            index = torch.from_numpy(indices).to(self.device)
            if sentence:
                rows = self.sentence_head(hidden, batch, prefix, normalize_embeddings, truncate_dim)
                result.index_copy_(0, index, rows)
            else:
                for i, part in zip(indices, hidden.float().split(batch.lengths.tolist())):
                    tokens_out[i] = part
            stats.batches += 1
            stats.padding_avoided += batch.padded_tokens - batch.n_tokens
            if progress is not None:
                progress.update(len(indices))
        if progress is not None:
            progress.close()
        stats.seconds = time.perf_counter() - start
        if stats.truncated:
            logger.warning(
                "%d of %d texts were longer than max_seq_length=%d tokens and were truncated "
                "(first: input %d)",
                stats.truncated,
                stats.texts,
                self.max_seq_length,
                stats.truncated_indices[0],
            )
        self._local.stats = stats
        return EmbedResult(result if sentence else tokens_out, stats)

    def encode(
        self,
        sentences: str | Sequence[str],
        batch_size: int = 32,
        *,
        normalize_embeddings: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        show_progress_bar: bool | None = None,
        output_value: str = "sentence_embedding",
        precision: str = "float32",
        truncate_dim: int | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        max_batch_tokens: int | None = None,
    ):
        """Embed text with the meaning, shapes and types of ``SentenceTransformer.encode``.

        Args:
            sentences: a str (gives a 1-D vector) or a sequence of str (gives [n, dim]).
            batch_size: at most this many texts per packed batch.
            normalize_embeddings: L2-normalise each vector (fused into pooling when possible).
            convert_to_numpy: return numpy (default) rather than a list of tensors.
            convert_to_tensor: return one torch tensor on the model's device (wins over numpy).
            show_progress_bar: a tqdm bar over texts; None shows it when logging is at INFO.
            output_value: ``sentence_embedding`` or ``token_embeddings`` (a list of
                [n_tokens, hidden] tensors, special tokens included).
            precision: float32, int8, uint8, binary or ubinary (sentence-transformers'
                quantisation conventions).
            truncate_dim: keep the first this-many dimensions (before normalize_embeddings).
            prompt: text prepended to every input; prompt_name: a key of the model's prompts.
            max_batch_tokens: at most this many real tokens per packed batch (default 16384).

        Returns:
            np.ndarray [n, dim] (or [dim] for a str), a torch.Tensor, or a list of tensors.

        Raises:
            InputTypeError: an input is not a str (the error names its index).
            ValidationError: an argument is out of range (the error names it and the range).
        """
        self._check_encode_args(batch_size, output_value, precision, truncate_dim, max_batch_tokens)
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
        single = isinstance(sentences, str)
        texts = [sentences] if single else list(_as_list(sentences))
        result = self.embed(
            texts,
            batch_size=batch_size,
            max_batch_tokens=max_batch_tokens,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            prompt=self.resolve_prompt(prompt, prompt_name),
            output_value=output_value,
            show_progress_bar=show_progress_bar,
        ).embeddings
        if output_value == "token_embeddings":
            return result[0] if single else result
        return _convert(result, single, precision, convert_to_numpy, convert_to_tensor)

    def _check_encode_args(
        self, batch_size, output_value, precision, truncate_dim, max_batch_tokens
    ) -> None:
        if not _positive_int(batch_size):
            raise ValidationError(f"batch_size must be a positive int, got {batch_size!r}")
        if max_batch_tokens is not None and not _positive_int(max_batch_tokens):
            raise ValidationError(
                f"max_batch_tokens must be a positive int or None, got {max_batch_tokens!r}"
            )
        if output_value not in OUTPUT_VALUES:
            raise ValidationError(
                f"output_value must be one of {OUTPUT_VALUES}, got {output_value!r}",
                hint="output_value=None (all features) is only offered by sentence-transformers",
            )
        if precision not in pipeline.PRECISIONS:
            raise ValidationError(
                f"precision must be one of {pipeline.PRECISIONS}, got {precision!r}"
            )
        if truncate_dim is not None and not (
            _positive_int(truncate_dim) and truncate_dim <= self.embedding_dimension
        ):
            raise ValidationError(
                f"truncate_dim must be in 1..{self.embedding_dimension}, got {truncate_dim!r}"
            )


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _as_list(sentences) -> list:
    if isinstance(sentences, (Mapping, Set)):
        raise ValidationError(
            f"sentences must be a str or an ordered sequence of str, got "
            f"{type(sentences).__name__}",
            hint="pass a list (a dict or set has no defined row order)",
        )
    if isinstance(sentences, (list, tuple)):
        return list(sentences)
    if isinstance(sentences, np.ndarray):
        return sentences.tolist()
    try:
        return list(sentences)
    except TypeError:
        raise ValidationError(
            f"sentences must be a str or a sequence of str, got {type(sentences).__name__}"
        ) from None


def _convert(result: torch.Tensor, single, precision, convert_to_numpy, convert_to_tensor):
    """Sentence embeddings to the requested container, dtype and shape (ST's conventions)."""
    if precision != "float32":
        array = pipeline.quantize(result.cpu().numpy(), precision) if len(result) else None
        quantized = torch.from_numpy(array) if array is not None else torch.tensor([])
        result = quantized.to(result.device)
    if convert_to_tensor:
        out = result if len(result) else torch.tensor([], device=result.device)
    elif convert_to_numpy:
        out = result.cpu().numpy() if len(result) else np.array([])
    else:
        out = list(result)
    return out[0] if single else out


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="Embedding", unit="text")
