"""The table both backends store: its name, its columns, and the stored forms of values.

The table is the reference application's, column for column, in SQLite and in
PostgreSQL alike; each backend's DDL and checks live in its own package
(``_sqlite/_schema.py``, ``_postgres/_schema.py``). What is here is pure
computation shared by both: the text a record's values are stored as.
"""

from __future__ import annotations

import json.encoder
import time
from typing import Final

from ._record import RetrievalFailureType

__all__ = [
    "COLUMNS",
    "FIELDS",
    "SCHEMA_VERSION",
    "TABLE",
    "TYPE_TEXT",
    "SecondText",
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
