"""The logger's front: what the recall path calls, holding the send end of a memory channel.

``log()`` is the send channel's ``send_nowait`` of ``(record, time.time())``
plus a count; ``send()`` waits through the channel when the buffer is full;
``log_threadsafe()`` hands records over from other threads; ``flush()``,
``aclose()`` and ``statistics()`` control and observe. Everything else (the
batching, the store, the drain) is the writer's, in :mod:`._writer`.

A record counts as accepted when it enters the channel (a parked ``send()``'s
record when the writer moves it into the buffer), and records leave the channel
in that order, so "every record accepted before this point" is simply "the
first *n* accepted", and the
writer's running count of settled (written or failed) records tells when they
are done: that is all ``flush()`` needs, and ``queued`` is counted, not looked
for.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from typing import Final, final

import trio

from ._conninfo import check_url
from ._database import (
    Database,
    PartitionInterval,
    QueuedRecord,
    StoreKind,
    Synchronous,
    check_database,
    database_label,
    describe_database,
    is_postgres_url,
    store_kind,
)
from ._record import RetrievalFailureRecord
from ._redaction import Redactor
from ._settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_CAPACITY,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_PARTITION_INTERVAL,
    DEFAULT_PURGE_EVERY,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_RETRY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
    LoggerSettings,
)
from ._statistics import LoggerStatistics
from ._writer import BatchWriter

__all__ = ["DROP_WARNING_QUIET", "WRONG_THREAD", "LoggerStatistics", "RetrievalFailureLogger"]

log = logging.getLogger("trio_failurelog")

#: A drop is announced when none happened for this long (seconds); the rest are counted.
DROP_WARNING_QUIET: Final = 60.0
#: send() yields to the scheduler at least once every this many calls.
_SEND_YIELD_EVERY: Final = 128
_NEVER: Final = sys.maxsize
_now = time.time  # created_at of a record is the wall-clock time of its log()
# The quiet spell between drop warnings is timed on the OS's monotonic clock:
# trio.current_time() costs four times as much, and a drop is on the recall
# path too. (Tests of the warning put trio's mock clock here.)
_drop_clock = time.monotonic
_thread_id = threading.get_ident
# Module globals, not attributes of trio: one lookup less on the recall path.
_WouldBlock = trio.WouldBlock
_Closed = trio.ClosedResourceError

_NOT_TRIO: Final = (
    "{method} was called outside a trio run (under asyncio?): trio-failurelog needs trio; "
    "anyio programs work on anyio's trio backend (anyio.run(main, backend='trio'))"
)


def _in_other_event_loop() -> bool:
    """Whether this thread runs an event loop that is not trio's (asyncio's, say)."""
    if trio.lowlevel.in_trio_run():
        return False
    asyncio = sys.modules.get("asyncio")  # not imported: no asyncio loop can be running
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _require_trio(method: str) -> None:
    """Raise one clear line, rather than trio's internals failing, outside a trio task."""
    if not trio.lowlevel.in_trio_task():
        raise RuntimeError(_NOT_TRIO.format(method=method))


#: What log(), send(), flush() and aclose() raise from another thread than the
#: logger's (the fake of trio_failurelog.testing raises it too).
WRONG_THREAD: Final = (
    "{method}() was called from another thread or trio run than the logger's; "
    "use log_threadsafe() from other threads"
)


