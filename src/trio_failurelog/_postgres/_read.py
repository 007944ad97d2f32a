"""Reading (and purging by hand) PostgreSQL: its read connection and its SQL dialect.

Needs the ``postgres`` extra (psycopg 3). The readers' SQL is portable apart
from what :class:`PostgresDialect` writes; :class:`PostgresReadConnection`
makes the server's answers look like SQLite's, so that the summary, the pagers
and the CLI are the same code for both:

- ``created_at`` (``TIMESTAMPTZ``) comes back as UTC text in the form this
  library's time bounds take (see ``_timetext.format_created_at``): whole seconds
  without a fraction, whole milliseconds with three digits, microseconds (the
  server's precision) with six. Time-bound parameters are such text too, read
  by the server in the session's time zone, which is set to UTC.
- ``top_score`` and ``confidence_threshold`` are ``REAL`` (float4) and come
  back as the shortest decimal that reads back as the same float4 (0.42, not
  0.41999998688697815, see ``_float4``), as SQLite's reader shows them. Results
  are fetched in binary format, so the float4 is exactly what was stored; the
  summary compares scores with what-if thresholds as float4 too
  (``CAST(? AS REAL)``), so that 0.65 recovers a score stored as 0.65.
- ``numeric`` (an ``avg`` of integers) comes back as float.

The connection is in autocommit mode, so no transaction outlives a statement
(or the summary's one snapshot), and the session is read-only
(``default_transaction_read_only``) unless it was opened to purge.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import psycopg

from .._conninfo import scrub, url_secrets
from .._database import StoreOptions, describe_database
from .._errors import DatabaseSetupError, IncompatibleSchemaError
from .._float4 import shortest_float4
from .._protocols import Dialect, Execute, RepeatedRow
from .._readsql import normalise_query, sql_limit
from .._table import FIELDS, TABLE
from .._timetext import epoch_seconds, format_created_at
from ._connect import Connection, connect_for_setup, one_line
from ._copy import no_nul
from ._partitions import drop_old_partitions
from ._schema import ADVISORY_CLASS, PURGE_LOCK, purge_sql

__all__ = ["POSTGRES", "PostgresDialect", "PostgresReadConnection"]

#: How long a manual purge waits for the purge lock a logger of the fleet holds
#: (for one chunk's transaction, normally milliseconds).
_PURGE_LOCK_WAIT: Final = "30s"
#: How long a manual purge's partition drop waits for the lock on the table
#: (writers queue behind it meanwhile); past it, that partition goes by DELETE.
_DETACH_LOCK_TIMEOUT_MS: Final = 100

_COLUMNS_QUERY: Final = """
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = to_regclass(%s::text) AND a.attnum > 0 AND NOT a.attisdropped
"""


class PostgresDialect:
    """PostgreSQL's spelling of what the readers' SQL needs (see ``_protocols.Dialect``)."""

    # ``+text`` is no operator in PostgreSQL; its planner needs no such hint.
    index_hints: bool = False
    # Concurrent transactions take ids from one sequence and commit in any order.
    ids_commit_in_order: bool = False

    def bucket_index_sql(self, width: int) -> str:
        """SQL for the time bucket of ``created_at``: floor(epoch / ``width``)."""
        width = int(width)  # written into the SQL: an int we computed, never user text
        if width < 1:
            raise ValueError(f"bucket width must be at least 1, got {width}")
        # floor, as SQLite's dialect does; epoch is exact (numeric).
        return f"floor(extract(epoch FROM created_at) / {width})::bigint"

    def score_bin_sql(self) -> str:
        """SQL for a score's histogram bin, truncated toward zero as SQLite's CAST."""
        # trunc: a cast to an integer type would round, SQLite's CAST truncates.
        # The score as shown (see float_sql), so that it lands in SQLite's bin.
        return f"trunc(({self.float_sql('top_score')} - ?) / ? + ?)::bigint"

    def float_sql(self, column: str) -> str:
        """``column`` widened to float8 for arithmetic, as the score the reader shows."""
        # REAL is float4 here, and float4 - float4 is computed in float4. Widened
        # through its text, the shortest decimal that is the same float4 (the
        # session's extra_float_digits is 1), a score is the double the reader
        # shows: 0.42, not 0.41999998688697815. Means, gaps and histogram bins
        # are then the ones SQLite computes from the same scores.
        return f"{column}::text::float8"

    def repeated_queries(
        self, execute: Execute, where: str, params: list[object], top: int
    ) -> list[RepeatedRow]:
        """As SQLite's, by the same :func:`normalise_query` (Python's casefold and
        whitespace), grouped in the server wherever the server can compute it.

        The key is computed in SQL that no locale changes (``translate`` of
        A-Z, an explicit class of Python's ASCII whitespace): for every text
        without a character that casefolding changes beyond A-Z or non-ASCII
        whitespace (``É``, ``ß``, U+3000; see :func:`_special_pattern`), that is
        :func:`normalise_query` itself, so the server groups, orders and cuts to
        ``top``. Text with such characters (PostgreSQL's ``lower()`` and ``\\s``
        follow the server's locale, not Python) is grouped by exact text in the
        server and merged here: memory grows with the distinct texts holding
        one of them in the range, not with its rows. Keys that such text folds
        to (``ß`` to ``ss``) are counted in full by one more statement. Blocks.
        """
        special = "query_text ~ ?"
        pattern = _special_pattern()
        merged: dict[str, list[Any]] = {}
        for text, count, last_at, types, strategies in execute(
            "SELECT query_text, count(*), max(created_at), array_agg(DISTINCT failure_type), "
            f"array_agg(DISTINCT retrieval_strategy) FROM {TABLE}{_and(where, special)} GROUP BY 1",
            [*params, pattern],
        ):
            key = normalise_query(text)
            if key is not None:
                _merge(merged, key, int(count), last_at, types, strategies)
        shared = sorted(merged)
        # One pass for both: the top keys of plain text, and the keys that
        # special text folds to (ordered first, so that LIMIT keeps them all).
        rows = execute(
            "SELECT k, count(*), max(created_at), array_agg(DISTINCT failure_type), "
            "array_agg(DISTINCT retrieval_strategy), k = ANY(?::text[]) AS is_shared "
            f"FROM (SELECT {_PLAIN_KEY} AS k, created_at, failure_type, retrieval_strategy "
            f"FROM {TABLE}{_and(where, f'NOT ({special})')}) AS keyed "
            "GROUP BY k HAVING count(*) >= 2 OR k = ANY(?::text[]) "
            'ORDER BY 6 DESC, 2 DESC, 3 DESC, k COLLATE "C" LIMIT ?',
            [shared, *params, pattern, shared, sql_limit(top + len(shared))],
        )
        plain = []
        for key, count, last_at, types, strategies, is_shared in rows:
            if is_shared:
                _merge(merged, key, int(count), last_at, types, strategies)
            else:
                plain.append((key, count, last_at, types, strategies))
        repeated = [
            (key, int(count), last_at, sorted(types), sorted(strategies))
            for key, count, last_at, types, strategies in plain
        ] + [
            (key, count, last_at, sorted(types), sorted(strategies))
            for key, (count, last_at, types, strategies) in merged.items()
            if count >= 2
        ]
        # ORDER BY count DESC, last_at DESC, text: the text in code point order.
        repeated.sort(key=lambda row: row[0])
        repeated.sort(key=lambda row: (row[1], row[2]), reverse=True)
        return repeated[: sql_limit(top)]


#: normalise_query() of text without the characters of _special_pattern(), in
#: SQL that no locale changes: A-Z folded (lower() under the "C" collation
#: folds nothing else), and, where the text has any, runs of Python's ASCII
#: whitespace (str.split: \t \n \x0b \x0c \r \x1c-\x1f and space) made one
#: space and the ends trimmed (regexp_replace costs about 5 us a row: only
#: where needed). Escape strings: the same whatever standard_conforming_strings.
_PLAIN_KEY: Final = (
    "CASE WHEN query_text ~ E'[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f]|  |^ | $' "
    'THEN btrim(regexp_replace(lower(query_text COLLATE "C"), '
    "E'[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]+', ' ', 'g'), ' ') "
    'ELSE lower(query_text COLLATE "C") END'
)


@functools.cache
def _special_pattern() -> str:
    """A regular expression matching text that :data:`_PLAIN_KEY` would not fold as
    :func:`normalise_query` does: any non-ASCII character that casefolding changes
    (``É``, ``ß``, ``ς``) or that Python counts as whitespace (U+00A0, U+3000).
    Built from this Python's Unicode tables, the ones normalise_query() uses;
    the server only compares characters, whatever its locale. Computed once
    (about 0.4 s)."""
    ranges: list[list[int]] = []
    for point in range(0x80, 0x110000):
        if 0xD800 <= point < 0xE000:
            continue  # surrogates: no text holds them
        char = chr(point)
        if char.casefold() != char or char.isspace():
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1][1] = point
            else:
                ranges.append([point, point])
    parts = (chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)
    return f"[{''.join(parts)}]"


def _and(where: str, condition: str) -> str:
    return f"{where} AND {condition}" if where else f" WHERE {condition}"


def _merge(
    merged: dict[str, list[Any]],
    key: str,
    count: int,
    last_at: str,
    types: Iterable[str],
    strategies: Iterable[str],
) -> None:
    entry = merged.get(key)
    if entry is None:
        merged[key] = [count, last_at, set(types), set(strategies)]
    else:
        entry[0] += count
        entry[1] = max(entry[1], last_at)
        entry[2].update(types)
        entry[3].update(strategies)


POSTGRES: Final = PostgresDialect()


#: The type oids whose values :func:`_value` converts: timestamp, timestamptz,
#: numeric, json, jsonb and float4.
_CONVERTED: Final = frozenset({1114, 1184, 1700, 114, 3802, 700})


def _value(value: object) -> object:
    """A result value as SQLite's reader would give it."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return format_created_at(value)
    if isinstance(value, float):  # only float4 columns are converted
        return shortest_float4(value)
    if isinstance(value, Decimal):
        return float(value)
    if value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a json/jsonb edge_types column
    return value


def _placeholders(sql: str) -> str:
    """The readers' ``?`` placeholders as psycopg's ``%s`` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresReadConnection:
    """A connection to a PostgreSQL database for the readers (and the manual purge).

    Blocks in every method. Raises :exc:`DatabaseSetupError` naming the
    database without its password, with the server's reason scrubbed of it.
    """

    dialect: Dialect = POSTGRES
    needs_cancel = True

    def __init__(self, url: str, *, read_only: bool = True) -> None:
        self._secrets = url_secrets(url)
        self.name = describe_database(url)
        conn = connect_for_setup(url, self.name, self._secrets, StoreOptions())
        try:
            conn.execute("SET TIME ZONE 'UTC'")
            conn.execute("SET extra_float_digits = 1")  # float4 text: shortest exact
            if read_only:
                conn.execute("SET default_transaction_read_only = on")
            found = {name for (name,) in conn.execute(_COLUMNS_QUERY, (TABLE,))}
        except psycopg.Error as exc:
            conn.close()
            raise self._error("cannot read database", exc) from None
        except BaseException:
            conn.close()
            raise
        if not found:
            conn.close()
            raise DatabaseSetupError(f"database {self.name} has no table {TABLE!r}")
        missing = [column for column in FIELDS if column not in found]
        if missing:
            conn.close()
            raise IncompatibleSchemaError(
                f"database {self.name}: table {TABLE!r} lacks column(s) {', '.join(missing)}"
            )
        self._conn: Connection = conn
        self._dropped_before: str | None = None  # the cutoff partitions were dropped for

    def __repr__(self) -> str:
        return f"<PostgresReadConnection {self.name}>"

    @property
    def raw(self) -> Connection:
        return self._conn

    def _error(self, what: str, exc: BaseException) -> DatabaseSetupError:
        detail = scrub(one_line(str(exc)), self._secrets)
        return DatabaseSetupError(f"{what} {self.name}: {type(exc).__name__}: {detail}")

    def execute(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        # PostgreSQL text cannot hold U+0000: the writers store it as U+FFFD
        # (see _copy.no_nul), so a filter value is looked up that way.
        values = tuple(no_nul(p) if isinstance(p, str) else p for p in params)
        try:
            with self._conn.cursor(binary=True) as cur:
                cur.execute(_placeholders(sql), values)
                if cur.description is None:
                    return []
                rows = cur.fetchall()
                # Only the columns of types that need it are converted: converting
                # every value cost more than the rest of reading a row together.
                convert = [
                    i for i, column in enumerate(cur.description) if column.type_code in _CONVERTED
                ]
        except psycopg.Error as exc:
            raise self._error("cannot read database", exc) from None
        if not convert:
            return rows
        converted = []
        for row in rows:
            items = list(row)
            for i in convert:
                items[i] = _value(items[i])
            converted.append(tuple(items))
        return converted

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            # COMMIT ends a transaction an error aborted as a rollback would.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("COMMIT")

    def watch(self, should_abort: Callable[[], int]) -> None:
        pass  # cancel() interrupts the server instead

    def cancel(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.cancel()

    def purge_chunk(self, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` rows with ``created_at`` before ``cutoff`` (UTC text)
        in one transaction, under the advisory lock of the logger's purge (waiting
        for it up to 30 s). Returns how many. Blocks.

        On a table partitioned by ``created_at``, the first call for a cutoff
        first detaches and drops every partition wholly older than it (see
        ``_partitions.drop_old_partitions``, each waiting at most 100 ms for
        the table's lock), their rows counted in the result beyond ``limit``.
        """
        conn = self._conn
        dropped = 0
        moment = epoch_seconds(cutoff)
        try:
            if cutoff != self._dropped_before and moment is not None:
                self._dropped_before = cutoff
                dropped = drop_old_partitions(
                    conn, moment, wait=True, lock_timeout_ms=_DETACH_LOCK_TIMEOUT_MS
                )
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{_PURGE_LOCK_WAIT}'")
                cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK))
                cur.execute(purge_sql("%s::timestamptz"), (cutoff, cutoff, limit))
                return dropped + max(cur.rowcount, 0)
        except psycopg.Error as exc:
            raise self._error("cannot purge database", exc) from None

    def close(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._conn.close()
