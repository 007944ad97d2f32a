"""The SQL shared by the readers: opening read-only, filters, rows to records, time text.

Every function that touches a connection blocks; the rest is pure computation.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from ._errors import DatabaseSetupError, IncompatibleSchemaError
from ._record import RetrievalFailureRecord, RetrievalFailureType
from ._schema import COLUMNS, TABLE, table_exists
from ._storage import Database

__all__ = [
    "SELECT",
    "Choice",
    "Execute",
    "Filters",
    "TimeBound",
    "connect",
    "created_at_text",
    "epoch_seconds",
    "normalise_query",
    "row_to_record",
    "text_at",
    "where_clause",
]

#: A time-range bound: a :class:`~datetime.datetime` (naive means UTC), a
#: :class:`~datetime.timedelta` (that long before now), or ``created_at`` text.
TimeBound = datetime | timedelta | str

#: What a filter on failure type or strategy accepts: one value or several.
Choice = str | Iterable[str]

#: Runs one statement and returns all its rows (raising DatabaseSetupError on trouble).
Execute = Callable[[str, Iterable[object]], list[Any]]

FIELDS: Final = ("id", *COLUMNS)
SELECT: Final = f"SELECT {', '.join(FIELDS)} FROM {TABLE}"
_CREATED_AT: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
)
_FAILURE_TYPES: Final = {member.value: member for member in RetrievalFailureType}
#: How long one statement waits for a lock (only WAL recovery takes one a reader needs).
_BUSY_TIMEOUT: Final = 5.0


# --------------------------------------------------------------------------- time


def created_at_text(value: TimeBound, *, now: datetime | None = None) -> str:
    """Turn a time-range bound into ``created_at`` text, which compares as time.

    An aware :class:`~datetime.datetime` is converted to UTC; a naive one is
    taken as UTC already. A :class:`~datetime.timedelta` means that long before
    ``now`` (default: the current time, cut to the whole second). Text must be in the stored
    form ``YYYY-MM-DD HH:MM:SS[.fff]`` and is returned unchanged.

    The result has no fractional part when the time is a whole second, three
    digits for whole milliseconds (what this library writes), six otherwise, so
    that a row stamped at exactly the bound compares equal to it.

    Raises :exc:`ValueError` for text in another form and :exc:`TypeError` for
    other types. Pure computation: never blocks.
    """
    if isinstance(value, str):
        if not _CREATED_AT.fullmatch(value):
            raise ValueError(
                f"a time bound as text must look like 'YYYY-MM-DD HH:MM:SS[.fff]' (UTC), "
                f"got {value!r}"
            )
        return value
    if isinstance(value, timedelta):
        moment = (now or datetime.now(UTC)).replace(microsecond=0) - value
    elif isinstance(value, datetime):
        moment = value
    else:
        raise TypeError(
            f"a time bound must be a datetime, timedelta or str, not {type(value).__name__}"
        )
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    micro = moment.microsecond
    if micro == 0:
        return text
    if micro % 1000 == 0:
        return f"{text}.{micro // 1000:03d}"
    return f"{text}.{micro:06d}"


def epoch_seconds(created_at: str) -> float | None:
    """``created_at`` text as POSIX seconds, or ``None`` when it is not in the stored form."""
    if not _CREATED_AT.fullmatch(created_at):
        return None
    try:  # rows of other writers are not validated: "2024-02-30" may be there
        whole = datetime.strptime(created_at[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    fraction = float("0" + created_at[19:]) if len(created_at) > 19 else 0.0
    return whole.timestamp() + fraction


def text_at(seconds: float) -> str:
    """POSIX seconds as ``created_at`` text (whole seconds)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


# --------------------------------------------------------------------------- filters


