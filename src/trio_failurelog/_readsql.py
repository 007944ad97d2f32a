"""The SQL shared by the readers: opening read-only, filters, rows to records, time text.

Every function that touches a connection blocks; the rest is pure computation.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

from ._errors import DatabaseSetupError, IncompatibleSchemaError
from ._record import RetrievalFailureRecord, RetrievalFailureType
from ._schema import COLUMNS, TABLE, table_exists
from ._storage import Database, importing_postgres, is_postgres_url, postgres_url

__all__ = [
    "FAILURE_TYPE_NAMES",
    "NORMALISED_QUERY_SQL",
    "NORMALISE_FUNCTION",
    "SELECT",
    "SQLITE",
    "SQL_INT_MAX",
    "Choice",
    "Dialect",
    "Execute",
    "Filters",
    "ReadConnection",
    "RepeatedRow",
    "SQLiteReadConnection",
    "TimeBound",
    "bucket_index_sql",
    "check_count",
    "connect",
    "created_at_text",
    "distinct_json_list_sql",
    "epoch_seconds",
    "failure_type_name",
    "format_created_at",
    "normalise_query",
    "open_read_connection",
    "row_to_record",
    "score_bin_sql",
    "sql_limit",
    "text_at",
    "where_clause",
]

#: A time-range bound: a :class:`~datetime.datetime` (naive means UTC) or
#: :class:`~datetime.date`, a :class:`~datetime.timedelta` (that long before
#: now), or UTC text (``created_at`` form or ISO 8601).
TimeBound = datetime | date | timedelta | str

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
#: SQLite virtual-machine instructions between two checks for an abandoned async call.
_ABORT_CHECK_INSTRUCTIONS: Final = 1000
#: How long one statement waits for a lock (only WAL recovery takes one a reader needs).
_BUSY_TIMEOUT: Final = 5.0


# --------------------------------------------------------------------------- time

#: The earliest and latest times a bound can name; bounds beyond them are clamped
#: to them (a duration of a million years ago means "since the beginning").
_EARLIEST: Final = datetime.min
_LATEST: Final = datetime.max
_EPOCH: Final = datetime(1970, 1, 1)
_TIME_FORMS: Final = (
    "a duration, a datetime, or UTC text as 'YYYY-MM-DD HH:MM:SS[.ffffff]' or ISO 8601, "
    "years 0001 to 9999"
)


def _naive_utc(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime, clamped to the representable range."""
    offset = moment.utcoffset()
    if offset is None:
        return moment
    try:
        return moment.replace(tzinfo=None) - offset
    except OverflowError:  # 0001-01-01 00:30+01:00 is before the first representable time
        return _EARLIEST if offset > timedelta(0) else _LATEST


def _format(moment: datetime) -> str:
    # Not strftime: it writes year 999 as "999" on glibc, which then compares
    # as text after "2024" (and 1 as "1", not "0001").
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    micro = moment.microsecond
    if micro == 0:
        return text
    if micro % 1000 == 0:
        return f"{text}.{micro // 1000:03d}"
    return f"{text}.{micro:06d}"


def format_created_at(moment: datetime) -> str:
    """A naive UTC datetime as ``created_at`` text: no fraction for a whole second,
    three digits for whole milliseconds, six otherwise (as :func:`created_at_text`)."""
    return _format(moment)


def _parse_text(value: str, name: str) -> str | datetime:
    """Stored-form text unchanged, or ISO 8601 text as a datetime; else ValueError."""
    if _CREATED_AT.fullmatch(value):
        try:  # the form is right, but is it a date? ("2024-02-30", year 0000)
            datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
        else:
            return value
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: invalid time {value!r}: use {_TIME_FORMS}") from None


