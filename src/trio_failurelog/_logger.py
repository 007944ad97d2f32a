"""The logger: a bounded buffer on the recall path, one writer task behind it.

``log()`` appends ``(record, time.time())`` to a bounded buffer and returns. One
writer task takes what is waiting, gathers a batch until it is full or
``flush_interval`` has passed since its first record, and hands the batch to
:class:`~trio_failurelog._store.SQLiteStore` on a worker thread. Records leave
the buffer in the order they were accepted, so "every record accepted before
this point" is simply "the first *n* accepted", and the writer's running count
of settled (written or failed) records tells when they are done: that is all
``flush()`` needs.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import functools
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Final, TypeVar

import trio

from ._record import RetrievalFailureRecord
from ._storage import (
    Database,
    QueuedRecord,
    Store,
    StoreKind,
    StoreOptions,
    Synchronous,
    describe_database,
    open_store,
    store_kind,
)
from ._threads import SerialThread

__all__ = ["LoggerStatistics", "RetrievalFailureLogger", "open_failure_logger"]

log = logging.getLogger("trio_failurelog")

T = TypeVar("T")

#: A drop is announced when none happened for this long (seconds); the rest are counted.
DROP_WARNING_QUIET: Final = 60.0
#: Storage failures are warned about at most once per this many seconds.
FAILURE_WARNING_INTERVAL: Final = 60.0
#: Rows deleted per transaction by the retention purge.
PURGE_CHUNK: Final = 1000
# Backoff between retries of a busy/locked database: doubles from first to max.
_RETRY_FIRST_DELAY: Final = 0.01
_RETRY_MAX_DELAY: Final = 1.0
_SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")
_NEVER: Final = sys.maxsize
_now = time.time  # created_at of a record is the wall-clock time of its log()
#: send() yields to the scheduler at least once every this many calls.
_SEND_YIELD_EVERY: Final = 128


@dataclass(frozen=True, slots=True)
class LoggerStatistics:
    """A snapshot of a logger's counters, from :meth:`RetrievalFailureLogger.statistics`.

    Whenever no record is being handed over (between two awaits of the calling
    task, say), ``accepted == written + failed + queued``.

    Attributes:
      accepted: Records taken by ``log()``, ``send()`` or ``log_threadsafe()``.
      dropped_full: Records refused because the buffer was full.
      dropped_closed: Records refused because the logger was closed (or its
        trio run had ended, for ``log_threadsafe``).
      written: Records committed to the database.
      failed: Accepted records that will never be written: refused by the
        database, lost to a persistent storage error, or still queued when
        ``drain_timeout`` ran out.
      queued: Accepted records not yet written or failed: in the buffer, or in
        the batch being written.
      capacity: The buffer's size.
      batches: Batches the writer has handed to the database.
      retries: Times a batch or purge was retried because the database was
        busy or locked.
      purged: Rows the retention purge has deleted.
      last_error: The most recent storage error, as text, or ``None``.
      closed: Whether the logger has stopped accepting records.
    """

    accepted: int
    dropped_full: int
    dropped_closed: int
    written: int
    failed: int
    queued: int
    capacity: int
    batches: int
    retries: int
    purged: int
    last_error: str | None
    closed: bool


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _seconds(name: str, value: object, *, allow_zero: bool, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if math.isinf(seconds) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {value!r}")
    return seconds


def _clock() -> float:
    """trio's clock (so the mock clock drives warnings in tests), outside a run the OS's."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


