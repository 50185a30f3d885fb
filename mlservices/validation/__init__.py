"""Request validation: strategies (strict rejects, lenient repairs and reports), pydantic
request models, and the validators the services run before any work is queued."""

from mlservices.validation.parameters import (
    EmbedBatchRequest,
    EmbedOptions,
    EmbedTextRequest,
    ProcessRequest,
    parse_request,
)
from mlservices.validation.strategies import (
    LenientStrategy,
    Repair,
    StrictStrategy,
    ValidatedTexts,
    ValidationStrategy,
    get_strategy,
)
from mlservices.validation.validators import (
    validate_batch,
    validate_input,
    validate_resources,
    validate_state,
)

__all__ = [
    "EmbedBatchRequest",
    "EmbedOptions",
    "EmbedTextRequest",
    "LenientStrategy",
    "ProcessRequest",
    "Repair",
    "StrictStrategy",
    "ValidatedTexts",
    "ValidationStrategy",
    "get_strategy",
    "parse_request",
    "validate_batch",
    "validate_input",
    "validate_resources",
    "validate_state",
]
