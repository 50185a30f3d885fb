"""Validation strategies (strict rejects, lenient repairs and reports) and request models."""

import numpy as np
import pytest

from mlservices.errors import InputTypeError, ResourceExhaustedError, ValidationError
from mlservices.validation import (
    EmbedBatchRequest,
    EmbedTextRequest,
    get_strategy,
    parse_request,
    validate_batch,
)

STRICT = get_strategy("strict", max_text_chars=50)
LENIENT = get_strategy("lenient", max_text_chars=50)


@pytest.mark.parametrize("strategy", [STRICT, LENIENT], ids=["strict", "lenient"])
@pytest.mark.parametrize("bad", [None, 3, 2.5, b"bytes", ["a"]])
def test_non_text_is_rejected_by_both(strategy, bad):
    with pytest.raises(InputTypeError) as info:
        strategy.check(["fine", "also fine", bad])
    assert info.value.context["index"] == 2
    assert "input 2" in str(info.value) and type(bad).__name__ in str(info.value)


def test_strict_rejects_surrogates_and_long_text():
    with pytest.raises(ValidationError, match="input 1 .*U\\+D800 at position 2") as info:
        STRICT.check(["ok", "ab\ud800cd"])
    assert info.value.context["index"] == 1
    with pytest.raises(ValidationError, match="input 0 has 51 characters") as info:
        STRICT.check(["x" * 51])
    assert info.value.context == {"index": 0, "limit": 50}


def test_strict_passes_clean_text_unchanged():
    texts = ["café", "  spaced  out ", "tab\there", ""]
    out = STRICT.check(texts)
    assert out.texts == texts and out.repairs == []


def test_lenient_repairs_and_reports_per_index():
    texts = [
        "clean",
        "bad \ud800 surrogate",
        "ctrl\x00\x07char",
        "cafe\u0301",
        "a \n\n  b ",
        "y" * 60,
    ]
    out = LENIENT.check(texts)
    assert out.texts == ["clean", "bad \ufffd surrogate", "ctrlchar", "café", "a b", "y" * 50]
    kinds = {(r.index, r.kind) for r in out.repairs}
    assert kinds == {
        (1, "surrogates"),
        (2, "control_chars"),
        (3, "unicode_nfc"),
        (4, "whitespace"),
        (5, "truncated_chars"),
    }
    assert all(r.detail for r in out.repairs)


def test_token_budget_strict_refuses_lenient_truncates():
    ids = np.arange(10, dtype=np.int64)
    with pytest.raises(ValidationError, match="input 4 has 10 tokens") as info:
        STRICT.check_tokens(4, ids, 6, [])
    assert info.value.context == {"index": 4, "limit": 6}
    repairs = []
    cut = LENIENT.check_tokens(4, ids, 6, repairs)
    assert cut.tolist() == [0, 1, 2, 3, 4, 9]  # leading tokens and the closing special token
    assert repairs[0].kind == "truncated_tokens" and repairs[0].index == 4
    assert STRICT.check_tokens(0, ids, 10, []) is ids


def test_unknown_strategy():
    with pytest.raises(ValidationError, match="'fuzzy' is unknown"):
        get_strategy("fuzzy", 10)


def test_request_models():
    request = parse_request(EmbedBatchRequest, texts=["a", None], normalize=True)
    assert request.texts == ["a", None] and request.normalize is True
    with pytest.raises(ValidationError, match="timeout_s") as info:
        parse_request(EmbedTextRequest, text="a", timeout_s=-1)
    assert info.value.context["field"] == "timeout_s"
    with pytest.raises(ValidationError, match="texts"):
        parse_request(EmbedBatchRequest, texts="not a list")


def test_batch_validator():
    validate_batch(["a"] * 3, max_texts=3, queued=0, max_queued=10)
    with pytest.raises(ValidationError, match="4 texts exceeds max_request_texts=3"):
        validate_batch(["a"] * 4, max_texts=3, queued=0, max_queued=10)
    with pytest.raises(ResourceExhaustedError, match="max_queue_texts=10") as info:
        validate_batch(["a"] * 3, max_texts=3, queued=8, max_queued=10)
    assert info.value.context == {"limit": 10, "current": 8}
