"""``accelerate(model)``: route a loaded SentenceTransformer's ``encode`` through mlservices.

The returned object is the same SentenceTransformer; only its ``encode`` is replaced. Arguments
or modules that mlservices cannot serve fall back to the original method, with one warning per
reason that says why.
"""

from __future__ import annotations

import functools
import logging
import threading
from pathlib import Path
from typing import Any

import torch

from mlservices.encoder import Encoder
from mlservices.errors import MLServicesError
from mlservices.models.loading import (
    SUPPORTED_MODULES,
    DenseSpec,
    ModelSpec,
    parse_pooling_config,
)
from mlservices.pipeline import TextTokenizer

logger = logging.getLogger(__name__)


def _spec_from_model(model: Any) -> tuple[ModelSpec, TextTokenizer]:
    """Read the in-memory modules of a SentenceTransformer (fine-tuned weights included)."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    unsupported = [k for k in kinds if k not in SUPPORTED_MODULES]
    if unsupported or not kinds or kinds[0] != "Transformer":
        raise MLServicesError(f"modules {kinds} are not supported (unsupported: {unsupported})")
    transformer = modules[0]
    auto_model = transformer.auto_model
    config = auto_model.config.to_dict()
    if config.get("model_type") != "bert":
        raise MLServicesError(f"architecture {config.get('model_type')!r} is not supported")
    spec = ModelSpec(
        path=Path("<in-memory>"),
        config=config,
        state_dict=auto_model.state_dict(),
        max_seq_length=int(model.max_seq_length),
        do_lower_case=bool(getattr(transformer, "do_lower_case", False)),
        prompts=dict(getattr(model, "prompts", None) or {}),
        default_prompt_name=getattr(model, "default_prompt_name", None),
        is_sentence_transformers=True,
    )
    for module, kind in zip(modules[1:], kinds[1:]):
        if kind == "Pooling":
            spec.pooling = parse_pooling_config(
                {
                    "pooling_mode": module.pooling_mode,
                    "include_prompt": getattr(module, "include_prompt", True),
                }
            )
        elif kind == "Dense":
            activation = type(getattr(module, "activation_function", torch.nn.Identity())).__name__
            spec.dense.append(
                DenseSpec(module.linear.weight.detach(), _detach(module.linear.bias), activation)
            )
        elif kind == "Normalize":
            spec.normalize_after_dense = len(spec.dense)
    tokenizer = TextTokenizer(model.tokenizer, spec.max_seq_length, spec.do_lower_case)
    return spec, tokenizer


def _detach(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach()


def _fallback_reason(inputs, output_value, device, pool, kwargs, encoder: Encoder) -> str | None:
    """Why this call cannot go through mlservices, or None when it can."""
    if kwargs:
        return f"keyword arguments {sorted(kwargs)} are only handled by sentence-transformers"
    if pool is not None:
        return "multi-process pools are handled by sentence-transformers"
    if device is not None and torch.device(device) != encoder.device:
        return f"device={device!r} differs from the accelerated model's {encoder.device}"
    if output_value not in ("sentence_embedding", "token_embeddings"):
        return f"output_value={output_value!r} is only offered by sentence-transformers"
    items = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        return "inputs that are not str or a list of str are handled by sentence-transformers"
    return None


def accelerate(model: Any, *, max_batch_tokens: int | None = None) -> Any:
    """Make ``model.encode`` run through mlservices, with identical results.

    Args:
        model: a loaded ``sentence_transformers.SentenceTransformer``.
        max_batch_tokens: optional token budget per packed batch.

    Returns:
        The same object. If its modules cannot be accelerated, it is returned unchanged after one
        warning that says why.
    """
    try:
        spec, tokenizer = _spec_from_model(model)
        param = next(model.parameters())
        encoder = Encoder(spec, param.device, param.dtype, tokenizer=tokenizer)
    except (MLServicesError, AttributeError, StopIteration) as exc:
        logger.warning("mlservices.accelerate: keeping sentence-transformers' encode: %s", exc)
        return model

    original = model.encode
    warned: set[str] = set()
    lock = threading.Lock()

    @functools.wraps(original)
    def encode(
        inputs,
        prompt_name=None,
        prompt=None,
        batch_size=32,
        show_progress_bar=None,
        output_value="sentence_embedding",
        precision="float32",
        convert_to_numpy=True,
        convert_to_tensor=False,
        device=None,
        normalize_embeddings=False,
        truncate_dim=None,
        pool=None,
        chunk_size=None,
        **kwargs,
    ):
        reason = _fallback_reason(inputs, output_value, device, pool, kwargs, encoder)
        if reason is not None:
            with lock:
                if reason not in warned:
                    warned.add(reason)
                    logger.warning("mlservices.accelerate: falling back because %s", reason)
            return original(
                inputs,
                prompt_name=prompt_name,
                prompt=prompt,
                batch_size=batch_size,
                show_progress_bar=show_progress_bar,
                output_value=output_value,
                precision=precision,
                convert_to_numpy=convert_to_numpy,
                convert_to_tensor=convert_to_tensor,
                device=device,
                normalize_embeddings=normalize_embeddings,
                truncate_dim=truncate_dim,
                pool=pool,
                chunk_size=chunk_size,
                **kwargs,
            )
        return encoder.encode(
            inputs,
            batch_size,
            normalize_embeddings=normalize_embeddings,
            convert_to_numpy=convert_to_numpy,
            convert_to_tensor=convert_to_tensor,
            show_progress_bar=show_progress_bar,
            output_value=output_value,
            precision=precision,
            truncate_dim=truncate_dim if truncate_dim is not None else model.truncate_dim,
            prompt=prompt,
            prompt_name=prompt_name,
            max_batch_tokens=max_batch_tokens,
        )

    model.encode = encode
    model.mlservices_encoder = encoder
    return model
