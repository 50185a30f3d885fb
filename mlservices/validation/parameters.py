"""Pydantic models of every request the services take (settings are ``mlservices.Settings``).

The texts themselves are typed ``Any`` on purpose: the validation strategy checks each item and
raises an error that names its index, which pydantic's own messages would not do as plainly.
"""

from __future__ import annotations

from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from mlservices.errors import ValidationError


class EmbedOptions(BaseModel):
    """Options common to every embedding request.

    Attributes:
        normalize: L2-normalise the vectors; None takes ``Settings.normalize_embeddings``.
        timeout_s: give up after this many seconds; None takes ``Settings.request_timeout_s``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalize: bool | None = None
    timeout_s: float | None = Field(None, gt=0.0, le=86_400.0)


class EmbedTextRequest(EmbedOptions):
    """``EmbeddingService.embed_text``: one text."""

    text: Any


class EmbedBatchRequest(EmbedOptions):
    """``EmbeddingService.embed_batch``: a list of texts, answered in the same order."""

    texts: list[Any]


class ProcessRequest(EmbedOptions):
    """``ProcessingService.process``: documents, each chunked and pooled into one vector."""

    documents: list[Any]


Request = TypeVar("Request", bound=BaseModel)


def parse_request(model: type[Request], **data: Any) -> Request:
    """Build a request model, turning pydantic's error into a ValidationError naming the field.

    Raises:
        ValidationError: a field has a bad value (``context['field']`` names it).
    """
    try:
        return model(**data)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(map(str, error["loc"])) or model.__name__
        raise ValidationError(
            f"{model.__name__}.{name}={error.get('input')!r:.60} is invalid: {error['msg']}",
            hint=f"see the fields of {model.__name__}: {', '.join(model.model_fields)}",
            field=name,
        ) from None


__all__ = [
    "EmbedBatchRequest",
    "EmbedOptions",
    "EmbedTextRequest",
    "ProcessRequest",
    "parse_request",
]
