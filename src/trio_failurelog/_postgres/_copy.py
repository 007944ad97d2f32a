"""COPY row encoding for PostgreSQL: records as COPY text, as binary COPY rows, and as INSERT rows.

Pure computation, apart from the I/O it leaves to the store (as psycopg's
``_copy_base`` keeps row encoding apart from sending). Needs the ``postgres``
extra only to know whether psycopg's C dumpers are there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import psycopg

from .._database import QueuedRecord
from .._table import COLUMNS, TYPE_TEXT, json_array
from ._schema import REFERENCE_TYPES

__all__ = [
    "BINARY_TYPES",
    "C_DUMPERS",
    "binary_rows",
    "copy_field",
    "copy_text",
    "insert_row",
    "no_nul",
]

# Binary COPY, column by column (the order of COPY_SQL), for a table of the
# reference types: binary COPY carries no types, the server reads each field as
# its column's type. created_at goes as "int8" because the binary form of
# timestamptz is exactly that, a signed 64-bit count of microseconds since
# 2000-01-01 00:00 UTC.
BINARY_TYPES: Final = tuple(
    "int8" if REFERENCE_TYPES[name] == "timestamptz" else REFERENCE_TYPES[name] for name in COLUMNS
)
_MICROS_AT_2000: Final = 946_684_800_000_000  # 2000-01-01 00:00 UTC, in POSIX microseconds
#: Whether binary COPY pays off: only with psycopg's C implementation; the
#: pure-Python one dumps each value in Python, slower than building COPY text.
C_DUMPERS: Final = psycopg.pq.__impl__ in ("c", "binary")
# Where float4 holds a score the same either way: see _same_as_text().
_FLOAT4_BELOW_MAX: Final = 3.4e38  # a little under FLT_MAX, 3.4028234663852886e38
_FLOAT4_MIN_NORMAL: Final = 2.0**-126  # FLT_MIN: below it float4 has fewer bits
_FLOAT4_SIGNIFICAND: Final = 2.0**24  # float4 keeps 24 significant bits

# COPY's text format: a backslash starts an escape, tab and newline end a field
# and a row; U+0000 cannot be stored at all (replaced, as in no_nul).
_NULL: Final = "\\N"
_COPY_ESCAPES: Final = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": "\ufffd"}
)


def copy_field(text: str) -> str:
    """``text`` as a field of COPY's text format."""
    if text.isprintable() and "\\" not in text:  # the common case: nothing to escape
        return text
    return text.translate(_COPY_ESCAPES)


def no_nul(text: str) -> str:
    """``text`` with U+0000 as U+FFFD: PostgreSQL text cannot hold U+0000."""
    # SQLite can: replaced, like a lone surrogate is, so that one odd string
    # does not cost its row.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def insert_row(item: QueuedRecord, created_text: Callable[[float], str]) -> tuple[object, ...]:
    """``item`` as a row of :data:`~trio_failurelog._postgres._schema.INSERT_SQL`'s
    parameters, ``created_text`` turning its stamp into timestamptz text."""
    record, stamp = item
    edge_types = record.edge_types
    error_context = record.error_context
    created_at = record.created_at
    return (
        record.conversation_id,
        record.turn_index,
        TYPE_TEXT[record.failure_type],
        no_nul(record.retrieval_strategy),
        no_nul(record.query_text),
        record.query_len,
        record.top_score,
        record.confidence_threshold,
        record.result_count,
        record.latency_ms,
        None if edge_types is None else json_array(edge_types),  # JSON escapes U+0000
        None if error_context is None else no_nul(error_context),
        # A created_at set on the record is UTC, like SQLite's datetime('now').
        created_text(stamp) if created_at is None else created_at + "+00",
    )


def copy_text(items: Sequence[QueuedRecord], created_text: Callable[[float], str]) -> bytes:
    """``items`` as COPY's text format: one line per row, tab-separated.

    Built here rather than row tuples through psycopg's ``write_row`` (text),
    which was measurably slower (docs/performance.md). Same values as
    :func:`insert_row`, which the row-by-row fallback still uses. Pure computation.
    """
    lines: list[str] = []
    append = lines.append
    for record, stamp in items:
        conversation_id = record.conversation_id
        top_score = record.top_score
        threshold = record.confidence_threshold
        edge_types = record.edge_types
        error_context = record.error_context
        created_at = record.created_at
        append(
            f"{_NULL if conversation_id is None else conversation_id}\t"
            f"{record.turn_index}\t"
            f"{TYPE_TEXT[record.failure_type]}\t"
            f"{copy_field(record.retrieval_strategy)}\t"
            f"{copy_field(record.query_text)}\t"
            f"{record.query_len}\t"
            f"{_NULL if top_score is None else repr(top_score)}\t"
            f"{_NULL if threshold is None else repr(threshold)}\t"
            f"{record.result_count}\t"
            f"{record.latency_ms}\t"
            f"{_NULL if edge_types is None else copy_field(json_array(edge_types))}\t"
            f"{_NULL if error_context is None else copy_field(error_context)}\t"
            f"{created_text(stamp) if created_at is None else created_at + '+00'}\n"
        )
    return "".join(lines).encode()


def binary_rows(items: Sequence[QueuedRecord]) -> list[tuple[object, ...]] | None:
    """``items`` as rows for binary COPY, or ``None`` if one is not plain.

    Not plain, and so sent as text, where the text path's handling or the
    server's verdict must stand: text holding U+0000 (replaced by the text
    path), a score float4 would not hold as the server's text input does
    (:func:`_same_as_text`), a ``created_at`` set on the record (text, sent
    as it is). The values are those of :func:`insert_row`,
    created_at to the same microsecond.
    """
    rows: list[tuple[object, ...]] = []
    append = rows.append
    type_text = TYPE_TEXT
    to_json = json_array
    for record, stamp in items:
        strategy = record.retrieval_strategy
        query = record.query_text
        context = record.error_context
        top = record.top_score
        threshold = record.confidence_threshold
        if (
            record.created_at is not None
            or "\x00" in query
            or "\x00" in strategy
            or (context is not None and "\x00" in context)
            or (top and not _same_as_text(top))
            or (threshold and not _same_as_text(threshold))
        ):
            return None
        edge_types = record.edge_types
        append(
            (
                record.conversation_id,
                record.turn_index,
                type_text[record.failure_type],
                strategy,
                query,
                record.query_len,
                top,
                threshold,
                record.result_count,
                record.latency_ms,
                None if edge_types is None else to_json(edge_types),
                context,
                int(stamp * 1e6) - _MICROS_AT_2000,
            )
        )
    return rows


def _same_as_text(score: float) -> bool:
    """Whether binary COPY stores ``score`` in a REAL column as text COPY does.

    Binary: psycopg's C cast of the double to float4, rounding to nearest,
    ties to even. Text: the server's ``strtof`` of ``repr(score)``, which
    rounds that decimal instead. They agree unless the score is beyond
    float4's range (the server refuses it where the cast makes it infinity or
    0; kept to text too: float4's subnormal fringe, below ``FLT_MIN``), or
    exactly halfway between two float4 values (the decimal is never exactly
    halfway, so it rounds towards whichever side it leans).
    """
    if not _FLOAT4_MIN_NORMAL <= abs(score) < _FLOAT4_BELOW_MAX:
        return False
    # Halfway exactly when the significand, scaled to float4's 24 bits, ends
    # in .5 (frexp, the scaling and the remainder are all exact).
    return (math.frexp(score)[0] * _FLOAT4_SIGNIFICAND) % 1.0 != 0.5
