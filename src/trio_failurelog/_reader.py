"""The readers: FailureReader, its trio twin AsyncFailureReader, and the plans and core they share.

The reader opens an SQLite file read-only (``mode=ro``), never creates a file,
and never takes a write lock, so it can look at a database while a logger (this
library's or the reference application's) writes to it in WAL mode. A
``postgresql://`` URL is read through the PostgreSQL backend (the ``postgres``
extra) in a read-only session. Long reads are split into short ones:
:meth:`FailureReader.query` fetches one page per statement (keyset pagination
on ``(created_at, id)``), so no read transaction stays open between pages to
hold back the writer's WAL checkpoints (or PostgreSQL's vacuum).

The twins are built as httpx's and psycopg's are: each public method
validates its arguments once into a small frozen plan (on the caller's
thread, so argument errors raise at the call), and one blocking core method
of :class:`_ReadCore` carries the plan out; the sync reader calls it
directly, the async one on its worker thread.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

import trio

from ._backends import open_read_connection
from ._database import Database
from ._protocols import Dialect, Execute, ReadConnection
from ._readsql import (
    SELECT,
    Choice,
    FailureTypeChoice,
    Filters,
    check_count,
    row_to_record,
    sql_limit,
    where_clause,
)
from ._record import RetrievalFailureRecord
from ._summary import FailureSummary, summarise
from ._table import FIELDS, TABLE
from ._threads import SerialThread
from ._timetext import TimeBound

__all__ = ["AsyncFailureReader", "FailureReader", "open_failure_reader"]

T = TypeVar("T")


# --------------------------------------------------------------------------- the reader


class FailureReader:
    """Reads ``memory_retrieval_failures`` from an SQLite file or PostgreSQL, synchronously.

    ::

        with FailureReader("failures.db") as reader:
            for record in reader.query(failure_type="low_confidence", limit=20):
                print(record.created_at, record.query_text)

    ``database`` is an SQLite path or a ``postgresql://`` (``postgres://``)
    URL with the usual libpq parameters; a URL needs the ``postgres`` extra.
    Opening blocks briefly (open plus a schema read) and raises
    :exc:`DatabaseSetupError` when the file does not exist, is not an SQLite
    database, the server cannot be reached or refuses the credentials, the
    extra is missing, or there is no ``memory_retrieval_failures`` table;
    :exc:`IncompatibleSchemaError` when the table lacks columns. Messages and
    ``repr()`` never show a password. The database is opened read-only and
    never created or modified; a logger can keep writing to it meanwhile.

    Records read from PostgreSQL look like SQLite's: ``created_at`` as UTC
    text (see :meth:`query`), ids as ints; ``top_score`` and
    ``confidence_threshold`` are the float4 values the ``REAL`` columns hold
    (0.42 reads back as 0.41999998688697815). Every method blocks on the
    database; use :class:`AsyncFailureReader` from trio code. Use from one
    thread at a time.
    """

    def __init__(self, database: Database) -> None:
        self._core = _ReadCore(open_read_connection(database))
        #: The database's display name (its path or URL without a password, quoted).
        self.name: str = self._core.name

    def __repr__(self) -> str:
        return f"<FailureReader {self.name}>"

    @property
    def connection(self) -> Any:
        """The read-only connection, for your own SQL.

        An :class:`sqlite3.Connection` for a file; for a URL, a psycopg
        ``Connection`` (autocommit, a read-only session in UTC).
        """
        return self._core.db.raw

    def close(self) -> None:
        """Close the connection. Idempotent."""
        self._core.close()

    def __enter__(self) -> FailureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def query(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        page_size: int = 500,
    ) -> Iterator[RetrievalFailureRecord]:
        """Iterate over matching failures, newest first (or oldest first).

        ``since`` is inclusive, ``until`` exclusive (see :data:`TimeBound`);
        ``failure_type`` and ``strategy`` take one value or several;
        ``limit`` caps how many records come out. Records carry their ``id``
        and ``created_at`` and hold the values as stored (``failure_type`` is a
        :class:`RetrievalFailureType` when it is one of the four known values).

        ``created_at`` is UTC text ``YYYY-MM-DD HH:MM:SS[.fff[fff]]`` as
        stored in SQLite; from PostgreSQL in the same form, to the server's
        microsecond: no fraction for a whole second, three digits for whole
        milliseconds, six otherwise.

        Lazy: rows are fetched ``page_size`` at a time, each page by its own
        short statement, so memory stays bounded and no read transaction is
        held between pages. Rows committed meanwhile may or may not appear.
        Argument errors raise at the call; each page blocks on the database
        and may raise :exc:`DatabaseSetupError` if it becomes unreadable.
        """
        pager = self._core.pager(
            _query_plan(
                since,
                until,
                failure_type,
                strategy,
                conversation_id,
                limit,
                oldest_first,
                page_size,
            )
        )
        return self._pages(pager)

    def _pages(self, pager: Pager) -> Iterator[RetrievalFailureRecord]:
        while (page := self._core.next_page(pager)) is not None:
            yield from page

    def _rows(self, filters: Filters, page_size: int = 2000) -> Iterator[tuple[Any, ...]]:
        """The rows ``filters`` match, oldest first, as rows of ``_readsql.SELECT``
        (values as stored, no records built: the export's fast path). Lazy and
        paged as :meth:`query`, with bigger pages; each page blocks."""
        check_count("page_size", page_size, minimum=1)
        return self._row_pages(self._core.pager(_QueryPlan(filters, None, True, page_size)))

    def _row_pages(self, pager: Pager) -> Iterator[tuple[Any, ...]]:
        while (rows := self._core.next_rows(pager)) is not None:
            yield from rows

    def count(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
    ) -> int:
        """How many failures match the filters (arguments as for :meth:`query`).

        Blocks on the database. Raises :exc:`TypeError`/:exc:`ValueError` for
        an argument, :exc:`DatabaseSetupError` if the database became unreadable.
        """
        return self._core.count(_filters(since, until, failure_type, strategy, conversation_id))

    def follow(
        self,
        *,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        backlog: int = 10,
        poll_interval: float = 1.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> Iterator[RetrievalFailureRecord]:
        """Yield matching failures as they are committed, like ``tail -f``; never ends.

        First yields the last ``backlog`` matching failures (oldest first),
        then polls every ``poll_interval`` seconds (with ``sleep``; at most a
        day between polls) for rows with a larger ``id``, oldest first. Blocks
        in ``sleep`` and on the database; stop by breaking out of the loop (or with
        KeyboardInterrupt). Argument errors raise at the call.
        """
        plan = _follow_plan(failure_type, strategy, conversation_id, backlog, poll_interval)
        return self._follow(self._core.follower(plan), plan.poll_interval, sleep)

    def _follow(
        self, follower: Follower, nap: float, sleep: Callable[[float], object]
    ) -> Iterator[RetrievalFailureRecord]:
        while True:
            batch = self._core.poll(follower)
            yield from batch
            if not batch:
                sleep(nap)

    def summary(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        thresholds: Iterable[float] | None = None,
        top_queries: int = 10,
        max_buckets: int = 48,
    ) -> FailureSummary:
        """Summarise the failures in a time range: see :class:`FailureSummary`.

        Filters as for :meth:`query`. ``thresholds``: candidate confidence
        thresholds for the what-if of every strategy (default: four steps
        below each strategy's usual threshold). ``top_queries``: how many of
        the most repeated failing queries to keep. ``max_buckets``: the most
        time buckets in the timeline.

        Blocks while it runs a handful of aggregate statements in one read
        transaction (a consistent snapshot); memory stays bounded by the number
        of distinct strategies, latencies and buckets, not by the row count.
        On SQLite, a statement's sort may start helper threads (one per other
        core, at most three) that end with it.
        On PostgreSQL: a repeatable-read, read-only transaction; the
        grouping happens in the server, except that the repeated queries take
        memory per distinct non-ASCII failing query text (the server cannot
        fold their case as Python does). Raises
        :exc:`DatabaseSetupError` if the database becomes unreadable.
        """
        return self._core.summary(
            _summary_plan(
                _filters(since, until, failure_type, strategy, conversation_id),
                thresholds,
                top_queries,
                max_buckets,
            )
        )


# --------------------------------------------------------------------------- plans and core


@dataclass(frozen=True, slots=True)
class _QueryPlan:
    """A validated :meth:`FailureReader.query`."""

    filters: Filters
    limit: int | None
    oldest_first: bool
    page_size: int


@dataclass(frozen=True, slots=True)
class _FollowPlan:
    """A validated :meth:`FailureReader.follow`; ``poll_interval`` capped."""

    filters: Filters
    backlog: int
    poll_interval: float


@dataclass(frozen=True, slots=True)
class _SummaryPlan:
    """A validated :meth:`FailureReader.summary`."""

    filters: Filters
    candidates: tuple[float, ...] | None
    top_queries: int
    max_buckets: int


def _filters(
    since: TimeBound | None,
    until: TimeBound | None,
    failure_type: Choice | None,
    strategy: Choice | None,
    conversation_id: int | None,
) -> Filters:
    """The filter arguments validated (one ``now`` for both time bounds)."""
    return Filters.build(
        since=since,
        until=until,
        failure_type=failure_type,
        strategy=strategy,
        conversation_id=conversation_id,
    )


def _query_plan(
    since: TimeBound | None,
    until: TimeBound | None,
    failure_type: Choice | None,
    strategy: Choice | None,
    conversation_id: int | None,
    limit: int | None,
    oldest_first: bool,
    page_size: int,
) -> _QueryPlan:
    filters = _filters(since, until, failure_type, strategy, conversation_id)
    check_count("limit", limit, optional=True)
    check_count("page_size", page_size, minimum=1)
    return _QueryPlan(filters, limit, oldest_first, page_size)


def _follow_plan(
    failure_type: Choice | None,
    strategy: Choice | None,
    conversation_id: int | None,
    backlog: int,
    poll_interval: float,
) -> _FollowPlan:
    filters = _filters(None, None, failure_type, strategy, conversation_id)
    check_count("backlog", backlog)
    return _FollowPlan(filters, backlog, _poll_interval(poll_interval))


def _summary_plan(
    filters: Filters, thresholds: Iterable[float] | None, top_queries: int, max_buckets: int
) -> _SummaryPlan:
    candidates = _candidates(thresholds)
    check_count("top_queries", top_queries)
    check_count("max_buckets", max_buckets, minimum=1)
    return _SummaryPlan(filters, candidates, top_queries, max_buckets)


class _ReadCore:
    """The blocking half both readers share: one connection, and each read as a
    method taking its plan. Every method but the constructors of pagers and
    followers blocks on the database; use from one thread at a time."""

    __slots__ = ("db", "name")

    def __init__(self, db: ReadConnection) -> None:
        self.db = db
        self.name = db.name

    def pager(self, plan: _QueryPlan) -> Pager:
        """The state of one query; pure."""
        return Pager(plan.filters, plan.limit, plan.oldest_first, plan.page_size, self.db.dialect)

    def next_page(self, pager: Pager) -> list[RetrievalFailureRecord] | None:
        """The query's next page, ``None`` at its end."""
        return pager.next_page(self.db.execute)

    def next_rows(self, pager: Pager) -> list[Any] | None:
        """The query's next page as rows, ``None`` at its end."""
        return pager.next_rows(self.db.execute)

    def follower(self, plan: _FollowPlan) -> Follower:
        """The state of one follow; pure."""
        return Follower(plan.filters, plan.backlog, self.db.dialect)

    def poll(self, follower: Follower) -> list[RetrievalFailureRecord]:
        """The rows committed since the follower's last poll."""
        return follower.poll(self.db.execute)

    def count(self, filters: Filters) -> int:
        """How many rows match ``filters``."""
        conditions, params = filters.where()
        rows = self.db.execute(f"SELECT count(*) FROM {TABLE}{where_clause(conditions)}", params)
        return int(rows[0][0])

    def summary(self, plan: _SummaryPlan) -> FailureSummary:
        """The summary, in one read transaction."""
        with self.db.snapshot():
            return summarise(
                self.db.execute,
                plan.filters,
                candidates=plan.candidates,
                top_queries=plan.top_queries,
                max_buckets=plan.max_buckets,
                now=time.time(),
                dialect=self.db.dialect,
            )

    def close(self) -> None:
        """Close the connection. Idempotent."""
        self.db.close()


#: The longest a follower sleeps between two polls, whatever it was asked for:
#: ``time.sleep`` cannot take much more than this on every platform.
_MAX_POLL_INTERVAL: Final = 86400.0


def _poll_interval(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"poll_interval must be a number of seconds, not {type(value).__name__}")
    if not 0 < value < math.inf:
        raise ValueError(f"poll_interval must be positive and finite, got {value!r}")
    return min(float(value), _MAX_POLL_INTERVAL)


def _candidates(thresholds: Iterable[float] | None) -> tuple[float, ...] | None:
    """The what-if thresholds as floats; TypeError/ValueError naming ``thresholds``."""
    if thresholds is None:
        return None
    if isinstance(thresholds, str | bytes) or not isinstance(thresholds, Iterable):
        raise TypeError(
            f"thresholds must be an iterable of numbers, not {type(thresholds).__name__}"
        )
    values: list[float] = []
    for value in thresholds:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"thresholds must hold numbers, not {type(value).__name__}")
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"thresholds must be finite numbers, got {value!r}")
        values.append(number)
    return tuple(values)