def _choices(name: str, value: Choice | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (str(value),)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a str or an iterable of str, not {type(value).__name__}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str values, not {type(item).__name__}")
    return tuple(str(item) for item in items)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which rows a read looks at; every value reaches SQL as a bound parameter."""

    since: str | None = None
    until: str | None = None
    failure_types: tuple[str, ...] | None = None
    strategies: tuple[str, ...] | None = None
    conversation_id: int | None = None

    @classmethod
    def build(
        cls,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: Choice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
    ) -> Filters:
        """Validate and normalise the public filter arguments (raises TypeError/ValueError)."""
        now = datetime.now(UTC)
        if conversation_id is not None and (
            isinstance(conversation_id, bool) or not isinstance(conversation_id, int)
        ):
            raise TypeError(
                f"conversation_id must be an int or None, not {type(conversation_id).__name__}"
            )
        return cls(
            since=None if since is None else created_at_text(since, now=now),
            until=None if until is None else created_at_text(until, now=now),
            failure_types=_choices("failure_type", failure_type),
            strategies=_choices("strategy", strategy),
            conversation_id=conversation_id,
        )

    def where(self, *, index_on_time: bool = False) -> tuple[list[str], list[object]]:
        """SQL conditions (to be joined with AND) and their parameters.

        With ``index_on_time``, the conditions on the other indexed columns are
        written as ``+column`` so that SQLite walks the ``created_at`` index: a
        paged read in time order then costs one pass over the table in total,
        instead of a sort of every matching row for each page.
        """
        plus = "+" if index_on_time else ""
        conditions: list[str] = []
        params: list[object] = []
        if self.since is not None:
            conditions.append("created_at >= ?")
            params.append(self.since)
        if self.until is not None:
            conditions.append("created_at < ?")
            params.append(self.until)
        for column, values in (
            ("failure_type", self.failure_types),
            ("retrieval_strategy", self.strategies),
        ):
            if values is not None:
                conditions.append(f"{plus}{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.conversation_id is not None:
            conditions.append(f"{plus}conversation_id = ?")
            params.append(self.conversation_id)
        return conditions, params


def where_clause(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


# --------------------------------------------------------------------------- rows


def _edge_types(raw: object) -> tuple[str, ...] | None:
    """The stored JSON array as a tuple; tolerant of what other applications wrote.

    ``NULL`` stays ``None``; a JSON array becomes a tuple of its items (non-text
    items as their JSON text); a JSON string becomes a 1-tuple; anything else,
    invalid JSON included, becomes a 1-tuple holding the stored text unchanged.
    """
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return (text,)
    if isinstance(value, list):
        return tuple(
            item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            for item in value
        )
    if isinstance(value, str):
        return (value,)
    return (text,)


def row_to_record(row: tuple[Any, ...]) -> RetrievalFailureRecord:
    """Build a record from a row of :data:`SELECT`, trusting the values as stored."""
    values = dict(zip(FIELDS, row, strict=True))
    failure_type = values["failure_type"]
    values["failure_type"] = _FAILURE_TYPES.get(failure_type, failure_type)
    values["edge_types"] = _edge_types(values["edge_types"])
    return RetrievalFailureRecord._from_trusted(**values)


# --------------------------------------------------------------------------- opening


def database_uri(database: Database, mode: str) -> str:
    """An SQLite URI for ``database`` with ``?mode=...``; the path is percent-encoded."""
    return Path(os.path.abspath(os.fspath(database))).as_uri() + f"?mode={mode}"


def check_file(database: Database) -> str:
    """Return the path's display name; raise :exc:`DatabaseSetupError` if it is no file."""
    path = os.fspath(database)
    if not isinstance(path, str):
        raise TypeError(f"database must be a str or os.PathLike[str], not {type(path).__name__}")
    name = repr(path)
    if not os.path.exists(path):
        raise DatabaseSetupError(f"database {name} does not exist")
    if os.path.isdir(path):
        raise DatabaseSetupError(f"database {name} is a directory, not a file")
    return name


def require_table(conn: sqlite3.Connection, name: str, columns: Iterable[str] = FIELDS) -> None:
    """Check that ``conn`` is an SQLite database holding our table with ``columns``.

    Raises :exc:`DatabaseSetupError` when the file is not a database or the
    table is missing, :exc:`IncompatibleSchemaError` when columns are missing.
    Extra columns, other types and constraints are fine for reading.
    """
    try:
        if not table_exists(conn):
            raise DatabaseSetupError(f"database {name} has no table {TABLE!r}")
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
    except sqlite3.DatabaseError as exc:
        raise DatabaseSetupError(f"cannot read database {name}: {exc}") from exc
    missing = [column for column in columns if column not in found]
    if missing:
        raise IncompatibleSchemaError(
            f"database {name}: table {TABLE!r} lacks column(s) {', '.join(missing)}"
        )


def connect(database: Database, *, mode: str = "ro") -> tuple[sqlite3.Connection, str]:
    """Open an existing database (``mode`` ``"ro"`` or ``"rw"``, never creating it).

    Blocks for the open and a schema read. Raises :exc:`DatabaseSetupError` or
    :exc:`IncompatibleSchemaError` naming the database; nothing is written.
    """
    name = check_file(database)
    try:
        conn = sqlite3.connect(
            database_uri(database, mode),
            uri=True,
            timeout=_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,  # the async reader uses it from worker threads, in turn
        )
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"cannot open database {name}: {exc}") from exc
    try:
        require_table(conn, name)
    except BaseException:
        conn.close()
        raise
    return conn, name


def normalise_query(text: object) -> str | None:
    """The key under which failing queries are counted as repeats: case and spaces folded."""
    if not isinstance(text, str):
        return None
    return " ".join(text.casefold().split())