@final
class RetrievalFailureLogger:
    """Records retrieval failures without slowing the recall path.

    Most programs use :func:`open_failure_logger`. A program that keeps
    long-lived services in a nursery of its own can run the logger there::

        logger = RetrievalFailureLogger("failures.db")
        await nursery.start(logger.run)
        ...
        await logger.aclose()

    Construction only validates the settings (raising :exc:`TypeError` or
    :exc:`ValueError` naming the argument) and opens the memory channel; the
    database is opened by :meth:`run`. Records logged before :meth:`run`
    starts wait in the channel. The logger belongs to the thread that builds
    it (or later runs it): ``log()``, ``send()``, ``flush()`` and ``aclose()``
    from another thread raise :exc:`RuntimeError`; use :meth:`log_threadsafe`
    there. :meth:`statistics` may be called from any thread.

    Args:
      database: Path of the SQLite file (created, owner-only, when missing),
        ``":memory:"``, or a ``postgresql://`` URL (needs the ``postgres`` extra;
        ``postgres://`` and SQLAlchemy's ``postgresql+psycopg://`` are taken too).
        Another URL, or a libpq ``key=value`` string, raises :exc:`ValueError`.
      capacity: How many records the buffer (the memory channel) holds. When
        it is full, ``log()`` drops and ``send()`` waits.
      batch_size: The most records written in one transaction.
      flush_interval: The longest a record waits in a partial batch (seconds).
      retention_days: Rows older than this are deleted once when the writer
        starts and every ``purge_every`` batches after (while a backlog is
        left, after every batch), in short transactions between the writer's
        batches: on SQLite each holds the lock about 20 ms and begins 30 ms
        or more after the last, so that other writers of the file get in.
        ``None`` keeps all rows.
      purge_every: Batches between two retention purges.
      drain_timeout: On close or cancellation, how long (seconds) the writer
        may go on writing what is queued and closing the database; what is left
        then counts as failed, and a close not finished by then completes on
        its worker thread. ``0`` writes nothing more; ``math.inf`` waits for
        everything (a second Ctrl-C still stops it).
      busy_timeout: How long (seconds) one database call waits on a lock held
        by another connection before the writer backs off and retries.
      retry_timeout: How long (seconds) a busy or locked database is retried
        before the batch counts as failed. Opening an SQLite file waits as
        long (at least 5 s) for a lock another connection holds, then raises
        :exc:`DatabaseSetupError`.
      synchronous: SQLite's ``PRAGMA synchronous``. ``"NORMAL"`` (with WAL)
        survives a crash of the process; ``"FULL"`` also a power loss.
      connect_timeout: How long (seconds) opening waits for a PostgreSQL server.
      partition_interval: PostgreSQL only: ``"day"``, ``"week"`` or
        ``"month"`` creates a missing table partitioned by ``created_at`` in
        partitions of that interval (an existing table must already be
        partitioned by ``created_at``: ``DatabaseSetupError`` otherwise), makes
        partitions ahead of time and one for a record that finds none, and
        purges by dropping whole partitions. ``None`` (the default) creates
        the plain table; a table partitioned by the user or pg_partman is
        used, and purged by partition, either way. See docs/fleets.md.
      redact: A function from ``str`` to ``str`` applied to ``query_text`` and
        ``error_context`` on the writer's thread just before each batch is
        stored (never in ``log()``); ``query_len`` stays the original's. A
        redactor that raises or returns a non-``str`` costs only that text,
        stored as :data:`REDACTION_FAILED`, counted in ``redaction_failed`` and
        warned about at most once a minute. See :func:`mask_emails_and_digits`.
    """

    # Slots, not a __dict__: attribute reads on the recall path stay cheap.
    __slots__ = (
        "_accepted",
        "_arrivals",
        "_closed",
        "_database",
        "_dropped_closed",
        "_dropped_full",
        "_last_drop",
        "_owner",
        "_ran",
        "_send_channel",
        "_send_nowait",
        "_sends_unyielded",
        "_settings",
        "_thread_dropped_closed",
        "_thread_dropped_full",
        "_thread_lock",
        "_thread_pending",
        "_token",
        "_wake_at",
        "_writer",
    )

    def __init__(
        self,
        database: Database,
        *,
        capacity: int = DEFAULT_CAPACITY,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        retention_days: float | None = DEFAULT_RETENTION_DAYS,
        purge_every: int = DEFAULT_PURGE_EVERY,
        drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
        synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        partition_interval: PartitionInterval | None = DEFAULT_PARTITION_INTERVAL,
        redact: Redactor | None = None,
    ) -> None:
        if not isinstance(database, str) and not hasattr(database, "__fspath__"):
            raise TypeError(f"database must be a str or os.PathLike, not {type(database).__name__}")
        if _in_other_event_loop():
            raise RuntimeError(_NOT_TRIO.format(method="RetrievalFailureLogger()"))
        check_database(database)  # ValueError: another kind of URL, a libpq key=value string
        if is_postgres_url(database):
            check_url(str(database))  # ValueError: an "@" libpq would misread
        elif partition_interval is not None:
            raise ValueError("partition_interval applies to a PostgreSQL database only")
        self._database = database
        self._settings = settings = LoggerSettings(
            capacity=capacity,
            batch_size=batch_size,
            flush_interval=flush_interval,
            retention_days=retention_days,
            purge_every=purge_every,
            drain_timeout=drain_timeout,
            busy_timeout=busy_timeout,
            retry_timeout=retry_timeout,
            synchronous=synchronous,
            connect_timeout=connect_timeout,
            partition_interval=partition_interval,
            redact=redact,
        )
        # The buffer: a memory channel of ``capacity`` records.
        send_channel, receive_channel = trio.open_memory_channel[QueuedRecord](settings.capacity)
        self._send_channel = send_channel
        self._send_nowait = send_channel.send_nowait
        self._closed = False
        self._ran = False
        self._owner = _thread_id()  # log() must come from this thread

        self._accepted = 0
        self._dropped_full = 0
        self._dropped_closed = 0
        self._sends_unyielded = 0
        self._last_drop = -math.inf

        # The writer parks here while it gathers a batch, and log() wakes it
        # once ``_accepted`` reaches ``_wake_at``: when the batch would be
        # full, not at every record.
        self._arrivals = trio.lowlevel.ParkingLot()
        self._wake_at = _NEVER
        self._writer = BatchWriter(
            receive_channel,
            database,
            settings,
            wait_for_records=self._wait_for_records,
            on_close=self._begin_close,
            on_finished=self._report_closed,
            on_moved=self._count_moved,
        )

        # log_threadsafe(): bounded hand-over to the trio thread.
        self._token: trio.lowlevel.TrioToken | None = None
        with contextlib.suppress(RuntimeError):  # constructed outside trio.run
            self._token = trio.lowlevel.current_trio_token()
        self._thread_lock = threading.Lock()
        self._thread_pending = 0
        self._thread_dropped_full = 0
        self._thread_dropped_closed = 0

    # ------------------------------------------------------------------ recall path

    @trio.lowlevel.enable_ki_protection
    def log(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record`` for writing, or drop it; never blocks, never awaits.

        O(1): the send channel's ``send_nowait`` of the record (already cut to
        its bounds when it was built) and the time of this call, which becomes
        ``created_at`` unless the record sets its own. All formatting happens
        later, on the writer's thread. Returns ``True`` if the record was
        accepted, ``False`` if it was dropped because the buffer is full or the
        logger is closed; drops are counted in :meth:`statistics`, and the
        first one after a quiet spell is logged as a warning.

        Raises :exc:`TypeError` when ``record`` is not a
        :class:`RetrievalFailureRecord` and :exc:`RuntimeError` when called
        from another thread than the logger's (use :meth:`log_threadsafe`):
        programming errors. No run-time condition makes it raise. Atomic under
        KeyboardInterrupt: a record is queued and counted, or neither.
        """
        # The accepted path is the product: it is written out in full here.
        if record.__class__ is not RetrievalFailureRecord and not isinstance(
            record, RetrievalFailureRecord
        ):
            raise TypeError(f"log() takes a RetrievalFailureRecord, not {type(record).__name__}")
        if _thread_id() != self._owner:
            raise RuntimeError(WRONG_THREAD.format(method="log"))
        try:
            self._send_nowait((record, _now()))
        except _WouldBlock:
            # _refuse_full(), written out: dropping is on the recall path too.
            self._dropped_full += 1
            now = _drop_clock()
            if now - self._last_drop >= DROP_WARNING_QUIET:
                self._warn_drop(f"the buffer is full (capacity {self._settings.capacity})")
            self._last_drop = now
            return False
        except _Closed:
            self._refuse_closed()
            return False
        self._accepted = accepted = self._accepted + 1
        if accepted >= self._wake_at:
            self._wake_writer()
        return True

    @trio.lowlevel.enable_ki_protection
    async def send(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record`` like :meth:`log`, but wait for room instead of dropping.

        Returns ``True`` once the record is accepted, ``False`` (counted in
        ``dropped_closed``) if the logger is or becomes closed. Raises
        :exc:`TypeError` and :exc:`RuntimeError` as :meth:`log` does.

        When the buffer is full it waits in the memory channel's own
        ``send()``. A cancel point always; a schedule point when it waits, and
        otherwise once every 128 calls: a full checkpoint per record (what
        ``MemorySendChannel.send`` does) measured about as costly as writing
        the record (see the docs' Performance page), and this still keeps a
        producer that never waits from holding the event loop for long.
        Cancellation is atomic: if cancelled, the record was not queued.
        """
        if not isinstance(record, RetrievalFailureRecord):
            raise TypeError(f"send() takes a RetrievalFailureRecord, not {type(record).__name__}")
        if _thread_id() != self._owner:
            raise RuntimeError(WRONG_THREAD.format(method="send"))
        item = (record, _now())
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except RuntimeError:
            _require_trio("send()")  # says what is wrong, if it is that
            raise
        try:
            self._send_nowait(item)
        except _WouldBlock:
            return await self._send_when_there_is_room(item)
        except _Closed:
            self._refuse_closed()
            return False  # noqa: ASYNC910  # a schedule point every 128 calls (see above)
        self._accepted = accepted = self._accepted + 1
        if accepted >= self._wake_at:
            self._wake_writer()
        self._sends_unyielded += 1
        if self._sends_unyielded >= _SEND_YIELD_EVERY:
            self._sends_unyielded = 0
            await trio.lowlevel.cancel_shielded_checkpoint()
        return True

    async def _send_when_there_is_room(self, item: QueuedRecord) -> bool:
        # Parks in the channel's send() (the buffer is full: send_nowait just
        # said so, and nothing ran since). The writer's receive_nowait() moves
        # the record into the buffer when it makes room, and counts it then,
        # through _count_moved(), before this task resumes.
        try:
            await self._send_channel.send(item)
        except _Closed:
            self._refuse_closed()
            return False  # noqa: ASYNC910  # the channel's send() parked: a checkpoint
        self._sends_unyielded = 0
        return True

    @trio.lowlevel.enable_ki_protection
    def _count_moved(self, count: int) -> None:
        """The writer moved ``count`` records of parked ``send()`` calls into the buffer."""
        self._accepted += count

    def log_threadsafe(self, record: RetrievalFailureRecord) -> bool:
        """Like :meth:`log`, from any thread; never blocks.

        The record is handed to the logger's trio thread, which then queues it
        as :meth:`log` would. Returns ``True`` if it was handed over, ``False``
        if it was dropped at once: when ``capacity`` records are already on
        their way (``dropped_full``), or the logger is closed or its trio run
        has ended or not begun (``dropped_closed``). A record handed over can
        still be dropped when it arrives, if the buffer is full or the logger
        closed by then; that is counted too. ``created_at`` is the time of this call. Raises
        :exc:`TypeError` only when ``record`` is not a record.
        """
        if not isinstance(record, RetrievalFailureRecord):
            raise TypeError(
                f"log_threadsafe() takes a RetrievalFailureRecord, not {type(record).__name__}"
            )
        stamp = _now()
        reserved = handed = False
        try:
            with self._thread_lock:
                token = self._token
                if token is None or self._closed:  # known closed: it would be dropped
                    self._thread_dropped_closed += 1
                    return False
                if self._thread_pending >= self._settings.capacity:
                    self._thread_dropped_full += 1
                    return False
                # Marked before counted: this may be the main thread of a
                # program whose trio run is elsewhere, where nothing shields
                # it from KeyboardInterrupt. Interrupted anywhere from here on,
                # the place is given back below rather than kept for good: the
                # count may come out one low for a moment, never stuck high.
                reserved = True
                self._thread_pending += 1
            token.run_sync_soon(self._take_from_thread, record, stamp)
            handed = True
        except trio.RunFinishedError:
            with self._thread_lock:
                self._thread_dropped_closed += 1
            return False
        finally:
            if reserved and not handed:
                with self._thread_lock:
                    self._thread_pending -= 1
        return True

    @trio.lowlevel.enable_ki_protection
    def _take_from_thread(self, record: RetrievalFailureRecord, stamp: float) -> None:
        # Runs on the trio thread as a run_sync_soon callback: it must not raise.
        with self._thread_lock:
            self._thread_pending -= 1
        try:
            self._send_nowait((record, stamp))
        except _WouldBlock:
            self._refuse_full()
            return
        except _Closed:
            self._refuse_closed()
            return
        self._accepted = accepted = self._accepted + 1
        if accepted >= self._wake_at:
            self._wake_writer()

    def _refuse_full(self) -> None:
        self._dropped_full += 1
        self._note_drop(f"the buffer is full (capacity {self._settings.capacity})")

    def _refuse_closed(self) -> None:
        self._dropped_closed += 1
        self._note_drop("the logger is closed")

    def _note_drop(self, reason: str) -> None:
        now = _drop_clock()
        if now - self._last_drop >= DROP_WARNING_QUIET:
            self._warn_drop(reason)
        self._last_drop = now

    def _warn_drop(self, reason: str) -> None:
        log.warning(
            "dropping retrieval-failure records: %s; further drops are "
            "counted in statistics() and not logged until %.0f s pass without one",
            reason,
            DROP_WARNING_QUIET,
        )

    # ------------------------------------------------------------------ the writer's wake-ups

    async def _wait_for_records(self, count: int) -> None:
        """Park (the writer) until ``count`` more records are accepted, or a flush or close."""
        self._wake_at = self._accepted + count
        try:
            await self._arrivals.park()
        finally:
            self._wake_at = _NEVER

    def _wake_writer(self) -> None:
        self._wake_at = _NEVER
        self._arrivals.unpark_all()

    # ------------------------------------------------------------------ control

    # task_status is handed to the writer's run(), which calls started().
    async def run(  # noqa: ASYNC128
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open the database and write records until the logger is closed.

        Meant for ``await nursery.start(logger.run)``: it signals started once
        the database is open, so setup errors (:exc:`DatabaseSetupError`,
        :exc:`IncompatibleSchemaError`) raise from ``nursery.start`` itself.
        Runs until :meth:`aclose` and the drain are done. Never raises for
        storage errors at run time. Cancellation closes the logger: the writer
        then drains what is queued, shielded, for at most ``drain_timeout``
        seconds, closes the database and re-raises. Can be called only once.
        """
        _require_trio("run()")
        if self._ran:
            raise RuntimeError("RetrievalFailureLogger.run() can be called only once")
        self._ran = True
        self._owner = _thread_id()
        with self._thread_lock:
            self._token = trio.lowlevel.current_trio_token()
        await self._writer.run(task_status=task_status)

    async def flush(self) -> None:
        """Wait until every record accepted before this call is written or failed.

        Makes the writer write its partial batch now instead of at the end of
        ``flush_interval``. Blocks until then (bounded by ``drain_timeout`` once
        the logger is closing). Never raises for storage errors: failed records
        are counted in :meth:`statistics`. Raises :exc:`RuntimeError` from
        another thread. Cancellation is safe: the records stay queued and are
        written as usual.
        """
        if _thread_id() != self._owner:
            raise RuntimeError(WRONG_THREAD.format(method="flush"))
        _require_trio("flush()")
        target = self._accepted
        writer = self._writer
        await trio.lowlevel.checkpoint_if_cancelled()
        if writer.settled >= target:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        writer.request_flush(target)
        self._wake_writer()  # stop gathering: write what there is
        await writer.wait_settled(target)

    async def aclose(self) -> None:
        """Stop accepting records, write what is queued, close the database.

        Closes the send channel, then blocks until the writer has finished: at
        most ``drain_timeout`` seconds for draining and closing the database
        (records still queued then count as failed). Idempotent. Never raises
        for storage errors. Raises :exc:`RuntimeError` from another thread. If
        cancelled, the logger is still closed to new records and the writer
        still finishes its bounded drain in its own nursery.
        """
        if _thread_id() != self._owner:
            raise RuntimeError(WRONG_THREAD.format(method="aclose"))
        _require_trio("aclose()")
        self._begin_close()
        writer = self._writer
        if not writer.started:
            writer.fail_unstarted()  # run() never began: nobody will write what is queued
        await writer.finished.wait()

    @trio.lowlevel.enable_ki_protection
    def _begin_close(self) -> None:
        """Close the send channel (once) and start the writer's drain."""
        if self._closed:
            return
        self._closed = True
        self._send_channel.close()  # refuses every send() parked in it
        self._writer.begin_drain()
        self._wake_writer()  # to drain what is queued, without gathering more

    def _abort(self) -> None:
        """End the drain now: a second Ctrl-C while closing means "stop"."""
        self._begin_close()
        self._writer.abort()

    def _report_closed(self) -> None:
        stats = self.statistics()
        dropped = stats.dropped_full + stats.dropped_closed
        if dropped or stats.failed:
            log.warning(
                "failure logger for %s closed: %d accepted, %d written, %d failed, "
                "%d dropped (buffer full: %d, closed: %d); last error: %s",
                self.database_name,
                stats.accepted,
                stats.written,
                stats.failed,
                dropped,
                stats.dropped_full,
                stats.dropped_closed,
                stats.last_error,
            )
        else:
            log.debug("failure logger for %s closed: %d written", self.database_name, stats.written)

    # ------------------------------------------------------------------ observing

    @property
    def store_kind(self) -> StoreKind:
        """``"sqlite"`` or ``"postgresql"``: which store the database argument selects."""
        return store_kind(self._database)

    @property
    def database_name(self) -> str:
        """The database as messages name it (an SQLite path, or a URL without its password)."""
        return describe_database(self._database)

    @property
    def database_label(self) -> str:
        """The database unquoted, as a label (an SQLite path, or a URL without its
        password): what :attr:`database_name` quotes. Never blocks."""
        return database_label(self._database)

    def statistics(self) -> LoggerStatistics:
        """Return a :class:`LoggerStatistics` snapshot. Never blocks; any thread.

        ``queued`` is counted (accepted less settled), not looked for, so it is
        exact even while a record is handed from the channel to the writer.
        """
        writer = self._writer
        # Settled counts first: read from another thread, queued then never
        # comes out negative (accepted only grows).
        written = writer.written
        failed = writer.failed
        with self._thread_lock:
            thread_full = self._thread_dropped_full
            thread_closed = self._thread_dropped_closed
        accepted = self._accepted
        return LoggerStatistics(
            accepted=accepted,
            dropped_full=self._dropped_full + thread_full,
            dropped_closed=self._dropped_closed + thread_closed,
            written=written,
            failed=failed,
            queued=accepted - written - failed,
            capacity=self._settings.capacity,
            batches=writer.batches,
            retries=writer.retries,
            purged=writer.purged,
            redaction_failed=writer.redaction_failed,
            last_error=writer.last_error,
            closed=self._closed,
        )