#: Where ``created_at`` is in a row of ``SELECT``.
_CREATED_AT: Final = FIELDS.index("created_at")


class Pager:
    """Keyset pagination over ``(created_at, id)``: the state of one :meth:`query`."""

    def __init__(
        self,
        filters: Filters,
        limit: int | None,
        oldest_first: bool,
        page_size: int,
        dialect: Dialect,
    ) -> None:
        self._dialect = dialect
        self._filters = filters
        self._remaining = limit
        self._oldest_first = oldest_first
        self._page_size = page_size
        self._after: tuple[str, int] | None = None
        self._done = False

    def next_page(self, execute: Execute) -> list[RetrievalFailureRecord] | None:
        """Fetch the next page; ``None`` once there is nothing more. Blocks."""
        rows = self.next_rows(execute)
        return None if rows is None else [row_to_record(row) for row in rows]

    def next_rows(self, execute: Execute) -> list[Any] | None:
        """The next page as rows of :data:`SELECT` (values as the connection
        gives them, no records built); ``None`` once there is nothing more. Blocks."""
        if self._done or self._remaining == 0:
            return None
        conditions, params = self._filters.where(index_on_time=self._dialect.index_hints)
        if self._after is not None:
            conditions.append(f"(created_at, id) {'>' if self._oldest_first else '<'} (?, ?)")
            params.extend(self._after)
        direction = "ASC" if self._oldest_first else "DESC"
        size = self._page_size
        if self._remaining is not None:
            size = min(size, self._remaining)
        rows = execute(
            f"{SELECT}{where_clause(conditions)} "
            f"ORDER BY created_at {direction}, id {direction} LIMIT ?",
            [*params, sql_limit(size)],
        )
        if len(rows) < size:
            self._done = True
        if not rows:
            return None
        if self._remaining is not None:
            self._remaining -= len(rows)
        last = rows[-1]
        self._after = (last[_CREATED_AT], last[0])
        return rows