class RetrievalFailureLogger:
    """Records retrieval failures to SQLite without slowing the recall path.

    Most programs use :func:`open_failure_logger`. A program that keeps
    long-lived services in a nursery of its own can run the logger there::

        logger = RetrievalFailureLogger("failures.db")
        await nursery.start(logger.run)
        ...
        await logger.aclose()

    Construction only validates the settings (raising :exc:`TypeError` or
    :exc:`ValueError` naming the argument) and creates the buffer; the database
    is opened by :meth:`run`. Records logged before :meth:`run` starts wait in
    the buffer.

    Args:
      database: Path of the SQLite file (created, owner-only, when missing), or
        ``":memory:"``.
      capacity: How many records the buffer holds. When it is full, ``log()``
        drops and ``send()`` waits.
      batch_size: The most records written in one transaction.
      flush_interval: The longest a record waits in a partial batch (seconds).
      retention_days: Rows older than this are deleted once when the writer
        starts and every ``purge_every`` batches after; ``None`` keeps all rows.
      purge_every: Batches between two retention purges.
      drain_timeout: On close or cancellation, how long (seconds) the writer
        may go on writing what is queued; what is left then counts as failed.
      busy_timeout: How long (seconds) one SQLite call waits on a lock held by
        another connection before the writer backs off and retries.
      retry_timeout: How long (seconds) a busy or locked database is retried
        before the batch counts as failed.
      synchronous: SQLite's ``PRAGMA synchronous``. ``"NORMAL"`` (with WAL)
        survives a crash of the process; ``"FULL"`` also a power loss.
    """

    # Slots, not a __dict__: with this many attributes a dict stops sharing its
    # keys, and every attribute read on the recall path gets slower.
    __slots__ = (
        "_accepted",
        "_append",
        "_arrivals",
        "_batch",
        "_batch_size",
        "_batches",
        "_batches_since_purge",
        "_buffer",
        "_busy_timeout",
        "_call_scope",
        "_capacity",
        "_closing",
        "_database",
        "_drain_deadline",
        "_drain_scope",
        "_drain_timeout",
        "_dropped_closed",
        "_dropped_full",
        "_failed",
        "_failed_unreported",
        "_finished",
        "_flush_interval",
        "_flush_target",
        "_last_drop",
        "_last_error",
        "_next_failure_warning",
        "_purge_every",
        "_purged",
        "_ran",
        "_retention_days",
        "_retries",
        "_retry_timeout",
        "_room_until",
        "_run_scope",
        "_sends_unyielded",
        "_settled_lot",
        "_space",
        "_state",
        "_store",
        "_synchronous",
        "_thread",
        "_thread_dropped_closed",
        "_thread_dropped_full",
        "_thread_lock",
        "_thread_pending",
        "_token",
        "_wake_at",
        "_written",
    )

    def __init__(
        self,
        database: Database,
        *,
        capacity: int = 8192,
        batch_size: int = 512,
        flush_interval: float = 0.5,
        retention_days: float | None = 90,
        purge_every: int = 500,
        drain_timeout: float = 5.0,
        busy_timeout: float = 0.1,
        retry_timeout: float = 30.0,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        if not isinstance(database, str) and not hasattr(database, "__fspath__"):
            raise TypeError(f"database must be a str or os.PathLike, not {type(database).__name__}")
        self._database = database
        self._capacity = _positive_int("capacity", capacity)
        self._batch_size = _positive_int("batch_size", batch_size)
        self._flush_interval = _seconds("flush_interval", flush_interval, allow_zero=False)
        self._retention_days = (
            None
            if retention_days is None
            else _seconds("retention_days", retention_days, allow_zero=False)
        )
        self._purge_every = _positive_int("purge_every", purge_every)
        self._drain_timeout = _seconds(
            "drain_timeout", drain_timeout, allow_zero=True, allow_inf=True
        )
        self._busy_timeout = _seconds("busy_timeout", busy_timeout, allow_zero=True)
        self._retry_timeout = _seconds("retry_timeout", retry_timeout, allow_zero=True)
        if synchronous not in _SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {_SYNCHRONOUS_MODES}, got {synchronous!r}"
            )
        self._synchronous = synchronous

        # The bounded buffer. It plays the part of a trio memory channel, but a
        # channel's send_nowait() alone costs more than all of log()'s own work
        # (see the README's Performance section), and the writer must not park
        # inside its receive() anyway (see _arrivals). Bound and closing are ours.
        self._buffer: collections.deque[QueuedRecord] = collections.deque()
        self._append = self._buffer.append
        self._state = _State.NEW
        self._closing = False
        self._finished = trio.Event()
        # Cancel scope of the writer's main loop; on close its deadline becomes
        # the drain deadline.
        self._run_scope = trio.CancelScope()
        self._drain_scope: trio.CancelScope | None = None
        self._drain_deadline = math.inf
        self._ran = False
        # The partial batch lives on the instance so that a cancelled writer's
        # shutdown drain still finds it.
        self._batch: list[QueuedRecord] = []
        self._call_scope: trio.CancelScope | None = None  # the store call under way
        self._flush_target = 0
        self._space = trio.lowlevel.ParkingLot()  # send() waiting for room
        self._sends_unyielded = 0
        # The writer parks here, and is woken once ``_accepted`` reaches
        # ``_wake_at``: when its batch would be full, not at every record. (With
        # a memory channel it would park in receive(), and a record handed
        # straight to it would be in neither buffer nor batch for a while,
        # invisible to statistics().)
        self._arrivals = trio.lowlevel.ParkingLot()
        self._wake_at = _NEVER
        # Full and closed in one comparison: ``_accepted`` may grow up to
        # ``_room_until``, which is the records taken out so far plus the
        # capacity, or -1 once closed.
        self._room_until = self._capacity
        self._settled_lot = trio.lowlevel.ParkingLot()  # flush() waiting for the writer
        self._store: Store | None = None
        self._thread = SerialThread()
        self._batches_since_purge = 0

        self._accepted = 0
        self._dropped_full = 0
        self._dropped_closed = 0
        self._written = 0
        self._failed = 0
        self._batches = 0
        self._retries = 0
        self._purged = 0
        self._last_error: str | None = None

        # Warnings: one per quiet spell for drops, one per interval for failures.
        self._last_drop = -math.inf
        self._next_failure_warning = -math.inf
        self._failed_unreported = 0

        # log_threadsafe(): bounded hand-over to the trio thread.
        self._token: trio.lowlevel.TrioToken | None = None
        with contextlib.suppress(RuntimeError):  # constructed outside trio.run
            self._token = trio.lowlevel.current_trio_token()
        self._thread_lock = threading.Lock()
        self._thread_pending = 0
        self._thread_dropped_full = 0
        self._thread_dropped_closed = 0

    # ------------------------------------------------------------------ recall path

    def log(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record`` for writing, or drop it; never blocks, never awaits.

        O(1): the record (already cut to its bounds when it was built) and the
        time of this call, which becomes ``created_at``, go on the buffer; all
        formatting happens later, on the writer's thread. Returns ``True`` if
        the record was accepted, ``False`` if it was dropped because the buffer
        is full or the logger is closed; drops are counted in :meth:`statistics`, and the first one
        after a quiet spell is logged as a warning.

        Must be called from the trio thread the logger runs in (use
        :meth:`log_threadsafe` elsewhere). Raises :exc:`TypeError` only when
        ``record`` is not a :class:`RetrievalFailureRecord`, a programming
        error; no run-time condition makes it raise.
        """
        # The accepted path is the product: it is written out in full here,
        # with the state it needs kept in as few attributes as possible.
        if type(record) is not RetrievalFailureRecord and not isinstance(
            record, RetrievalFailureRecord
        ):
            raise TypeError(f"log() takes a RetrievalFailureRecord, not {type(record).__name__}")
        accepted = self._accepted
        if accepted >= self._room_until:  # full or closed, from our own counters
            self._refuse()
            return False
        self._append((record, _now()))
        self._accepted = accepted = accepted + 1
        if accepted >= self._wake_at:
            self._wake_writer()
        return True

    def _offer(self, record: RetrievalFailureRecord, stamp: float) -> bool:
        """:meth:`log` with a given time stamp, for ``send()`` and thread hand-overs."""
        accepted = self._accepted
        if accepted >= self._room_until:
            self._refuse()
            return False
        self._append((record, stamp))
        self._accepted = accepted = accepted + 1
        if accepted >= self._wake_at:
            self._wake_writer()
        return True

    def _refuse(self) -> None:
        if self._closing:
            self._dropped_closed += 1
            self._note_drop("the logger is closed")
        else:
            self._dropped_full += 1
            self._note_drop("the buffer is full")

    def _wake_writer(self) -> None:
        self._wake_at = _NEVER
        self._arrivals.unpark_all()

    async def send(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record`` like :meth:`log`, but wait for room instead of dropping.

        Returns ``True`` once the record is accepted, ``False`` (counted in
        ``dropped_closed``) if the logger is or becomes closed. Raises
        :exc:`TypeError` when ``record`` is not a record.

        A cancel point always; a schedule point when it waits for room, and
        otherwise once every 128 calls: a full trio checkpoint per record would
        cost more than writing the record, and this still keeps a producer
        that never waits from holding the event loop for long. Cancellation is
        atomic: if cancelled, the record was not queued.
        """
        if not isinstance(record, RetrievalFailureRecord):
            raise TypeError(f"send() takes a RetrievalFailureRecord, not {type(record).__name__}")
        stamp = _now()
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._accepted >= self._room_until and not self._closing:
            while self._accepted >= self._room_until and not self._closing:
                await self._space.park()  # the writer unparks us whenever it takes records
            self._sends_unyielded = 0
        elif self._sends_unyielded >= _SEND_YIELD_EVERY:
            await trio.lowlevel.cancel_shielded_checkpoint()
            self._sends_unyielded = 0
        self._sends_unyielded += 1
        return self._offer(record, stamp)

    def log_threadsafe(self, record: RetrievalFailureRecord) -> None:
        """Like :meth:`log`, from any thread; never blocks.

        The record is handed to the logger's trio thread; at most ``capacity``
        records can be on their way at once, and further ones are dropped
        (``dropped_full``). After the trio run has ended, records are dropped
        as ``dropped_closed``. ``created_at`` is the time of this call. Raises
        :exc:`TypeError` only when ``record`` is not a record.
        """
        if not isinstance(record, RetrievalFailureRecord):
            raise TypeError(
                f"log_threadsafe() takes a RetrievalFailureRecord, not {type(record).__name__}"
            )
        stamp = _now()
        with self._thread_lock:
            if self._token is None:
                self._thread_dropped_closed += 1
                return
            if self._thread_pending >= self._capacity:
                self._thread_dropped_full += 1
                return
            self._thread_pending += 1
        try:
            self._token.run_sync_soon(self._take_from_thread, record, stamp)
        except trio.RunFinishedError:
            with self._thread_lock:
                self._thread_pending -= 1
                self._thread_dropped_closed += 1

    def _take_from_thread(self, record: RetrievalFailureRecord, stamp: float) -> None:
        # Runs on the trio thread as a run_sync_soon callback: it must not raise.
        with self._thread_lock:
            self._thread_pending -= 1
        try:
            self._offer(record, stamp)
        except Exception:  # pragma: no cover - _offer raises nothing; be sure
            log.exception("trio_failurelog: could not queue a record from a thread")

    def _note_drop(self, reason: str) -> None:
        now = _clock()
        if now - self._last_drop >= DROP_WARNING_QUIET:
            log.warning(
                "dropping retrieval-failure records: %s (capacity %d); further drops are "
                "counted in statistics() and not logged until %.0f s pass without one",
                reason,
                self._capacity,
                DROP_WARNING_QUIET,
            )
        self._last_drop = now

    # ------------------------------------------------------------------ control

    async def flush(self) -> None:
        """Wait until every record accepted before this call is written or failed.

        Makes the writer write its partial batch now instead of at the end of
        ``flush_interval``. Blocks until then (bounded by ``drain_timeout`` once
        the logger is closing). Never raises for storage errors: failed records
        are counted in :meth:`statistics`. Cancellation is safe: the records
        stay queued and are written as usual.
        """
        target = self._accepted
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._settled >= target:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        self._flush_target = max(self._flush_target, target)
        self._wake_writer()  # stop gathering: write what there is
        while self._settled < target:
            await self._settled_lot.park()

    async def aclose(self) -> None:
        """Stop accepting records, write what is queued, close the database.

        Blocks until the writer has finished: at most ``drain_timeout`` seconds
        of draining (records still queued then count as failed), plus closing
        the connection. Idempotent. Never raises for storage errors. If
        cancelled, the logger is still closed to new records and the writer
        still finishes its bounded drain in its own nursery.
        """
        self._begin_close()
        if self._state is _State.NEW:
            # run() never started: nobody will write what is queued.
            self._fail_leftovers("the logger was closed before its writer started")
            self._finish()
        await self._finished.wait()

    @property
    def store_kind(self) -> StoreKind:
        """``"sqlite"`` or ``"postgresql"``: which store the database argument selects."""
        return store_kind(self._database)

    @property
    def database_name(self) -> str:
        """The database as messages name it: an SQLite path, or a URL without its password."""
        return describe_database(self._database)

    def statistics(self) -> LoggerStatistics:
        """Return a :class:`LoggerStatistics` snapshot. Never blocks."""
        with self._thread_lock:
            thread_full = self._thread_dropped_full
            thread_closed = self._thread_dropped_closed
        return LoggerStatistics(
            accepted=self._accepted,
            dropped_full=self._dropped_full + thread_full,
            dropped_closed=self._dropped_closed + thread_closed,
            written=self._written,
            failed=self._failed,
            queued=len(self._batch) + len(self._buffer),
            capacity=self._capacity,
            batches=self._batches,
            retries=self._retries,
            purged=self._purged,
            last_error=self._last_error,
            closed=self._closing,
        )

    @property
    def _settled(self) -> int:
        return self._written + self._failed

    def _begin_close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._drain_deadline = _clock() + self._drain_timeout
        self._run_scope.deadline = self._drain_deadline
        if self._call_scope is not None:
            self._call_scope.deadline = self._drain_deadline
        self._room_until = -1
        self._space.unpark_all()  # blocked send()s now see the logger closed
        self._wake_writer()  # to drain what is queued, without gathering more

    def _finish(self) -> None:
        self._state = _State.CLOSED
        self._finished.set()
        self._settled_lot.unpark_all()
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

    # ------------------------------------------------------------------ the writer

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the database and write records until the logger is closed.

        Meant for ``await nursery.start(logger.run)``: it signals started once
        the database is open, so setup errors (:exc:`DatabaseSetupError`,
        :exc:`IncompatibleSchemaError`) raise from ``nursery.start`` itself.
        Runs until :meth:`aclose` and the drain are done. Never raises for
        storage errors at run time. Cancellation closes the logger: the writer
        then drains what is queued, shielded, for at most ``drain_timeout``
        seconds, closes the database and re-raises. Can be called only once.
        """
        if self._ran:
            raise RuntimeError("RetrievalFailureLogger.run() can be called only once")
        self._ran = True
        if self._state is _State.CLOSED:
            # Closed before this task got to run (start_soon, then aclose): the
            # queue was already counted as failed; there is nothing to do.
            task_status.started()
            return
        self._state = _State.RUNNING
        self._token = trio.lowlevel.current_trio_token()
        try:
            self._store = await self._thread.run(
                functools.partial(
                    open_store,
                    self._database,
                    StoreOptions(busy_timeout=self._busy_timeout, synchronous=self._synchronous),
                )
            )
        except BaseException:
            self._begin_close()
            self._fail_leftovers("the database could not be opened")
            self._finish()
            raise
        task_status.started()
        try:
            with self._run_scope:
                if self._retention_days is not None:
                    await self._purge(self._retention_days)
                await self._write_until_closed()
        finally:
            await self._shut_down()

    async def _shut_down(self) -> None:
        # Reached when closed and drained, when the drain deadline passed, or
        # when the surrounding scope was cancelled: close, then drain shielded.
        # Whatever happens in the drain (a KeyboardInterrupt, say), the logger
        # ends closed and accounted for, or aclose() would wait forever.
        self._begin_close()
        try:
            with trio.CancelScope(deadline=self._drain_deadline, shield=True) as drain:
                self._drain_scope = drain
                await self._write_until_closed()
        finally:
            try:
                self._fail_leftovers(
                    f"still queued when drain_timeout ({self._drain_timeout:g} s) ran out"
                )
                if self._store is not None:
                    with trio.CancelScope(shield=True):
                        await self._thread.close(self._store.close)
            finally:
                self._finish()

    def _abort_drain(self) -> None:
        """End the drain now: a second Ctrl-C while closing means "stop"."""
        self._begin_close()
        for scope in (self._run_scope, self._drain_scope, self._call_scope):
            if scope is not None:
                scope.cancel()

    async def _write_until_closed(self) -> None:
        while await self._collect():
            await self._write_batch()
            self._batches_since_purge += 1
            if (
                self._retention_days is not None
                and not self._closing
                and self._batches_since_purge >= self._purge_every
            ):
                await self._purge(self._retention_days)

    async def _collect(self) -> bool:
        """Fill ``self._batch``; return ``False`` once closed with nothing left.

        Waits for a first record, then gathers until the batch is full, or
        ``flush_interval`` has passed, or a flush or close asks for a write now.
        """
        batch = self._batch
        self._take_waiting()
        while not batch:
            if self._closing:
                return False
            await self._wait_for_records(1)
            self._take_waiting()
        with trio.move_on_after(self._flush_interval):
            while not self._must_write_now():
                await self._wait_for_records(self._batch_size - len(batch))
                self._take_waiting()
        self._take_waiting()  # what arrived since the last wake-up, if the deadline woke us
        return True

    def _must_write_now(self) -> bool:
        return (
            len(self._batch) >= self._batch_size
            or self._closing
            or self._flush_target > self._settled
        )

    async def _wait_for_records(self, count: int) -> None:
        """Park until ``count`` more records are accepted, or a flush or close."""
        self._wake_at = self._accepted + count
        try:
            await self._arrivals.park()
        finally:
            self._wake_at = _NEVER

    def _take_waiting(self) -> None:
        """Move what is in the buffer into the batch, up to ``batch_size``."""
        batch = self._batch
        buffer = self._buffer
        take = min(self._batch_size - len(batch), len(buffer))
        if take:
            popleft = buffer.popleft
            batch.extend(popleft() for _ in range(take))
            if self._room_until >= 0:
                self._room_until += take
        if self._space:
            self._space.unpark_all()

    async def _write_batch(self) -> None:
        batch = self._batch
        store = self._store
        assert store is not None
        try:
            outcome = await self._call_with_retries(functools.partial(store.write_batch, batch))
        except trio.Cancelled:
            if self._thread.abandoned:
                # The write may yet commit; we cannot know, so it is not "written".
                self._batch = []
                self._record_failure(
                    len(batch), "write abandoned when drain_timeout ran out; outcome unknown"
                )
            raise  # otherwise the batch stays queued for the shutdown drain
        except Exception as exc:
            self._batch = []
            self._record_failure(len(batch), f"{type(exc).__name__}: {exc}")
        else:
            self._batch = []
            self._written += outcome.written
            if outcome.rejected:
                self._record_failure(
                    len(outcome.rejected),
                    f"record rejected by the database: {outcome.rejected[-1]}",
                )
        self._batches += 1
        if self._settled_lot:
            self._settled_lot.unpark_all()

    async def _purge(self, retention_days: float) -> None:
        store = self._store
        assert store is not None
        self._batches_since_purge = 0
        cutoff = _now() - retention_days * 86400
        try:
            while True:
                deleted = await self._call_with_retries(
                    functools.partial(store.purge_chunk, cutoff, PURGE_CHUNK)
                )
                self._purged += deleted
                if deleted < PURGE_CHUNK or self._closing:
                    break
        except Exception as exc:
            # Nothing accepted is lost: the purge is retried at the next interval.
            self._last_error = f"retention purge failed: {type(exc).__name__}: {exc}"
            log.warning("trio_failurelog: %s", self._last_error)

    async def _call_with_retries(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the store's thread, retrying while the database is busy.

        The thread call is shielded, so that a cancelled writer lets the call in
        progress finish and be counted before the drain begins, but the shield
        carries the drain deadline (set when closing begins, even mid-call): a
        call still running then is abandoned, so the deadline holds even when
        the disk hangs. Backoff sleeps are not shielded.
        """
        delay = _RETRY_FIRST_DELAY
        give_up = _clock() + self._retry_timeout
        while True:
            try:
                with trio.CancelScope(shield=True, deadline=self._drain_deadline) as call:
                    self._call_scope = call
                    try:
                        return await self._thread.run(fn)
                    finally:
                        self._call_scope = None
            except Exception as exc:
                store = self._store
                if store is None or not store.is_transient(exc) or _clock() + delay > give_up:
                    raise
            if call.cancelled_caught:
                # Abandoned at the drain deadline, not busy: let the enclosing
                # scope (same deadline) raise, without counting a retry.
                await trio.lowlevel.checkpoint()
            self._retries += 1
            await trio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)

    def _record_failure(self, count: int, reason: str) -> None:
        self._failed += count
        self._last_error = reason
        self._failed_unreported += count
        now = _clock()
        if now >= self._next_failure_warning:
            log.warning(
                "could not write %d retrieval-failure record(s) to %s: %s "
                "(next warning in %.0f s at the earliest; statistics() counts all)",
                self._failed_unreported,
                self.database_name,
                reason,
                FAILURE_WARNING_INTERVAL,
            )
            self._failed_unreported = 0
            self._next_failure_warning = now + FAILURE_WARNING_INTERVAL

    def _fail_leftovers(self, reason: str) -> None:
        """Count what is still queued as failed (the logger must be closed)."""
        leftovers = len(self._batch) + len(self._buffer)
        self._batch = []
        self._buffer.clear()
        if leftovers:
            self._record_failure(leftovers, reason)


