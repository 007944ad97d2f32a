"""The table both backends store: name, columns, stored forms of values, and row-by-row writes.

The table is the reference application's, column for column, in SQLite and in
PostgreSQL alike; each backend's DDL and checks live in its own package
(``_sqlite/_schema.py``, ``_postgres/_schema.py``). What is here is shared by
both: the text a record's values are stored as (pure computation), and the
savepoint loop that writes a batch row by row once a row was refused.
"""

from __future__ import annotations

import json.encoder
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from ._database import BatchOutcome
from ._record import RetrievalFailureType

__all__ = [
    "COLUMNS",
    "FIELDS",
    "SCHEMA_VERSION",
    "TABLE",
    "TYPE_TEXT",
    "RowByRow",
    "SecondText",
    "insert_one_by_one",
    "json_array",
    "utc_second_text",
]

TABLE: Final = "memory_retrieval_failures"

#: Written to SQLite's ``PRAGMA user_version`` of databases this library creates,
#: so that a later version knows which format a file has and can migrate it.
SCHEMA_VERSION: Final = 1

#: The columns ``log()`` writes, in the order of every INSERT's and COPY's values.
COLUMNS: Final = (
    "conversation_id",
    "turn_index",
    "failure_type",
    "retrieval_strategy",
    "query_text",
    "query_len",
    "top_score",
    "confidence_threshold",
    "result_count",
    "latency_ms",
    "edge_types",
    "error_context",
    "created_at",
)

#: The columns the readers select: the id, then :data:`COLUMNS`.
FIELDS: Final = ("id", *COLUMNS)

#: A failure type as its ``failure_type`` column holds it (a dict lookup: the
#: enum's ``.value`` costs an attribute lookup per row on the hot path).
TYPE_TEXT: Final = {member: member.value for member in RetrievalFailureType}

_encode_json_string = json.encoder.encode_basestring


def json_array(texts: tuple[str, ...]) -> str:
    """``json.dumps(texts, ensure_ascii=False, separators=(",", ":"))``, 7x faster.

    Built from the json module's own string encoder; the result is the same
    text, the ``edge_types`` column's stored form. Pure computation.
    """
    return "[" + ",".join(map(_encode_json_string, texts)) + "]"


def utc_second_text(second: float) -> str:
    """POSIX seconds as ``YYYY-MM-DD HH:MM:SS`` UTC text, the fraction dropped.

    The whole-second form of ``created_at`` that the reference application's
    own purge compares with. Pure computation.
    """
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))


class SecondText:
    """:func:`utc_second_text` of the last second asked for, kept for the next row.

    The ``created_at`` of consecutive records mostly shares its whole second,
    and formatting it is most of the cost of a timestamp. One per store: not
    thread-safe, like the store.
    """

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, second: int) -> str:
        """``second`` (POSIX, whole) as ``YYYY-MM-DD HH:MM:SS`` UTC text."""
        if second != self._second:
            self._second = second
            self._text = utc_second_text(second)
        return self._text


class RowByRow:
    """A backend's spelling of :func:`insert_one_by_one`'s statements."""

    __slots__ = ("insert", "release", "rollback", "savepoint")

    def __init__(self, insert: str, *, savepoint: str, rollback: str, release: str) -> None:
        self.insert = insert
        self.savepoint = savepoint
        self.rollback = rollback
        self.release = release


def insert_one_by_one(
    execute: Callable[..., Any],
    rows: Sequence[tuple[object, ...]],
    sql: RowByRow,
    refusal: Callable[[Exception], str | None],
) -> BatchOutcome:
    """Insert ``rows`` one at a time, each under a savepoint, inside the caller's
    transaction: a row the database refuses costs that row only.

    ``refusal(exc)`` says why a row was refused, or ``None`` when ``exc``
    concerns the whole batch, which is then raised as it is. Blocks on
    ``execute`` (the connection's or cursor's).
    """
    outcome = BatchOutcome()
    for row in rows:
        execute(sql.savepoint)
        try:
            execute(sql.insert, row)
        except Exception as exc:
            reason = refusal(exc)
            if reason is None:
                raise
            execute(sql.rollback)
            outcome.rejected.append(reason)
        else:
            outcome.written += 1
        execute(sql.release)
    return outcome
