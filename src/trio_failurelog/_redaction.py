"""Redaction: a user's function applied to the stored texts, on the writer's thread.

A redactor is any ``Callable[[str], str]``. The writer calls
:func:`redact_batch` on its worker thread just before a batch is stored, never
on the recall path, so ``log()`` stays as cheap as without one. The same
function is applied to ``query_text`` and to ``error_context`` (when there is
one), each separately: one function is the simplest setting to give and to
get right, and a rule worth applying to a query is worth applying to an error
message that may quote it.

Records were cut to their bounds when they were built, so a text may end in
half a value (``jane.doe@exa``, ``12345`` of ``1234567890``) that no pattern
for the whole value would match. A text that was cut therefore loses its last,
partial word before the redactor sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Final

from ._database import QueuedRecord
from ._record import (
    _FIELD_NAMES,
    ERROR_CONTEXT_MAX_CHARS,
    QUERY_TEXT_MAX_CHARS,
    RetrievalFailureRecord,
    _Draft,
    _new_draft,
    _repair_text,
    _utf8_length,
)

__all__ = [
    "REDACTION_FAILED",
    "Redactor",
    "mask_emails_and_digits",
    "redact_batch",
    "validate_redactor",
]

#: What ``redact`` is: text in, redacted text out.
Redactor = Callable[[str], str]

#: What a field holds when its redactor raised or returned something not a str.
REDACTION_FAILED: Final = "[redaction failed]"

# Every field of the record, read in one C call, and each slot's setter: a
# redacted record is a copy with two texts replaced, built the way the record
# class builds its own (a writable draft, then one class switch), at a fraction
# of the cost of validating every field again through the constructor.
_read_fields: Final = attrgetter(*_FIELD_NAMES)
_SET_FIELDS: Final = tuple(getattr(_Draft, name).__set__ for name in _FIELD_NAMES)
_QUERY_TEXT: Final = _FIELD_NAMES.index("query_text")
_ERROR_CONTEXT: Final = _FIELD_NAMES.index("error_context")


def validate_redactor(redact: object) -> Redactor | None:
    """Return ``redact`` if it is ``None`` or callable; raise :exc:`TypeError` naming it."""
    if redact is None or callable(redact):
        return redact
    raise TypeError(
        f"redact must be a function taking a str and returning a str, or None, "
        f"not {type(redact).__name__}"
    )


def _without_partial_word(text: str) -> str:
    """``text`` without its last word, unless it ends in a space or is a single word."""
    if not text or text[-1].isspace():
        return text
    head = text.rsplit(None, 1)
    return head[0] if len(head) == 2 else text


def _apply(redact: Redactor, text: str, limit: int) -> tuple[str, str | None]:
    """``text`` redacted and made storable, and why not if the redactor failed."""
    try:
        result = redact(text)
    except Exception as exc:
        # Only the exception's type: its message may quote the very text that
        # was to be hidden, and reasons end up in warnings and statistics.
        return REDACTION_FAILED, f"redact raised {type(exc).__name__}"
    if type(result) is not str or not result.isascii():
        if not isinstance(result, str):
            return REDACTION_FAILED, f"redact returned {type(result).__name__}, not str"
        result = _repair_text(result)  # a plain str that UTF-8 can encode
    if len(result) > limit:
        result = result[:limit]
    return result, None


def redact_batch(
    items: Sequence[QueuedRecord], redact: Redactor
) -> tuple[list[QueuedRecord], list[str]]:
    """Apply ``redact`` to each record's ``query_text`` and ``error_context``.

    Returns the records as they are to be stored, in order, and one reason for
    each record whose redaction failed (empty when none did). A redacted record
    keeps every other field, ``query_len`` (the length of the original query)
    and ``created_at`` included, and its time stamp; its texts are cut again to
    :data:`QUERY_TEXT_MAX_CHARS` and :data:`ERROR_CONTEXT_MAX_CHARS` and
    repaired as the constructor would. A record that ``redact`` leaves
    unchanged is passed on as it is.

    A text that was cut when the record was built (``query_len`` says the
    query was longer; an ``error_context`` at its bound may have been) loses
    its last, partial word first, so that half a value cannot slip past a
    pattern for the whole one. A text that is one single word is kept whole.

    Never raises for what ``redact`` does: a field whose redactor raises an
    :exc:`Exception` or returns something not a ``str`` is stored as
    :data:`REDACTION_FAILED`, and that record's other field is still redacted.
    Blocks for as long as ``redact`` takes; meant for the writer's thread.
    """
    out: list[QueuedRecord] = []
    reasons: list[str] = []
    append = out.append
    for item in items:
        record = item[0]
        query_text = record.query_text
        error_context = record.error_context
        to_redact = query_text
        if record.query_len > len(query_text) and record.query_len > _utf8_length(query_text):
            to_redact = _without_partial_word(query_text)
        new_query, failure = _apply(redact, to_redact, QUERY_TEXT_MAX_CHARS)
        new_context = error_context
        if error_context is not None:
            to_redact = error_context
            if len(error_context) == ERROR_CONTEXT_MAX_CHARS:
                to_redact = _without_partial_word(error_context)
            new_context, context_failure = _apply(redact, to_redact, ERROR_CONTEXT_MAX_CHARS)
            failure = failure or context_failure
        if failure is not None:
            reasons.append(failure)
        if new_query == query_text and new_context == error_context:
            append(item)
            continue
        values = list(_read_fields(record))
        values[_QUERY_TEXT] = new_query
        values[_ERROR_CONTEXT] = new_context
        draft = _new_draft(_Draft)
        for set_field, value in zip(_SET_FIELDS, values, strict=True):
            set_field(draft, value)
        draft.__class__ = RetrievalFailureRecord
        append((draft, item[1]))  # type: ignore[arg-type]  # now a record
    return out, reasons


# An address: a run of local-part characters starting where no such character
# precedes (so a failed match is not retried from every later position, which
# would make a long run without "@" quadratic), "@", and a dotted domain.
_EMAIL: Final = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A number as people write it: digit groups joined by one or two separators
# (space, dot, dash, slash, parentheses), optionally after "+" and "(": card
# numbers in groups, phone numbers, account numbers. The separators and the
# digits are disjoint, so each group is taken once: linear time. Whether it is
# masked depends on how many digits it holds (see _MIN_DIGITS).
_DIGITS: Final = re.compile(r"(?:\+\s?)?\(?\d+(?:[ .\-/()]{1,2}\d+)*")
# An IBAN-like account number: country letters, check digits, then groups of
# letters and digits, with or without single spaces between groups of four.
_ACCOUNT: Final = re.compile(
    r"(?<![\w])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?(?![\w])"
)
#: A number with this many digits or more is masked, whatever separates them.
_MIN_DIGITS: Final = 6


def _count_digits(text: str) -> int:
    return sum(char.isdecimal() for char in text)


def _mask_number(match: re.Match[str]) -> str:
    text = match.group()
    return "[digits]" if _count_digits(text) >= _MIN_DIGITS else text


def _mask_account(match: re.Match[str]) -> str:
    text = match.group()
    return "[account]" if _count_digits(text) >= _MIN_DIGITS else text


def mask_emails_and_digits(text: str) -> str:
    """Replace e-mail addresses with ``[email]``, IBAN-like account numbers with
    ``[account]`` and numbers of 6 or more digits with ``[digits]``.

    A number may be written with separators: ``4111 1111 1111 1111``,
    ``4111-1111-1111-1111``, ``+1 (555) 123-4567`` and ``DE89 3704 0044 0532
    0130 00`` are masked whole, and so is ``555-1234`` (7 digits). So are
    dates written with such separators (``2024-05-01`` holds 8 digits). Fewer
    than 6 digits stay: ``12:30``, ``v1.2.3``, ``order 12345``.

    A starting point, not a guarantee: it knows nothing of names, postal
    addresses, numbers spelled out in words, or anything else personal. Digits
    are any Unicode decimal digits. Runs in time linear in the length of
    ``text``; never raises for a ``str``.
    """
    if "@" in text:
        text = _EMAIL.sub("[email]", text)
    text = _ACCOUNT.sub(_mask_account, text)
    return _DIGITS.sub(_mask_number, text)
