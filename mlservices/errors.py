"""Typed errors. Each carries context (which input, which limit, which device) and a hint that
says what to do about it; ``str(err)`` reads as one complete sentence for a log or a CLI."""

from __future__ import annotations

from typing import Any


class MLServicesError(Exception):
    """Base class of every error this library raises on purpose.

    Args:
        message: What went wrong, with the offending value.
        hint: What the caller can do about it.
        **context: Structured details (``index``, ``limit``, ``device`` ...), kept in ``context``.
    """

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        self.message = message
        self.hint = hint
        self.context = context
        super().__init__(message if hint is None else f"{message}; {hint}")


class ValidationError(MLServicesError, ValueError):
    """A request or an argument is invalid. ``context['index']`` names the item, if any."""


class InputTypeError(MLServicesError, TypeError):
    """An input has the wrong type (for example a number where a string was expected)."""


class ModelLoadError(MLServicesError, OSError):
    """A model folder is missing, incomplete or unreadable."""


class UnsupportedModelError(ModelLoadError):
    """The checkpoint's architecture or one of its modules is not supported."""


class ResourceExhaustedError(MLServicesError, MemoryError):
    """A configured memory or size limit would be exceeded, or the device ran out of memory."""


class StateError(MLServicesError, RuntimeError):
    """The service is in a state that does not allow the call (or the transition)."""


class OperationTimeoutError(MLServicesError, TimeoutError):
    """An operation did not finish within its deadline."""


class BackendUnavailableError(MLServicesError, RuntimeError):
    """A kernel backend was requested that this install or this device cannot run."""


class SettingsError(ValidationError):
    """A setting has a bad value. ``context`` holds ``setting``, ``value``, ``allowed`` and
    ``source`` (keyword, environment variable or config file)."""
