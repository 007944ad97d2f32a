"""SQLite's spelling of what the readers' SQL needs: :class:`SQLiteDialect` and ``SQLITE``.

Pure computation apart from :meth:`SQLiteDialect.repeated_queries`, which
blocks on the statement it runs.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Final

from .._protocols import Execute, RepeatedRow
from .._readsql import sql_limit
from .._table import TABLE

#: Julian day 0 (4714 BC) in POSIX seconds: no text strftime reads is earlier
#: (a bare number is read as a Julian day number).
_YEAR_ZERO: Final = -210866760000

#: Whether this SQLite has unixepoch() (3.38): the integer strftime('%s') writes
#: as text, from the same parse, without the text and its cast back.
_HAS_UNIXEPOCH: Final = sqlite3.sqlite_version_info >= (3, 38)


def _epoch_seconds_sql(text: str) -> str:
    """SQL for the POSIX seconds of the time text ``text`` (SQL), NULL when it is no time."""
    if _HAS_UNIXEPOCH:
        return f"unixepoch({text})"
    return f"CAST(strftime('%s', {text}) AS INTEGER)"  # pragma: no cover - SQLite < 3.38


__all__ = ["NORMALISED_QUERY_SQL", "NORMALISE_FUNCTION", "SQLITE", "SQLiteDialect"]

#: The name under which ``normalise_query`` is registered on a connection.
NORMALISE_FUNCTION: Final = "failurelog_normalise"
#: A failing query's repeat key (see ``normalise_query``).
NORMALISED_QUERY_SQL: Final = f"{NORMALISE_FUNCTION}(query_text)"


def _distinct_json_list_sql(column: str) -> str:
    """SQL aggregating the distinct values of ``column`` into a JSON array's text."""
    return f"json_group_array(DISTINCT {column})"


class SQLiteDialect:
    """What the readers' SQL spells SQLite's way (see ``_protocols.Dialect``)."""

    #: ``+column`` steers SQLite's planner to the time index.
    index_hints: bool = True
    #: One writer at a time: ids are taken in commit order.
    ids_commit_in_order: bool = True

    def bucket_index_sql(self, width: int) -> str:
        """SQL for the time bucket of ``created_at``: floor(POSIX seconds / ``width``),
        NULL when the text is no time. Floor, not SQLite's truncation toward zero,
        so that rows before 1970 land in the buckets ``text_at`` names."""
        width = int(width)  # written into the SQL: an int we computed, never user text
        if width < 1:
            raise ValueError(f"bucket width must be at least 1, got {width}")
        # The whole seconds only: SQLite reads a fraction to the millisecond,
        # rounding, so 12:00:00.9995 would land in the bucket of 12:00:01.
        seconds = _epoch_seconds_sql("substr(created_at, 1, 19)")
        # The text is parsed once: shifted by whole buckets past Julian day 0 (the
        # earliest time strftime reads), every time is positive, and SQLite's integer
        # division, which truncates, then floors.
        shift = -(_YEAR_ZERO // width) + 1
        return f"({seconds} + {shift * width}) / {width} - {shift}"

    def score_bin_sql(self) -> str:
        """SQL for a score's histogram bin, ``int((top_score - start) / width + epsilon)``,
        with the three as parameters (truncation toward zero; scores start at ``start``)."""
        return "CAST((top_score - ?) / ? + ? AS INTEGER)"

    def float_sql(self, column: str) -> str:
        """``column`` for arithmetic in double precision (SQLite's REAL is double)."""
        return column

    def repeated_queries(
        self, execute: Execute, where: str, params: list[object], top: int
    ) -> list[RepeatedRow]:
        """The ``top`` failing queries seen at least twice (by ``normalise_query``,
        registered on the connection), most often first, then most recent, then
        by text. Blocks."""
        # The key is a column of a subquery that is not flattened (LIMIT -1:
        # no limit): written into the GROUP BY's sort and the result alike, a
        # key computed in the outer statement calls normalise_query twice a row.
        rows = execute(
            f"SELECT normalised, count(*), max(created_at), "
            f"{_distinct_json_list_sql('failure_type')}, "
            f"{_distinct_json_list_sql('retrieval_strategy')} "
            f"FROM (SELECT {NORMALISED_QUERY_SQL} AS normalised, created_at, failure_type, "
            f"retrieval_strategy FROM {TABLE}{where} LIMIT -1) "
            "GROUP BY 1 HAVING count(*) >= 2 AND normalised IS NOT NULL "
            "ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?",
            [*params, sql_limit(top)],
        )
        return [
            (query, count, last_at, json.loads(types), json.loads(strategies))
            for query, count, last_at, types, strategies in rows
        ]


SQLITE: Final = SQLiteDialect()