class _OpenFailureLogger(AbstractAsyncContextManager[RetrievalFailureLogger]):
    """What :func:`open_failure_logger` returns; see there."""

    def __init__(self, logger: RetrievalFailureLogger) -> None:
        self._logger = logger
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None

    async def __aenter__(self) -> RetrievalFailureLogger:
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        try:
            await nursery.start(self._logger.run)
        except BaseException as error:
            # The nursery is empty: leave it, and let the setup error come out
            # as itself rather than in an ExceptionGroup.
            await _exit_nursery(manager, pending=error)
            raise
        self._nursery_manager = manager
        return self._logger

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager = self._nursery_manager
        assert manager is not None
        try:
            with trio.CancelScope(shield=True):
                await self._logger.aclose()
        except BaseException as interrupt:  # KeyboardInterrupt again, while draining
            self._logger._abort_drain()
            await _exit_nursery(manager, pending=interrupt)
            raise
        # The writer has finished, so the nursery closes at once.
        await _exit_nursery(manager, pending=exc)


async def _exit_nursery(
    manager: AbstractAsyncContextManager[trio.Nursery], pending: BaseException | None
) -> None:
    """Exit a nursery whose tasks are done without handing it ``pending``.

    ``pending`` is the exception already on its way out of our context
    manager. With strict exception groups the nursery would wrap it, and it
    must come out as itself. A cancellation raised by the exit itself yields to
    it: the enclosing scope delivers its cancellation again at its next
    checkpoint anyway.
    """
    try:
        await manager.__aexit__(None, None, None)
    except BaseException as error:
        if pending is not None and _is_cancellation(error):
            return
        if isinstance(error, BaseExceptionGroup):  # the writer crashed: a bug
            raise _sole_exception(error) from None
        raise


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_is_cancellation(inner) for inner in error.exceptions)
    return isinstance(error, trio.Cancelled)


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    while len(group.exceptions) == 1 and isinstance(group.exceptions[0], BaseExceptionGroup):
        group = group.exceptions[0]
    return group.exceptions[0] if len(group.exceptions) == 1 else group