class Follower:
    """The state of one :meth:`FailureReader.follow`: the last ``id`` seen.

    Where ids do not commit in order (PostgreSQL: a fleet's writers take ids
    from one sequence in concurrent transactions, and the one holding the
    lower ids may commit last), a poll also remembers the ids it skipped over
    and asks for them again for :data:`LATE_COMMIT_GRACE` seconds, so that a
    row committed late is still followed (after the rows that overtook it).
    An id that never appears (a rolled-back insert) is forgotten then.
    """

    def __init__(self, filters: Filters, backlog: int, dialect: Dialect) -> None:
        self._filters = filters
        self._backlog = backlog
        self._last_id: int | None = None
        self._track_gaps = not dialect.ids_commit_in_order
        #: Skipped ids that may still commit, each with when to stop asking.
        self._pending: dict[int, float] = {}

    def poll(self, execute: Execute, page_size: int = 500) -> list[RetrievalFailureRecord]:
        """Matching rows committed since the last poll, oldest first (the first
        poll returns the backlog). Blocks."""
        conditions, params = self._filters.where()
        if self._last_id is None:
            self._last_id = int(execute(f"SELECT coalesce(max(id), 0) FROM {TABLE}", ())[0][0])
            if self._track_gaps:
                recent = execute(
                    f"SELECT id FROM {TABLE} WHERE id > ? ORDER BY id",
                    [self._last_id - _MAX_PENDING],
                )
                self._remember_gaps(
                    max(self._last_id - _MAX_PENDING, 0), {int(r[0]) for r in recent}
                )
            if not self._backlog:
                return []
            conditions.append("id <= ?")
            rows = execute(
                f"{SELECT}{where_clause(conditions)} ORDER BY id DESC LIMIT ?",
                [*params, self._last_id, sql_limit(self._backlog)],
            )
            rows.reverse()
            return [row_to_record(row) for row in rows]
        if not self._track_gaps:
            conditions.append("id > ?")
            rows = execute(
                f"{SELECT}{where_clause(conditions)} ORDER BY id LIMIT ?",
                [*params, self._last_id, page_size],
            )
            if rows:
                self._last_id = int(rows[-1][0])
            return [row_to_record(row) for row in rows]
        return self._poll_with_gaps(execute, conditions, params, page_size)

    def _poll_with_gaps(
        self, execute: Execute, conditions: list[str], params: list[object], page_size: int
    ) -> list[RetrievalFailureRecord]:
        assert self._last_id is not None
        now = time.monotonic()
        self._pending = {i: until for i, until in self._pending.items() if until > now}
        pending = sorted(self._pending)
        # Every row past the last id or pending, matching the filters or not
        # (a row that does not match is no gap), with whether it matches.
        wanted = f"CASE WHEN {' AND '.join(conditions)} THEN 1 ELSE 0 END" if conditions else "1"
        where = "id > ?" + (f" OR id IN ({', '.join('?' for _ in pending)})" if pending else "")
        rows = execute(
            f"SELECT {', '.join(FIELDS)}, {wanted} FROM {TABLE} WHERE {where} ORDER BY id LIMIT ?",
            [*params, self._last_id, *pending, page_size + len(pending)],
        )
        seen = {int(row[0]) for row in rows}
        for found in seen & self._pending.keys():
            del self._pending[found]
        new = [i for i in seen if i > self._last_id]
        if new:
            self._remember_gaps(self._last_id, seen)
            self._last_id = max(new)
        return [row_to_record(row[:-1]) for row in rows if row[-1]]

    def _remember_gaps(self, after: int, seen: set[int]) -> None:
        """Remember the ids in ``(after, max(seen)]`` not in ``seen`` (the newest
        :data:`_MAX_PENDING` of all remembered)."""
        if not seen:
            return
        until = time.monotonic() + LATE_COMMIT_GRACE
        top = max(seen)
        for missing in range(max(after, top - _MAX_PENDING) + 1, top):
            if missing not in seen:
                self._pending[missing] = until
        if len(self._pending) > _MAX_PENDING:
            for old in sorted(self._pending)[: len(self._pending) - _MAX_PENDING]:
                del self._pending[old]


