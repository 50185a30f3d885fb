"""The checks a service runs on a request before queueing it, in this order: state, batch,
input, resources. Each raises a typed error that says what is wrong and what to do."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from mlservices.errors import ResourceExhaustedError, ValidationError
from mlservices.state import SERVING, ServiceState, StateMachine
from mlservices.validation.strategies import ValidatedTexts, ValidationStrategy

if TYPE_CHECKING:
    from mlservices.optimization.resources import ResourceManager


def validate_state(
    machine: StateMachine, operation: str, allowed: Iterable[ServiceState] = SERVING
) -> ServiceState:
    """The service must be serving (READY or DEGRADED) for ``operation``.

    Raises:
        StateError: it is not; the message names its state.
    """
    return machine.require(allowed, operation)


def validate_batch(texts: Sequence[object], max_texts: int, queued: int, max_queued: int) -> None:
    """The request as a whole: its size, and room for it in the queue.

    Raises:
        ValidationError: more than ``max_texts`` texts in one request.
        ResourceExhaustedError: the queue cannot take this many more texts.
    """
    if len(texts) > max_texts:
        raise ValidationError(
            f"a request of {len(texts)} texts exceeds max_request_texts={max_texts}",
            hint="split the request, or raise max_request_texts",
            limit=max_texts,
        )
    if queued + len(texts) > max_queued:
        raise ResourceExhaustedError(
            f"the queue holds {queued} texts; {len(texts)} more would exceed "
            f"max_queue_texts={max_queued}",
            hint="retry later, send smaller requests, or raise max_queue_texts",
            limit=max_queued,
            current=queued,
        )


def validate_input(texts: Sequence[object], strategy: ValidationStrategy) -> ValidatedTexts:
    """Every text, by the strategy (strict rejects, lenient repairs and reports).

    Raises:
        InputTypeError, ValidationError: an item is bad; ``context['index']`` names it.
    """
    return strategy.check(texts)


def validate_resources(
    resources: ResourceManager, tokens: int, operation: str, bytes_per_token: int = 0
) -> None:
    """The configured memory limits must leave room for ``tokens`` more tokens of work, at
    ``bytes_per_token`` of activation memory each.

    Raises:
        ResourceExhaustedError: a limit is (or would be) exceeded; the message gives the limit,
            the current use and what to do.
    """
    resources.check(tokens, operation, bytes_per_token)


__all__ = ["validate_batch", "validate_input", "validate_resources", "validate_state"]
