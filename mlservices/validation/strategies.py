"""Validation strategies: what to do with an input that is not clean text.

``strict`` rejects: the first bad item raises a typed error that names its index.
``lenient`` repairs what can be repaired without guessing (lone surrogates become U+FFFD,
control characters are removed, whitespace runs collapse, text is put in NFC, over-long text
is cut at the limit) and reports every change by index. Neither strategy invents text: an item
that is not a str (None, a number) is rejected by both.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlservices.errors import InputTypeError, ValidationError

SURROGATES = re.compile("[\ud800-\udfff]")
# C0 and C1 control characters except tab, line feed and carriage return (they are whitespace).
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
WHITESPACE_RUN = re.compile(r"\s+")


@dataclass(frozen=True)
class Repair:
    """One change the lenient strategy made to one input."""

    index: int
    kind: str  # surrogates, control_chars, unicode_nfc, whitespace, truncated_chars, ...
    detail: str


@dataclass
class ValidatedTexts:
    """Texts ready to tokenize, and what was changed to get them (empty under strict)."""

    texts: list[str]
    repairs: list[Repair] = field(default_factory=list)


class ValidationStrategy(ABC):
    """Checks a request's texts before they are queued.

    Args:
        max_text_chars: the longest text accepted, in characters.
    """

    name = "base"

    def __init__(self, max_text_chars: int) -> None:
        self.max_text_chars = max_text_chars

    def check(self, texts: Sequence[object]) -> ValidatedTexts:
        """Validate (and, leniently, repair) every item.

        Raises:
            InputTypeError: an item is not a str (``context['index']`` names it).
            ValidationError: strict only: an item is not valid Unicode or is too long.
        """
        out = ValidatedTexts([])
        for i, text in enumerate(texts):
            out.texts.append(self.check_text(i, _require_str(i, text), out.repairs))
        return out

    @abstractmethod
    def check_text(self, index: int, text: str, repairs: list[Repair]) -> str:
        """One str item: return it (possibly repaired, appending to ``repairs``) or raise."""

    @abstractmethod
    def check_tokens(
        self, index: int, ids: np.ndarray, budget: int, repairs: list[Repair]
    ) -> np.ndarray:
        """Token ids of one item against the batch token budget: return them or raise."""


class StrictStrategy(ValidationStrategy):
    """Reject anything that is not clean, encodable text within the limits."""

    name = "strict"

    def check_text(self, index: int, text: str, repairs: list[Repair]) -> str:
        match = SURROGATES.search(text)
        if match:
            raise ValidationError(
                f"input {index} is not valid Unicode text (lone surrogate "
                f"U+{ord(match.group()):04X} at position {match.start()})",
                hint="remove surrogate code points, decode the source with errors='replace', "
                "or use validation_strategy='lenient'",
                index=index,
            )
        if len(text) > self.max_text_chars:
            raise ValidationError(
                f"input {index} has {len(text)} characters, more than max_text_chars="
                f"{self.max_text_chars}",
                hint="shorten or split it, raise max_text_chars, or use "
                "validation_strategy='lenient' to truncate",
                index=index,
                limit=self.max_text_chars,
            )
        return text

    def check_tokens(
        self, index: int, ids: np.ndarray, budget: int, repairs: list[Repair]
    ) -> np.ndarray:
        if len(ids) > budget:
            raise ValidationError(
                f"input {index} has {len(ids)} tokens, more than the batch token budget "
                f"max_batch_tokens={budget}",
                hint="raise max_batch_tokens, shorten the text, or use "
                "validation_strategy='lenient' to truncate",
                index=index,
                limit=budget,
            )
        return ids


class LenientStrategy(ValidationStrategy):
    """Repair what can be repaired without guessing, and report each change."""

    name = "lenient"

    def check_text(self, index: int, text: str, repairs: list[Repair]) -> str:
        text = self._repair(index, text, repairs, "surrogates", _replace_surrogates)
        text = self._repair(index, text, repairs, "control_chars", _strip_controls)
        text = self._repair(index, text, repairs, "unicode_nfc", _nfc)
        text = self._repair(index, text, repairs, "whitespace", normalize_whitespace)
        if len(text) > self.max_text_chars:
            detail = f"cut from {len(text)} to {self.max_text_chars} characters"
            repairs.append(Repair(index, "truncated_chars", detail))
            text = text[: self.max_text_chars]
        return text

    @staticmethod
    def _repair(index: int, text: str, repairs: list[Repair], kind: str, fix) -> str:
        fixed, detail = fix(text)
        if fixed != text:
            repairs.append(Repair(index, kind, detail))
        return fixed

    def check_tokens(
        self, index: int, ids: np.ndarray, budget: int, repairs: list[Repair]
    ) -> np.ndarray:
        if len(ids) <= budget:
            return ids
        repairs.append(Repair(index, "truncated_tokens", f"cut from {len(ids)} to {budget} tokens"))
        # Keep the leading tokens and the closing special token.
        return np.concatenate([ids[: budget - 1], ids[-1:]])


def normalize_whitespace(text: str) -> tuple[str, str]:
    """Collapse every whitespace run to one space and strip the ends."""
    fixed = WHITESPACE_RUN.sub(" ", text).strip()
    return fixed, "collapsed whitespace runs and stripped the ends"


def normalize_unicode(text: str) -> tuple[str, str]:
    """Unicode NFC (composed characters)."""
    return _nfc(text)


def _replace_surrogates(text: str) -> tuple[str, str]:
    fixed, count = SURROGATES.subn("\ufffd", text)
    return fixed, f"replaced {count} lone surrogate(s) with U+FFFD"


def _strip_controls(text: str) -> tuple[str, str]:
    fixed, count = CONTROL.subn("", text)
    return fixed, f"removed {count} control character(s)"


def _nfc(text: str) -> tuple[str, str]:
    if unicodedata.is_normalized("NFC", text):
        return text, ""
    return unicodedata.normalize("NFC", text), "normalised to Unicode NFC"


def _require_str(index: int, text: object) -> str:
    if isinstance(text, str):
        return text
    raise InputTypeError(
        f"input {index} is {type(text).__name__} ({text!r:.40}), not str",
        hint="pass every text as str; convert numbers and drop None before the call",
        index=index,
    )


STRATEGIES: dict[str, type[ValidationStrategy]] = {
    StrictStrategy.name: StrictStrategy,
    LenientStrategy.name: LenientStrategy,
}


def get_strategy(name: str, max_text_chars: int) -> ValidationStrategy:
    """The strategy called ``name`` (strict or lenient).

    Raises:
        ValidationError: ``name`` is not a known strategy.
    """
    if name not in STRATEGIES:
        raise ValidationError(
            f"validation strategy {name!r} is unknown",
            hint=f"use one of {sorted(STRATEGIES)}",
        )
    return STRATEGIES[name](max_text_chars)


__all__ = [
    "STRATEGIES",
    "LenientStrategy",
    "Repair",
    "StrictStrategy",
    "ValidatedTexts",
    "ValidationStrategy",
    "get_strategy",
    "normalize_unicode",
    "normalize_whitespace",
]