#: How long (seconds) a follower keeps asking for an id it skipped over.
LATE_COMMIT_GRACE: Final = 30.0
#: The most skipped ids a follower asks for again.
_MAX_PENDING: Final = 1000


# --------------------------------------------------------------------------- async twin


class AsyncFailureReader:
    """The trio twin of :class:`FailureReader`: the same reads, awaited.

    Open it with :func:`open_failure_reader`. Every method runs the
    synchronous reader on a worker thread, one call at a time, so the trio
    thread never blocks on the database.

    Cancellation *abandons* the call: the awaiting task gets
    :exc:`trio.Cancelled` at once, the SQL statement running on the thread is
    interrupted (SQLite: at its next check, every few thousand instructions;
    PostgreSQL: by a cancel request sent to the server from another thread),
    and the reader's next call waits until that thread has stopped. A
    cancelled read has no effect on the database.
    """

    def __init__(self, reader: FailureReader) -> None:
        # The twins share one core: the sync reader's, whose connection this
        # one uses from its worker thread (and closes in aclose()).
        self._core = reader._core
        self._thread = SerialThread()
        # The progress handler interrupts the statement under way when the call
        # that is running it (numbered) was cancelled; a call cancelled while
        # still waiting for its turn interrupts nothing.
        self._calls = 0
        self._running: int | None = None
        self._abort: int | None = None
        self._closed = False
        # Held while a PostgreSQL cancel request is sent, so that it is sent
        # only while the abandoned call is still the one running.
        self._state = threading.Lock()
        self._core.db.watch(self._should_abort)

    @property
    def name(self) -> str:
        """The database's display name (its path or URL without a password, quoted)."""
        return self._core.name

    def __repr__(self) -> str:
        return f"<AsyncFailureReader {self.name}>"

    def _should_abort(self) -> int:
        return 1 if self._abort is not None and self._abort == self._running else 0

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise trio.ClosedResourceError("the reader is closed")
        self._calls += 1
        call = self._calls  # so that a cancelled call interrupts only itself

        def job() -> T:
            with self._state:
                self._running = call
            try:
                return fn()
            finally:
                with self._state:
                    self._running = None

        try:
            return await self._thread.run(job)
        except trio.Cancelled:
            self._abort = call
            self._interrupt(call)
            raise

    def _interrupt(self, call: int) -> None:
        """Stop ``call``'s statement on the server, from another thread (a cancel
        request blocks on a connection of its own)."""
        db = self._core.db
        if not db.needs_cancel:
            return  # the progress handler sees self._abort

        def cancel() -> None:
            with self._state:
                if self._running == call:
                    db.cancel()

        trio.lowlevel.start_thread_soon(cancel, lambda _outcome: None)

    def query(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        limit: int | None = None,
        oldest_first: bool = False,
        page_size: int = 500,
    ) -> AsyncIterator[RetrievalFailureRecord]:
        """``async for`` over matching failures; arguments as :meth:`FailureReader.query`.

        Each page is fetched on a worker thread (see the class for what
        cancellation does); argument errors raise at the call.
        """
        core = self._core
        pager = core.pager(
            _query_plan(
                since,
                until,
                failure_type,
                strategy,
                conversation_id,
                limit,
                oldest_first,
                page_size,
            )
        )

        async def fetch() -> list[RetrievalFailureRecord] | None:
            return await self._run(lambda: core.next_page(pager))

        return _PagedIterator(fetch, None)

    def follow(
        self,
        *,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        backlog: int = 10,
        poll_interval: float = 1.0,
    ) -> AsyncIterator[RetrievalFailureRecord]:
        """``async for`` over failures as they are committed; never ends.

        Like :meth:`FailureReader.follow`, sleeping with :func:`trio.sleep`
        (so trio's mock clock drives it in tests). Each poll runs on a worker
        thread; cancellation as described on the class.
        """
        core = self._core
        plan = _follow_plan(failure_type, strategy, conversation_id, backlog, poll_interval)
        follower = core.follower(plan)

        async def fetch() -> list[RetrievalFailureRecord] | None:
            return await self._run(lambda: core.poll(follower))

        return _PagedIterator(fetch, plan.poll_interval)

    async def count(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
    ) -> int:
        """:meth:`FailureReader.count` on a worker thread (cancellation: see the class).

        Argument errors raise here, on the trio thread."""
        filters = _filters(since, until, failure_type, strategy, conversation_id)
        core = self._core
        return await self._run(lambda: core.count(filters))

    async def summary(
        self,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: FailureTypeChoice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
        thresholds: Iterable[float] | None = None,
        top_queries: int = 10,
        max_buckets: int = 48,
    ) -> FailureSummary:
        """:meth:`FailureReader.summary` on a worker thread (cancellation: see the class).

        Argument errors raise here, on the trio thread."""
        plan = _summary_plan(
            _filters(since, until, failure_type, strategy, conversation_id),
            thresholds,
            top_queries,
            max_buckets,
        )
        core = self._core
        return await self._run(lambda: core.summary(plan))

    async def aclose(self) -> None:
        """Close the connection once no call is running (an abandoned call's thread
        closes it when it finishes). Idempotent; never raises for database errors."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        if self._running is not None:
            self._abort = self._running  # closing: stop the statement under way
            self._interrupt(self._running)
        await self._thread.close(self._core.close)


class _PagedIterator(AsyncIterator[RetrievalFailureRecord]):
    """Yields records from pages fetched on demand; with ``poll_interval``, an
    empty page means "sleep and ask again" instead of "the end"."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[list[RetrievalFailureRecord] | None]],
        poll_interval: float | None,
    ) -> None:
        self._fetch = fetch
        self._poll_interval = poll_interval
        self._buffer: list[RetrievalFailureRecord] = []
        self._position = 0

    async def __anext__(self) -> RetrievalFailureRecord:
        while self._position >= len(self._buffer):
            page = await self._fetch()
            if page:
                self._buffer, self._position = page, 0
            elif self._poll_interval is None:
                raise StopAsyncIteration
            else:
                await trio.sleep(self._poll_interval)
        record = self._buffer[self._position]
        self._position += 1
        return record  # noqa: ASYNC910  # rows already fetched are served without a wait


