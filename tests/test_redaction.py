"""Redaction: redact_batch as the writer calls it, and the shipped example redactor."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog import (
    ERROR_CONTEXT_MAX_CHARS,
    QUERY_TEXT_MAX_CHARS,
    REDACTION_FAILED,
    RetrievalFailureRecord,
    mask_emails_and_digits,
)
from trio_failurelog._database import QueuedRecord
from trio_failurelog._redaction import Redactor, redact_batch, validate_redactor
from trio_failurelog._sqlite import SQLiteStore

from ._helpers import fetch

STAMP = 1_700_000_000.25


def queued(query_text: str, error_context: str | None = None, **fields: Any) -> QueuedRecord:
    return (
        RetrievalFailureRecord(
            "error", "semantic", query_text, error_context=error_context, **fields
        ),
        STAMP,
    )


def upper(text: str) -> str:
    return text.upper()


def boom(text: str) -> str:
    raise ValueError(f"cannot handle {text}")  # quotes the text, as careless code does


# ---------------------------------------------------------------- applied, kept


def test_redaction_applies_to_both_texts_and_keeps_everything_else() -> None:
    original = queued(
        "mail bob@example.com or call 0123456789",
        "backend said: no user bob@example.com",
        conversation_id=7,
        turn_index=2,
        top_score=0.25,
        confidence_threshold=0.5,
        result_count=3,
        latency_ms=40,
        edge_types=("a", "b"),
        created_at="2024-05-06 07:08:09.123",
    )
    (item,), reasons = redact_batch([original], mask_emails_and_digits)
    assert reasons == []
    redacted, stamp = item
    assert type(redacted) is RetrievalFailureRecord
    assert redacted.query_text == "mail [email] or call [digits]"
    assert redacted.error_context == "backend said: no user [email]"
    assert stamp == STAMP
    record = original[0]
    assert redacted.query_len == record.query_len == len("mail bob@example.com or call 0123456789")
    for name in (
        "failure_type",
        "retrieval_strategy",
        "conversation_id",
        "turn_index",
        "top_score",
        "confidence_threshold",
        "result_count",
        "latency_ms",
        "edge_types",
        "created_at",
        "id",
    ):
        assert getattr(redacted, name) == getattr(record, name), name
    assert record.query_text.startswith("mail bob@")  # the caller's record is untouched
    with pytest.raises(AttributeError):
        redacted.query_text = "x"  # type: ignore[misc]  # frozen like any record
    assert pickle.loads(pickle.dumps(redacted)) == redacted


def test_query_len_is_the_original_query_even_past_the_cut() -> None:
    long_query = "é" * (QUERY_TEXT_MAX_CHARS + 100)
    original = queued(long_query)
    (item,), _ = redact_batch([original], lambda text: "x")
    assert item[0].query_text == "x"
    assert item[0].query_len == len(long_query.encode()) == original[0].query_len


def test_unchanged_records_are_passed_on_as_they_are() -> None:
    items = [queued("nothing to hide"), queued("nor here", "nor here")]
    out, reasons = redact_batch(items, mask_emails_and_digits)
    assert reasons == []
    assert all(a is b for a, b in zip(out, items, strict=True))


def test_no_error_context_stays_none() -> None:
    calls: list[str] = []

    def spy(text: str) -> str:
        calls.append(text)
        return text + "!"

    (item,), _ = redact_batch([queued("q")], spy)
    assert calls == ["q"]
    assert item[0].error_context is None
    assert item[0].query_text == "q!"


def test_growing_redaction_is_cut_to_the_bounds() -> None:
    original = queued("a" * QUERY_TEXT_MAX_CHARS, "b" * ERROR_CONTEXT_MAX_CHARS)
    (item,), _ = redact_batch([original], lambda text: text + "[redacted]")
    assert item[0].query_text == "a" * QUERY_TEXT_MAX_CHARS
    assert item[0].error_context == "b" * ERROR_CONTEXT_MAX_CHARS


def test_result_is_made_storable_like_a_constructed_record() -> None:
    class Shouting(str):
        pass

    def odd(text: str) -> str:
        return Shouting("lone \ud800 surrogate")

    (item,), reasons = redact_batch([queued("q", "c")], odd)
    assert reasons == []
    assert type(item[0].query_text) is str
    assert item[0].query_text == "lone \ufffd surrogate"
    item[0].query_text.encode("utf-8")
    assert item[0].error_context == "lone \ufffd surrogate"


# ---------------------------------------------------------------- texts cut at their bound


def identity(text: str) -> str:
    return text


def test_half_a_value_at_the_cut_is_not_stored() -> None:
    # The record was cut at 512 characters in the middle of the address, and
    # at 256 in the middle of a number: neither half matches a whole-value
    # pattern, so the partial last word goes before the redactor runs.
    query = "x" * 490 + " write to jane.doe@example.com"
    context = "y" * 244 + " order 12345678901"
    original = queued(query, context)
    assert original[0].query_text.endswith(" jane.doe@exa")
    assert original[0].error_context is not None
    assert original[0].error_context.endswith("order 12345")
    (item,), reasons = redact_batch([original], mask_emails_and_digits)
    assert reasons == []
    assert item[0].query_text.endswith("x write to")
    assert item[0].error_context is not None
    assert item[0].error_context.endswith("y order")
    assert item[0].query_len == len(query)


def test_texts_that_were_not_cut_keep_their_last_word() -> None:
    short = queued("ends with jane@ex", "ends with 12345")
    exact = "z" * (QUERY_TEXT_MAX_CHARS - 8) + " jane@ex"  # at the bound; query_len says uncut
    fits = queued(exact, "y" * 249 + " 12345")  # under the bound
    accented = queued("café au lait 12345")  # more bytes than characters, not cut
    out, _ = redact_batch([short, fits, accented], identity)
    assert out == [short, fits, accented]  # the very same items


def test_a_cut_text_of_one_word_is_kept_whole() -> None:
    original = queued("a" * 600)
    (item,), _ = redact_batch([original], identity)
    assert item is original


def test_a_text_cut_at_a_space_loses_nothing() -> None:
    original = queued("w" * 511 + " more words")
    assert original[0].query_text.endswith(" ")
    (item,), _ = redact_batch([original], identity)
    assert item is original


# ---------------------------------------------------------------- failures cost one text


def test_a_raising_redactor_costs_that_rows_text_only() -> None:
    def picky(text: str) -> str:
        if "poison" in text:
            raise RuntimeError(f"refusing {text}")
        return text.upper()

    items = [queued("one"), queued("poison secret"), queued("three", "poison context")]
    out, reasons = redact_batch(items, picky)
    assert [item[0].query_text for item in out] == ["ONE", REDACTION_FAILED, "THREE"]
    assert [item[0].error_context for item in out] == [None, None, REDACTION_FAILED]
    assert reasons == ["redact raised RuntimeError", "redact raised RuntimeError"]
    assert [item[0].query_len for item in out] == [3, 13, 5]
    assert all(item[1] == STAMP for item in out)


def test_reasons_never_quote_the_text() -> None:
    out, reasons = redact_batch([queued("my secret", "my other secret")], boom)
    assert reasons == ["redact raised ValueError"]  # one per row, whichever field failed
    assert out[0][0].query_text == REDACTION_FAILED
    assert out[0][0].error_context == REDACTION_FAILED
    assert "secret" not in repr(reasons)


@pytest.mark.parametrize("result", [None, b"bytes", 42, ["list"]])
def test_a_result_that_is_not_a_str_is_a_failure(result: object) -> None:
    def wrong(text: str) -> str:
        return result  # type: ignore[return-value]

    out, reasons = redact_batch([queued("q", "c")], wrong)
    assert reasons == [f"redact returned {type(result).__name__}, not str"]
    assert (out[0][0].query_text, out[0][0].error_context) == (REDACTION_FAILED, REDACTION_FAILED)


def test_base_exceptions_are_not_swallowed() -> None:
    def interrupted(text: str) -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        redact_batch([queued("q")], interrupted)


# ---------------------------------------------------------------- through a real store


def test_redacted_batches_store_redacted_rows_only(db_path: Path) -> None:
    def picky(text: str) -> str:
        if "poison" in text:
            raise RuntimeError(text)
        return mask_emails_and_digits(text)

    items = [
        queued("call 0123456789", "from bob@example.com", created_at="2024-01-02 03:04:05"),
        queued("poison jane@example.com"),
        queued("nothing to hide"),
    ]
    store = SQLiteStore.open(db_path, busy_timeout=0.1, synchronous="NORMAL")
    try:
        redacted, reasons = redact_batch(items, picky)
        outcome = store.write_batch(redacted)
    finally:
        store.close()
    assert (outcome.written, outcome.rejected) == (3, [])
    assert reasons == ["redact raised RuntimeError"]
    rows = [dict(row) for row in fetch(db_path)]
    assert [(row["query_text"], row["error_context"]) for row in rows] == [
        ("call [digits]", "from [email]"),
        (REDACTION_FAILED, None),
        ("nothing to hide", None),
    ]
    assert [row["query_len"] for row in rows] == [15, 23, 15]
    assert rows[0]["created_at"] == "2024-01-02 03:04:05"
    assert all("example.com" not in repr(row) for row in rows)


# ---------------------------------------------------------------- the setting


def test_setting_takes_a_callable_or_none() -> None:
    assert validate_redactor(None) is None
    assert validate_redactor(upper) is upper
    with pytest.raises(TypeError, match=r"redact must be a function .* not str"):
        validate_redactor("mask")


# ---------------------------------------------------------------- any text, any redactor

texts = st.text(
    alphabet=st.characters(codec=None, exclude_categories=()),  # surrogates included
    max_size=QUERY_TEXT_MAX_CHARS * 2,
)


@st.composite
def redactors(draw: st.DrawFn) -> Redactor:
    """A redactor that returns arbitrary text, repeats, cuts, or fails."""
    kind = draw(st.sampled_from(["replace", "repeat", "pad", "cut", "raise", "not str", "mask"]))
    other = draw(texts)
    times = draw(st.integers(0, 5))
    if kind == "replace":
        return lambda text: other
    if kind == "repeat":
        return lambda text: text * times
    if kind == "pad":
        return lambda text: text + "\U0001f600" * QUERY_TEXT_MAX_CHARS  # past any bound
    if kind == "cut":
        return lambda text: text[:times]
    if kind == "raise":
        return boom
    if kind == "not str":
        return lambda text: None  # type: ignore[return-value]
    return mask_emails_and_digits


@given(
    st.lists(st.tuples(texts, st.none() | texts), max_size=5),
    redactors(),
)
def test_any_redaction_stays_within_bounds_and_storable(
    fields: list[tuple[str, str | None]], redact: Redactor
) -> None:
    items = [queued(query, context) for query, context in fields]
    out, reasons = redact_batch(items, redact)
    assert len(out) == len(items)
    assert len(reasons) <= len(items)
    for (before, stamp_before), (after, stamp_after) in zip(items, out, strict=True):
        assert stamp_after == stamp_before
        assert after.query_len == before.query_len
        assert type(after.query_text) is str
        assert len(after.query_text) <= QUERY_TEXT_MAX_CHARS
        after.query_text.encode("utf-8")
        assert (after.error_context is None) == (before.error_context is None)
        if after.error_context is not None:
            assert type(after.error_context) is str
            assert len(after.error_context) <= ERROR_CONTEXT_MAX_CHARS
            after.error_context.encode("utf-8")


# ---------------------------------------------------------------- the example redactor


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("write to jane.doe+tag@mail.example.org today", "write to [email] today"),
        ("<a.b@c.de>, x_y@sub-domain.co.uk.", "<[email]>, [email]."),
        ("order 1234567 and 12345", "order [digits] and 12345"),
        ("card 4111111111111111", "card [digits]"),
        ("٠١٢٣٤٥ arabic-indic digits", "[digits] arabic-indic digits"),
        ("user@localhost is not an address here", "user@localhost is not an address here"),
        ("", ""),
        # Numbers as people write them: separated digit groups are one number.
        ("card 4111 1111 1111 1111 ok", "card [digits] ok"),
        ("card 4111-1111-1111-1111.", "card [digits]."),
        ("card 4111.1111.1111.1111", "card [digits]"),
        ("amex 3782 822463 10005", "amex [digits]"),
        ("call +1 (555) 123-4567 now", "call [digits] now"),
        ("call (555) 123-4567", "call [digits]"),
        ("phone 555-123-4567", "phone [digits]"),
        ("tel +44 20 7946 0958", "tel [digits]"),
        ("tel +33 1 23 45 67 89", "tel [digits]"),
        ("ruf 030/1234567 an", "ruf [digits] an"),
        ("555-1234", "[digits]"),
        ("ssn 078-05-1120", "ssn [digits]"),
        ("iban DE89 3704 0044 0532 0130 00 please", "iban [account] please"),
        ("iban DE89370400440532013000", "iban [account]"),
        ("GB29 NWBK 6016 1331 9268 19", "[account]"),
        ("gb29nwbk60161331926819", "[account]"),
        ("fr14 2004 1010 0505 0001 3m02 606", "[account]"),
        # What stays: fewer than 6 digits, whatever the separators.
        ("order 12345 shipped", "order 12345 shipped"),
        ("at 12:30 on v1.2.3", "at 12:30 on v1.2.3"),
        ("rooms 12 and 34", "rooms 12 and 34"),
        ("pin 12-34", "pin 12-34"),
        ("AB12 word text", "AB12 word text"),
        ("ABCD EFGH IJKL", "ABCD EFGH IJKL"),
    ],
)
def test_mask_emails_and_digits(text: str, masked: str) -> None:
    assert mask_emails_and_digits(text) == masked


_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@given(st.text(alphabet=st.sampled_from("ab1@.-_ 9+()/DE"), max_size=200) | st.text(max_size=200))
def test_mask_leaves_no_address_and_no_long_digit_run(text: str) -> None:
    masked = mask_emails_and_digits(text)
    assert not re.search(r"\d{6,}", masked)
    assert not _ADDRESS.search(masked)
    # No number of 6 digits or more survives, whatever single separators join it.
    assert not any(
        sum(c.isdecimal() for c in run) >= 6
        for run in re.findall(r"\d+(?:[ .\-/()]{1,2}\d+)*", masked)
    )