def created_at_text(
    value: TimeBound, *, now: datetime | None = None, name: str = "time bound"
) -> str:
    """Turn a time-range bound into ``created_at`` text, which compares as time.

    An aware :class:`~datetime.datetime` is converted to UTC; a naive one is
    taken as UTC already; a :class:`~datetime.date` means its midnight, UTC. A
    :class:`~datetime.timedelta` means that long before ``now`` (default: the
    current time, cut to the whole second); a negative one, after. Text in the
    stored form ``YYYY-MM-DD HH:MM:SS[.fff]`` is returned unchanged; other ISO
    8601 text (``2024-05-01T12:00``, ``2024-05-01``, ``...+02:00``) is read as a
    datetime. A bound before 0001-01-01 or after 9999-12-31 (a timedelta of a
    million years, a time zone at either end) is clamped to that end, which
    gives the same rows: none are stored outside it.

    The result always has a four-digit year, no fractional part when the time
    is a whole second, three digits for whole milliseconds (what this library
    writes), six otherwise, so that a row stamped at exactly the bound compares
    equal to it.

    Raises :exc:`ValueError` (its message starting with ``name``) for text
    that is not a valid time, and :exc:`TypeError` for other types. Pure
    computation: never blocks.
    """
    if isinstance(value, str):
        parsed = _parse_text(value, name)
        if isinstance(parsed, str):
            return parsed
        value = parsed
    if isinstance(value, timedelta):
        base = _naive_utc((now or datetime.now(UTC)).replace(microsecond=0))
        try:
            moment = base - value
        except OverflowError:
            moment = _EARLIEST if value > timedelta(0) else _LATEST
    elif isinstance(value, datetime):
        moment = _naive_utc(value)
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    else:
        raise TypeError(
            f"{name} must be a datetime, date, timedelta or str, not {type(value).__name__}"
        )
    return _format(moment)