def open_failure_logger(
    database: Database,
    *,
    capacity: int = 8192,
    batch_size: int = 512,
    flush_interval: float = 0.5,
    retention_days: float | None = 90,
    purge_every: int = 500,
    drain_timeout: float = 5.0,
    busy_timeout: float = 0.1,
    retry_timeout: float = 30.0,
    synchronous: Synchronous = "NORMAL",
) -> AbstractAsyncContextManager[RetrievalFailureLogger]:
    """Open a :class:`RetrievalFailureLogger` whose writer runs for the ``async with`` block.

    ::

        async with open_failure_logger("failures.db") as failures:
            failures.log(RetrievalFailureRecord("no_hit", "semantic", query))

    Entering opens (and creates when missing) the database, its table and
    indexes, turns on WAL, and starts the writer task in a nursery the logger
    owns. It raises :exc:`TypeError`/:exc:`ValueError` for bad arguments and
    :exc:`DatabaseSetupError`/:exc:`IncompatibleSchemaError` when the database
    cannot be used, each as itself, not in an ExceptionGroup.

    Leaving closes the logger and blocks until what is queued is written, for
    at most ``drain_timeout`` seconds (the rest counts as failed and is
    reported in one warning), even when the block is cancelled or raises: the
    drain is shielded. An exception from the block comes out as itself.
    Storage errors never raise here; see :meth:`RetrievalFailureLogger.statistics`.

    The arguments are those of :class:`RetrievalFailureLogger`.
    """
    return _OpenFailureLogger(
        RetrievalFailureLogger(
            database,
            capacity=capacity,
            batch_size=batch_size,
            flush_interval=flush_interval,
            retention_days=retention_days,
            purge_every=purge_every,
            drain_timeout=drain_timeout,
            busy_timeout=busy_timeout,
            retry_timeout=retry_timeout,
            synchronous=synchronous,
        )
    )