class _OpenFailureReader(AbstractAsyncContextManager[AsyncFailureReader]):
    def __init__(self, database: Database) -> None:
        self._database = database
        self._reader: AsyncFailureReader | None = None

    async def __aenter__(self) -> AsyncFailureReader:
        database = self._database
        sync_reader = await trio.to_thread.run_sync(lambda: FailureReader(database))
        self._reader = AsyncFailureReader(sync_reader)
        return self._reader

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._reader is not None
        with trio.CancelScope(shield=True):
            await self._reader.aclose()


def open_failure_reader(database: Database) -> AbstractAsyncContextManager[AsyncFailureReader]:
    """Open an :class:`AsyncFailureReader` for the ``async with`` block::

        async with open_failure_reader("failures.db") as reader:
            summary = await reader.summary(since=timedelta(hours=24))
            async for record in reader.query(failure_type="timeout", limit=50):
                ...

    Entering opens the database read-only on a worker thread, not
    cancellable: opening a file is quick; a PostgreSQL server that does not
    answer is waited for up to 10 s (``connect_timeout`` in the URL sets
    another bound). It raises :exc:`DatabaseSetupError` or
    :exc:`IncompatibleSchemaError` as :class:`FailureReader` does. Leaving
    closes it, shielded from cancellation, without waiting for an abandoned call.
    """
    return _OpenFailureReader(database)