def epoch_seconds(created_at: str) -> float | None:
    """``created_at`` text as POSIX seconds, or ``None`` when it is not in the stored form."""
    if not _CREATED_AT.fullmatch(created_at):
        return None
    try:  # rows of other writers are not validated: "2024-02-30" may be there
        whole = datetime.strptime(created_at[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    fraction = float("0" + created_at[19:]) if len(created_at) > 19 else 0.0
    return (whole - _EPOCH).total_seconds() + fraction


def text_at(seconds: float) -> str:
    """POSIX seconds as ``created_at`` text (whole seconds, clamped to years 0001-9999)."""
    whole = math.floor(seconds)
    try:
        moment = _EPOCH + timedelta(seconds=whole)
    except OverflowError:
        moment = _EARLIEST if whole < 0 else _LATEST.replace(microsecond=0)
    return _format(moment)


#: Julian day 0 (4714 BC) in POSIX seconds: no text strftime reads is earlier
#: (a bare number is read as a Julian day number).
_YEAR_ZERO: Final = -210866760000


def bucket_index_sql(width: int) -> str:
    """SQL for the time bucket of ``created_at``: floor(POSIX seconds / ``width``),
    NULL when the text is no time. Floor, not SQLite's truncation toward zero,
    so that rows before 1970 land in the buckets :func:`text_at` names."""
    width = int(width)  # written into the SQL: an int we computed, never user text
    if width < 1:
        raise ValueError(f"bucket width must be at least 1, got {width}")
    # The whole seconds only: SQLite reads a fraction to the millisecond,
    # rounding, so 12:00:00.9995 would land in the bucket of 12:00:01.
    seconds = "CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER)"
    # The text is parsed once: shifted by whole buckets past Julian day 0 (the
    # earliest time strftime reads), every time is positive, and SQLite's integer
    # division, which truncates, then floors.
    shift = -(_YEAR_ZERO // width) + 1
    return f"({seconds} + {shift * width}) / {width} - {shift}"


# --------------------------------------------------------------------------- dialect

# The SQL below is SQLite's own; everything else the readers send is portable
# (``?`` placeholders aside), so a reader of another database brings its own
# :class:`Dialect` (PostgreSQL's is in ``_postgres_read``).

#: The name under which :func:`normalise_query` is registered on a connection.
NORMALISE_FUNCTION: Final = "failurelog_normalise"
#: A failing query's repeat key (see :func:`normalise_query`).
NORMALISED_QUERY_SQL: Final = f"{NORMALISE_FUNCTION}(query_text)"

#: One repeated query: normalised text, count, last ``created_at``, failure types, strategies.
RepeatedRow = tuple[str, int, str, list[str], list[str]]


def distinct_json_list_sql(column: str) -> str:
    """SQL aggregating the distinct values of ``column`` into a JSON array's text."""
    return f"json_group_array(DISTINCT {column})"


def score_bin_sql() -> str:
    """SQL for a score's histogram bin, ``int((top_score - start) / width + epsilon)``,
    with the three as parameters (truncation toward zero; scores start at ``start``)."""
    return "CAST((top_score - ?) / ? + ? AS INTEGER)"


class Dialect:
    """What the readers' SQL needs that differs between databases: SQLite's here.

    The summary and the pagers call these and nothing database-specific else.
    """

    #: Whether ``+column`` may be written to steer the planner to the time index.
    index_hints: bool = True
    #: Whether a row with a larger id is never committed before one with a
    #: smaller id (SQLite: one writer at a time, ids taken in commit order).
    ids_commit_in_order: bool = True

    def bucket_index_sql(self, width: int) -> str:
        """See :func:`bucket_index_sql`."""
        return bucket_index_sql(width)

    def score_bin_sql(self) -> str:
        """See :func:`score_bin_sql`."""
        return score_bin_sql()

    def float_sql(self, column: str) -> str:
        """``column`` for arithmetic in double precision (SQLite's REAL is double)."""
        return column

    def repeated_queries(
        self, execute: Execute, where: str, params: list[object], top: int
    ) -> list[RepeatedRow]:
        """The ``top`` failing queries seen at least twice (by :func:`normalise_query`),
        most often first, then most recent, then by text. Blocks."""
        rows = execute(
            f"SELECT {NORMALISED_QUERY_SQL} AS normalised, count(*), max(created_at), "
            f"{distinct_json_list_sql('failure_type')}, "
            f"{distinct_json_list_sql('retrieval_strategy')} "
            f"FROM {TABLE}{where} GROUP BY 1 HAVING count(*) >= 2 AND normalised IS NOT NULL "
            "ORDER BY 2 DESC, 3 DESC, 1 LIMIT ?",
            [*params, sql_limit(top)],
        )
        return [
            (query, count, last_at, json.loads(types), json.loads(strategies))
            for query, count, last_at, types, strategies in rows
        ]


SQLITE: Final = Dialect()


# --------------------------------------------------------------------------- filters


#: The largest value SQLite binds as an integer; larger limits mean "no limit".
SQL_INT_MAX: Final = 2**63 - 1
FAILURE_TYPE_NAMES: Final = tuple(_FAILURE_TYPES)


def failure_type_name(value: str, name: str = "failure_type") -> str:
    """``value`` if it is one of the four failure types (exact, case-sensitive),
    else :exc:`ValueError` naming ``name`` and the valid types."""
    if value not in _FAILURE_TYPES:
        hint = ""
        folded = value.strip().casefold().replace("-", "_")
        if folded in _FAILURE_TYPES:
            hint = f" (did you mean {folded!r}?)"
        elif folded.replace("_", "") in {t.replace("_", "") for t in _FAILURE_TYPES}:
            hint = f" (did you mean {_by_letters(folded)!r}?)"
        raise ValueError(
            f"{name}: unknown failure type {value!r}{hint}; "
            f"the failure types are {', '.join(FAILURE_TYPE_NAMES)}"
        )
    return str(_FAILURE_TYPES[value].value)


def _by_letters(folded: str) -> str:
    letters = folded.replace("_", "")
    return next(t for t in _FAILURE_TYPES if t.replace("_", "") == letters)


def _choices(name: str, value: Choice | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a str or an iterable of str, not {type(value).__name__}")
    else:
        items = tuple(value)
    if not items:
        # IN () would match nothing, silently: almost certainly not what was meant.
        raise ValueError(f"{name} must name at least one value (None: no filter)")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str values, not {type(item).__name__}")
    texts = tuple(str(item) for item in items)  # plain str, also for StrEnum members
    if name == "failure_type":
        texts = tuple(failure_type_name(text) for text in texts)
    return tuple(dict.fromkeys(texts))


def check_count(name: str, value: object, *, minimum: int = 0, optional: bool = False) -> None:
    """Raise TypeError/ValueError naming ``name`` unless ``value`` is an int >= ``minimum``
    (or None when ``optional``). Any size is fine: see :func:`sql_limit`."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value < minimum:
        bound = "negative" if minimum == 0 else f"less than {minimum}"
        raise ValueError(f"{name} must not be {bound}, got {value}")


def sql_limit(value: int) -> int:
    """A count as a LIMIT parameter: beyond what SQLite can bind means "all of them"."""
    return min(value, SQL_INT_MAX)


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
        """Validate and normalise the public filter arguments.

        Raises :exc:`TypeError`/:exc:`ValueError` naming the argument: a bound
        that is no time, a failure type that is not one of the four, an empty
        list of choices, a conversation id that is no 64-bit int.
        """
        now = datetime.now(UTC)
        if conversation_id is not None:
            check_count("conversation_id", conversation_id, minimum=-(2**63))
            if conversation_id > SQL_INT_MAX:
                raise ValueError(
                    f"conversation_id must fit in 64 bits (SQLite's INTEGER), got {conversation_id}"
                )
        return cls(
            since=None if since is None else created_at_text(since, now=now, name="since"),
            until=None if until is None else created_at_text(until, now=now, name="until"),
            failure_types=_choices("failure_type", failure_type),
            strategies=_choices("strategy", strategy),
            conversation_id=conversation_id,
        )

    @property
    def narrowed(self) -> bool:
        """Whether any filter is set (a time bound included)."""
        return any(
            value is not None
            for value in (
                self.since,
                self.until,
                self.failure_types,
                self.strategies,
                self.conversation_id,
            )
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


class ReadConnection(Protocol):
    """One database connection as the readers use it; blocking, one thread at a time.

    :class:`SQLiteReadConnection` here, ``PostgresReadConnection`` in
    ``_postgres_read``. ``execute`` takes ``?`` placeholders and returns rows
    as SQLite gives them: ``created_at`` as text, numbers as int or float.
    """

    #: The database, quoted, for messages: never holds a password.
    name: str
    dialect: Dialect
    #: Whether :meth:`cancel` must be called to stop a statement (else :meth:`watch` does).
    needs_cancel: bool

    @property
    def raw(self) -> Any:
        """The driver's connection."""
        ...

    def execute(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        """Run one statement, return its rows; :exc:`DatabaseSetupError` on trouble."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """One read-only transaction for the statements in the ``with`` block."""
        ...

    def watch(self, should_abort: Callable[[], int]) -> None:
        """Have running statements stop soon after ``should_abort()`` turns true."""
        ...

    def cancel(self) -> None:
        """Stop the statement under way (any thread); nothing when none is."""
        ...

    def close(self) -> None:
        """Close the connection. Idempotent."""
        ...


class SQLiteReadConnection:
    """A read-only (or, for purging, read-write) connection to an SQLite file."""

    dialect: Dialect = SQLITE
    needs_cancel = False

    def __init__(self, database: Database, *, mode: str = "ro") -> None:
        self._conn, self.name = connect(database, mode=mode)
        self._conn.create_function(NORMALISE_FUNCTION, 1, normalise_query, deterministic=True)

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    def execute(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseSetupError(f"cannot read database {self.name}: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        finally:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def watch(self, should_abort: Callable[[], int]) -> None:
        self._conn.set_progress_handler(should_abort, _ABORT_CHECK_INSTRUCTIONS)

    def cancel(self) -> None:
        pass  # the progress handler of watch() stops it

    def close(self) -> None:
        self._conn.close()


def open_read_connection(database: Database) -> ReadConnection:
    """Open ``database`` for reading: an SQLite file read-only, or a PostgreSQL URL.

    Blocks for the connection and a schema check. Raises
    :exc:`DatabaseSetupError` (naming the ``postgres`` extra when a URL is
    given without it) or :exc:`IncompatibleSchemaError`.
    """
    if is_postgres_url(database):
        assert isinstance(database, str)
        conn: ReadConnection = _postgres_module().PostgresReadConnection(postgres_url(database))
        return conn
    return SQLiteReadConnection(database)


def _postgres_module() -> Any:
    """``_postgres_read``, or DatabaseSetupError naming the extra when psycopg is missing."""
    with importing_postgres():
        from . import _postgres_read
    return _postgres_read


def normalise_query(text: object) -> str | None:
    """The key under which failing queries are counted as repeats: case and spaces folded."""
    if not isinstance(text, str):
        return None
    return " ".join(text.casefold().split())
