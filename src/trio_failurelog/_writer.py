"""The writer task: receive records, gather batches, write them on a thread, drain on close.

One :class:`BatchWriter` per logger. It owns the receive end of the logger's
memory channel. It parks in ``receive()`` until a first record comes, then
gathers more inside a ``trio.move_on_after(flush_interval)`` until the batch is
full, a flush asks for it, or the logger closes, and hands the batch to the
:class:`~trio_failurelog._storage.Store` through ``trio.to_thread.run_sync``
(by way of :class:`~trio_failurelog._threads.SerialThread`). While gathering it
does not wake per record: the logger's front wakes it once enough records have
arrived to fill the batch or half the buffer. While a batch is being written,
the next one is taken from the channel once the store says its thread only
waits on the database (see :meth:`BatchWriter._take_while_writing`). Busy
databases are retried with backoff; other storage errors fail the batch,
counted and warned about, never raised. Closing the send channel ends it: what
is left is drained, shielded, for at most ``drain_timeout`` seconds, and the
store is closed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar, final

import trio

from ._backends import open_store
from ._database import BatchOutcome, Database, QueuedRecord, describe_database
from ._pacing import ChunkPacer
from ._protocols import Store
from ._redaction import REDACTION_FAILED, Redactor, redact_batch
from ._settings import LoggerSettings
from ._threads import SerialThread

__all__ = ["FAILURE_WARNING_INTERVAL", "PURGE_CHUNK", "BatchWriter", "clock"]

log = logging.getLogger("trio_failurelog")

T = TypeVar("T")

#: Storage failures are warned about at most once per this many seconds.
FAILURE_WARNING_INTERVAL: Final = 60.0
#: Rows deleted per transaction by the retention purge: every chunk where
#: writers do not wait on each other (PostgreSQL), the first one on SQLite,
#: where the next ones are sized to hold the write lock about 20 ms.
PURGE_CHUNK: Final = 1000
#: Chunks one purge round deletes at most: a large backlog is purged a round
#: after each batch, so that writing never waits for all of it.
PURGE_CHUNKS_PER_ROUND: Final = 10
# Backoff between retries of a busy database: doubles from first to max.
_RETRY_FIRST_DELAY: Final = 0.01
_RETRY_MAX_DELAY: Final = 1.0
# 0001-01-01T00:00:00Z: a retention so long that its cutoff falls before this
# purges nothing, and must not overflow the date arithmetic of a store.
_EARLIEST_CUTOFF: Final = -62135596800.0


def clock() -> float:
    """trio's clock (so the mock clock drives deadlines in tests), outside a run the OS's."""
    try:
        return trio.current_time()
    except RuntimeError:
        return time.monotonic()


@final
class BatchWriter:
    """Moves records from the receive channel to the store, in batches.

    Made and driven by :class:`~trio_failurelog.RetrievalFailureLogger`, which
    holds the send channel. ``wait_for_records(n)`` is the front's: it parks
    until ``n`` more records are accepted, or a flush or close wakes it.
    ``on_close`` is the front's too: it closes the send channel and calls
    :meth:`begin_drain`, and the writer calls it when it stops for any reason;
    ``on_finished`` reports the final counts once the writer is done, and
    ``on_moved(n)`` counts records of parked ``send()`` calls that the writer
    moved into the buffer.

    Its bookkeeping is protected from KeyboardInterrupt (``run`` is), so a
    Ctrl-C is delivered to the program's main task, never between taking a
    record and counting it.
    """

    __slots__ = (
        "_aborted",
        "_batch",
        "_batches_since_purge",
        "_call_scope",
        "_close_scope",
        "_database",
        "_drain_deadline",
        "_drain_scope",
        "_draining",
        "_failure_warnings",
        "_flush_target",
        "_name",
        "_on_close",
        "_on_finished",
        "_on_moved",
        "_outgoing",
        "_prefetch_lot",
        "_purge_ended",
        "_purge_pacer",
        "_purge_warnings",
        "_receive",
        "_redaction_warnings",
        "_run_scope",
        "_settings",
        "_settled_lot",
        "_started",
        "_thread",
        "_wait_for_records",
        "_writing",
        "batches",
        "failed",
        "finished",
        "last_error",
        "purged",
        "redaction_failed",
        "retries",
        "store",
        "written",
    )

    def __init__(
        self,
        receive_channel: trio.MemoryReceiveChannel[QueuedRecord],
        database: Database,
        settings: LoggerSettings,
        *,
        wait_for_records: Callable[[int], Awaitable[None]],
        on_close: Callable[[], None],
        on_finished: Callable[[], None],
        on_moved: Callable[[int], None],
    ) -> None:
        self._receive = receive_channel
        self._database = database
        self._name = describe_database(database)
        self._settings = settings
        self._wait_for_records = wait_for_records
        self._on_close = on_close
        self._on_finished = on_finished
        self._on_moved = on_moved
        self._thread = SerialThread()
        #: The open store, once :meth:`run` has opened it.
        self.store: Store | None = None
        # The batch being gathered lives here, so that the shutdown drain finds
        # it; once handed to the store it is _outgoing (kept after a cancelled
        # write, to be sent again as it is), and the next one gathers here.
        self._batch: list[QueuedRecord] = []
        self._outgoing: _Outgoing | None = None
        self._prefetch_lot = trio.lowlevel.ParkingLot()  # _take_while_writing waiting
        self._writing = False  # a write_batch call is under way (retries included)
        self._batches_since_purge = 0
        # How the retention purge sizes its chunks (made once the store is
        # open: it depends on the database), and when its last chunk ended.
        self._purge_pacer: ChunkPacer | None = None
        self._purge_ended = -math.inf
        self._flush_target = 0
        self._settled_lot = trio.lowlevel.ParkingLot()  # flush() waiting
        self._started = False
        #: Set once the writer has stopped and the store is closed (or left closing).
        self.finished = trio.Event()
        # Closing: one deadline for the drain and the store's close. Both scopes
        # exist from the start, so that an abort (a second Ctrl-C) reaches the
        # drain even before it has begun.
        self._draining = False
        self._drain_deadline = math.inf
        self._run_scope = trio.CancelScope()
        self._drain_scope = trio.CancelScope(shield=True)
        self._call_scope: trio.CancelScope | None = None  # the store call under way
        self._close_scope: trio.CancelScope | None = None  # waiting for the store's close
        self._aborted = False

        self.written = 0
        self.failed = 0
        self.batches = 0
        self.retries = 0
        self.purged = 0
        self.last_error: str | None = None
        self.redaction_failed = 0
        self._failure_warnings = _RateLimit(FAILURE_WARNING_INTERVAL)
        self._redaction_warnings = _RateLimit(FAILURE_WARNING_INTERVAL)
        self._purge_warnings = _RateLimit(FAILURE_WARNING_INTERVAL)

    # ------------------------------------------------------------ for the front

    @property
    def settled(self) -> int:
        """Records written or failed so far; records settle in the order accepted."""
        return self.written + self.failed

    @property
    def started(self) -> bool:
        """Whether :meth:`run` has begun."""
        return self._started

    def request_flush(self, target: int) -> None:
        """Make the batch being gathered go now if ``target`` records are not yet settled."""
        self._flush_target = max(self._flush_target, target)

    async def wait_settled(self, target: int) -> None:  # noqa: ASYNC910  # flush() checkpoints
        """Block until ``target`` records are settled or the writer has finished."""
        while self.settled < target and not self.finished.is_set():
            await self._settled_lot.park()

    # ------------------------------------------------------------ the task

    @trio.lowlevel.enable_ki_protection
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store, signal started, write until the channel ends, drain, close.

        Setup errors raise from here, as themselves, before ``started`` is
        signalled. Storage errors at run time never raise. Cancellation closes
        the logger at once and drains, shielded, until the drain deadline.
        """
        if self._started:  # closed before this task got to run: nothing to do
            task_status.started()
            await trio.lowlevel.checkpoint()
            return
        self._started = True
        with self._receive:
            if not await self._open():
                task_status.started()  # closed while opening: nothing to run
                return
            task_status.started()
            try:
                async with trio.open_nursery() as watch:
                    watch.start_soon(self._close_when_cancelled)
                    watch.start_soon(self._take_while_writing)
                    try:
                        with self._run_scope:
                            await self._purge()
                            await self._write_until_closed()
                    finally:
                        watch.cancel_scope.cancel()
            finally:
                # Shielded inside, and bounded by drain_timeout (an abort cuts it short).
                await self._shut_down()  # noqa: ASYNC102

    async def _open(self) -> bool:
        """Open the store on the worker thread; ``False`` if the logger closed meanwhile.

        Bounded by the drain deadline once closing begins (``aclose()`` while a
        slow server is being reached): the open is then abandoned, and what it
        opens is closed on its thread. Raises setup errors, and cancellation,
        after counting what is queued as failed.
        """
        try:
            with trio.CancelScope(deadline=self._drain_deadline) as opening:
                self._call_scope = opening
                try:
                    self.store = await self._thread.run(
                        functools.partial(open_store, self._database, self._settings.store_options),
                        on_abandoned=_close_store,  # cancelled while opening: close what opened
                    )
                finally:
                    self._call_scope = None
        except BaseException:
            self._on_close()
            self._fail_leftovers("the database could not be opened")
            self._finish()
            raise
        if self.store is None:  # opening.cancelled_caught: closed meanwhile
            self._on_close()
            self._fail_leftovers("the logger was closed while its database was being opened")
            self._finish()
            return False
        return True

    @trio.lowlevel.enable_ki_protection
    async def _take_while_writing(self) -> None:
        """Take the next batch from the channel while the store waits on its database.

        Woken by the store (through :meth:`_batch_sent`, from its thread) once
        it has handed the batch over and only waits for the verdict. Taking
        then, rather than when the write returns, lets a producer parked on a
        full buffer refill it while the database works: the records are taken
        (and the producer runs) while the store's thread needs no GIL, and the
        next batch is ready the moment the write returns. Taking at once would
        not do: a producer refilling the buffer holds the GIL that the store's
        thread needs to build and send its batch (measured: a 0.7 ms pause per
        512-record batch of PostgreSQL writes, about a sixth of the time).
        """
        while True:
            await self._prefetch_lot.park()
            # The wake-up comes through the loop's callback queue and may land
            # after the write has returned: the writer may be gathering again
            # then (parked in receive(), say), and a take now would put
            # records before the one it is about to be handed.
            if self._writing:
                self._take_buffered()

    def _batch_sent(self, token: trio.lowlevel.TrioToken) -> None:
        """The store's hook (``sent``), on its thread: wake :meth:`_take_while_writing`."""
        with contextlib.suppress(trio.RunFinishedError):  # the run is over: nothing to take
            token.run_sync_soon(self._prefetch_lot.unpark_all)

    async def _write_until_closed(self) -> None:
        settings = self._settings
        while await self._gather():
            await self._write_batch()
            self._batches_since_purge += 1
            if not self._draining and self._batches_since_purge >= settings.purge_every:
                await self._purge()

    async def _gather(self) -> bool:
        """Fill the batch; return ``False`` once the channel has ended and nothing is left.

        Parks in ``receive()`` for a first record, then gathers inside
        ``move_on_after(flush_interval)``, woken by the front only when enough
        records have arrived, or by a flush or close.
        """
        if self._outgoing is not None:
            return True  # noqa: ASYNC910  # handed to the store before: sent again as it is
        batch = self._batch
        self._take_buffered()
        if not batch:
            try:
                first = await self._receive.receive()
            except trio.EndOfChannel:
                # The last word of a closed channel: nothing to wait for.
                return False  # noqa: ASYNC910
            self._take_first(first)
        # No cancel point when the batch is already due: it is written at once.
        with trio.move_on_after(self._settings.flush_interval):  # noqa: ASYNC912
            while not self._must_write_now():
                await self._wait_for_records(self._records_wanted())
                self._take_buffered()
        self._take_buffered()  # what came since the last wake-up, if the deadline woke us
        return True  # noqa: ASYNC910  # a batch already due goes to the store's thread next

    def _take_first(self, first: QueuedRecord) -> None:
        self._batch.append(first)
        self._take_buffered()

    def _take_buffered(self) -> None:
        """Move what the channel holds into the batch, up to ``batch_size``."""
        self._take(self._settings.batch_size - len(self._batch))

    def _take(self, limit: float) -> None:
        """Move up to ``limit`` records from the channel into the batch.

        Each ``receive_nowait()`` that frees a place while a ``send()`` is parked
        moves that send's record into the buffer: the record is accepted then,
        and is counted then (through ``on_moved``), before its task resumes, so
        that ``accepted`` counts records in the order they enter the channel.
        """
        batch = self._batch
        receive = self._receive
        parked = receive.statistics().tasks_waiting_send
        receive_nowait = receive.receive_nowait
        taken = 0
        try:
            while taken < limit:
                batch.append(receive_nowait())
                taken += 1
        except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
            pass
        if parked:  # one parked send moved per record taken, while any are parked
            self._on_moved(min(taken, parked))

    def _records_wanted(self) -> int:
        """How many more records to wait for: enough to fill the batch, or half the buffer.

        Half the buffer, so that a buffer smaller than a batch is emptied into
        the batch long before it fills and drops records.
        """
        settings = self._settings
        return max(1, min(settings.batch_size - len(self._batch), settings.capacity // 2))

    def _must_write_now(self) -> bool:
        return (
            len(self._batch) >= self._settings.batch_size
            or self._draining
            or self._flush_target > self.settled
        )

    async def _write_batch(self) -> None:  # noqa: ASYNC910  # the store call always awaits
        outgoing = self._outgoing
        if outgoing is None:
            outgoing = self._outgoing = _Outgoing(self._batch)
            self._batch = []  # the next batch gathers here meanwhile
        count = len(outgoing.items)
        store = self.store
        assert store is not None
        sent = functools.partial(self._batch_sent, trio.lowlevel.current_trio_token())
        try:
            self._writing = True
            try:
                outcome = await self._call_with_retries(
                    functools.partial(outgoing.write, store, self._settings.redact, sent)
                )
            finally:
                self._writing = False
        except trio.Cancelled:
            if self._thread.abandoned:
                # The write may yet commit; we cannot know, so it is not "written".
                self._settle()
                self._record_failure(
                    count, "write abandoned when the drain deadline came; outcome unknown"
                )
                self._batch_done()
            raise  # otherwise the batch stays, as it is, for the shutdown drain
        except Exception as exc:
            self._settle()
            self._record_failure(count, f"{type(exc).__name__}: {exc}")
        else:
            self._settle()
            self.written += outcome.written
            if outgoing.reasons:
                self._record_redaction_failures(outgoing.reasons)
            if outcome.rejected:
                self._record_failure(
                    len(outcome.rejected),
                    f"record rejected by the database: {outcome.rejected[-1]}",
                )
        self._batch_done()

    def _settle(self) -> None:
        """The batch handed to the store is done with."""
        self._outgoing = None

    def _batch_done(self) -> None:
        self.batches += 1
        if self._settled_lot:
            self._settled_lot.unpark_all()

    async def _purge(self) -> None:  # noqa: ASYNC910  # ends at once when it fails at once
        retention_days = self._settings.retention_days
        if retention_days is None:
            return  # noqa: ASYNC910  # nothing to do is done at once
        store = self.store
        assert store is not None
        self._batches_since_purge = 0
        cutoff = time.time() - retention_days * 86400
        if cutoff <= _EARLIEST_CUTOFF:
            return  # noqa: ASYNC910  # nothing can be that old
        at_open = not self.batches
        before = self.purged
        try:
            more = await self._purge_round(store, cutoff)
        except Exception as exc:
            # Nothing accepted is lost: the purge is tried again at the next interval.
            if store.is_transient(exc):  # busy: the next round comes after the next batch
                log.debug("trio_failurelog: retention purge put off: %s", exc)
                self._batches_since_purge = self._settings.purge_every - 1
                return  # noqa: ASYNC910  # put off
            self.last_error = f"retention purge failed: {type(exc).__name__}: {exc}"
            due = self._purge_warnings.add(1)
            if due:
                log.warning(
                    "trio_failurelog: %s (%d purge round(s) failed; next warning in %.0f s "
                    "at the earliest)",
                    self.last_error,
                    due,
                    FAILURE_WARNING_INTERVAL,
                )
            return  # noqa: ASYNC910  # the round awaited its store call before raising
        finally:
            # Said once at open (the rows of a file made elsewhere go, by default,
            # after 90 days: a user may not expect that); quietly afterwards.
            if deleted := self.purged - before:
                log.log(
                    logging.INFO if at_open else logging.DEBUG,
                    "trio_failurelog: retention purge deleted %d row(s) older than %g days from %s",
                    deleted,
                    retention_days,
                    self._name,
                )
        if more:  # another round after the next batch
            self._batches_since_purge = self._settings.purge_every - 1

    async def _purge_round(self, store: Store, cutoff: float) -> bool:
        """Up to :data:`PURGE_CHUNKS_PER_ROUND` chunks; whether rows may be left.

        Raises what the store raised (counted by the caller). Cancellation
        ends the round between or during chunks (a chunk's thread call is
        shielded like any store call).
        """
        gap = store.purge_gap
        pacer = self._purge_pacer
        if pacer is None:
            pacer = self._purge_pacer = ChunkPacer(PURGE_CHUNK, by_time=gap > 0, gap=0.0)
        for _ in range(PURGE_CHUNKS_PER_ROUND):
            # SQLite: another process's writer waiting for the lock gets it in
            # the gap; a chunk right after ours would take it back within
            # microseconds (see _pacing.py). Rounds are spaced too: the batch
            # between two rounds holds the lock a moment only.
            wait = self._purge_ended + gap - clock()
            if wait > 0:
                await trio.sleep(wait)
                if self._draining:
                    return False
            limit = pacer.limit
            # No retries: a busy database is purged next round, not waited for.
            deleted, seconds = await self._call_with_retries(
                functools.partial(_timed_purge_chunk, store, cutoff, limit), retry_timeout=0
            )
            self._purge_ended = clock()
            self.purged += deleted
            if deleted < limit or self._draining:
                return False
            pacer.took(seconds)
        return True  # noqa: ASYNC910  # each of the (10) chunks awaited the store's thread

    async def _call_with_retries(
        self, fn: Callable[[], T], retry_timeout: float | None = None
    ) -> T:
        """Run ``fn`` on the store's thread, retrying while the database is busy.

        The thread call is shielded, so that a cancelled writer lets the call in
        progress finish and be counted before the drain begins, but the shield
        carries the drain deadline (set when closing begins, even mid-call): a
        call still running then is abandoned, so the deadline holds even when
        the disk hangs. Backoff sleeps are not shielded.
        """
        store = self.store
        assert store is not None
        delay = _RETRY_FIRST_DELAY
        give_up = clock() + (
            self._settings.retry_timeout if retry_timeout is None else retry_timeout
        )
        while True:
            try:
                with trio.CancelScope(shield=True, deadline=self._drain_deadline) as call:
                    self._call_scope = call
                    try:
                        return await self._thread.run(fn)
                    finally:
                        self._call_scope = None
            except Exception as exc:
                if not store.is_transient(exc) or clock() + delay > give_up:
                    raise
            if call.cancelled_caught:
                # Abandoned at the drain deadline, not busy: let the enclosing
                # scope (same deadline) raise, without counting a retry.
                await trio.lowlevel.checkpoint()
            self.retries += 1
            await trio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_DELAY)

    # ------------------------------------------------------------ closing
    #
    # Everything about closing, in one place. Closing has one deadline, set by
    # begin_drain() (drain_timeout from then) or abort() (now): _set_deadline
    # puts it on every scope of the writer, the run, the drain, the store call
    # under way (retries included, see _call_with_retries) and the wait for the
    # store's close, so that retry and close share it.

    def begin_drain(self) -> None:
        """The send channel is closed: write what is left, within ``drain_timeout``."""
        if self._draining:
            return
        self._draining = True
        self._set_deadline(clock() + self._settings.drain_timeout)

    def abort(self) -> None:
        """Stop now: a second Ctrl-C while closing. What is left counts as failed."""
        self._draining = True
        self._aborted = True
        self._set_deadline(-math.inf)

    def _set_deadline(self, deadline: float) -> None:
        """The one deadline of closing, for every scope of the writer, now and to come."""
        self._drain_deadline = deadline
        for scope in (self._run_scope, self._drain_scope, self._call_scope, self._close_scope):
            if scope is not None:
                scope.deadline = deadline

    @trio.lowlevel.enable_ki_protection
    def fail_unstarted(self) -> None:
        """Closed before :meth:`run` began: nobody will write what is queued."""
        self._started = True
        self._fail_leftovers("the logger was closed before its writer started")
        self._finish()

    @trio.lowlevel.enable_ki_protection
    async def _close_when_cancelled(self) -> None:
        """Close the logger as soon as the writer's task is cancelled from outside.

        A store call is shielded, so that it finishes and is counted before the
        drain begins; the drain deadline it carries is set by closing. Without
        this watcher, a task cancelled from outside would close only after the
        call returned, and a disk that never answers would hold it for ever.
        """
        try:
            await trio.sleep_forever()
        finally:
            self._on_close()

    async def _shut_down(self) -> None:
        # Reached when the channel ended and all is written, when the drain
        # deadline passed, or when the task was cancelled: close the front,
        # drain shielded, close the store within the same deadline. Whatever
        # happens here, the writer ends finished and accounted for, or
        # aclose() would wait forever.
        self._on_close()
        try:
            with self._drain_scope:
                await self._write_until_closed()
        finally:
            try:
                self._fail_leftovers(
                    "aborted while closing"
                    if self._aborted
                    else f"still queued when drain_timeout ({self._settings.drain_timeout:g} s)"
                    " ran out"
                )
                if self.store is not None:
                    # The closer runs on its thread whatever happens; this waits
                    # for it until the drain deadline, or an abort, at most.
                    with trio.CancelScope(shield=True, deadline=self._drain_deadline) as closing:
                        self._close_scope = closing
                        await self._thread.close(functools.partial(_close_store, self.store))
            finally:
                self._finish()

    def _fail_leftovers(self, reason: str) -> None:
        """Count what is unwritten, in the store's hands or the channel, as failed.

        The channel must be closed.
        """
        self._take(math.inf)
        leftovers = len(self._batch)
        self._batch = []
        if self._outgoing is not None:  # handed to the store, not written
            leftovers += len(self._outgoing.items)
            self._outgoing = None
        if leftovers:
            self._record_failure(leftovers, reason)

    def _finish(self) -> None:
        self.finished.set()
        self._settled_lot.unpark_all()
        self._on_finished()

    # ------------------------------------------------------------ accounting

    def _record_failure(self, count: int, reason: str) -> None:
        self.failed += count
        self.last_error = reason
        due = self._failure_warnings.add(count)
        if due:
            log.warning(
                "could not write %d retrieval-failure record(s) to %s: %s "
                "(next warning in %.0f s at the earliest; statistics() counts all)",
                due,
                self._name,
                reason,
                FAILURE_WARNING_INTERVAL,
            )

    def _record_redaction_failures(self, reasons: list[str]) -> None:
        self.redaction_failed += len(reasons)
        due = self._redaction_warnings.add(len(reasons))
        if due:
            log.warning(
                "redact failed for %d retrieval-failure record(s) for %s (%s); their text was "
                "stored as %r (next warning in %.0f s at the earliest; statistics() counts all)",
                due,
                self._name,
                reasons[-1],
                REDACTION_FAILED,
                FAILURE_WARNING_INTERVAL,
            )


@final
class _Outgoing:
    """A batch once handed to the store: every attempt sends the very same list.

    A store may recognise a batch whose COMMIT went unanswered by the list it
    was given (the PostgreSQL store does, to settle it rather than write it
    twice), so retries, the shutdown drain's included, must send the same list,
    and no record may join it. Redaction runs once, at the first attempt, on
    the store's thread; its failures are counted when the batch is written.
    """

    __slots__ = ("items", "reasons", "redacted")

    def __init__(self, items: list[QueuedRecord]) -> None:
        self.items = items
        self.redacted: list[QueuedRecord] | None = None
        self.reasons: list[str] = []

    def write(
        self, store: Store, redact: Redactor | None, sent: Callable[[], object] | None = None
    ) -> BatchOutcome:
        """Redact (the first time) and write; on the store's thread."""
        if redact is None:
            return store.write_batch(self.items, sent=sent)
        if self.redacted is None:
            self.redacted, self.reasons = redact_batch(self.items, redact)
        return store.write_batch(self.redacted, sent=sent)


@final
class _RateLimit:
    """Counts events, and says how many to report at most once per ``interval`` seconds."""

    __slots__ = ("_interval", "_next", "_unreported")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._next = -math.inf
        self._unreported = 0

    def add(self, count: int) -> int:
        """Note ``count`` more; return how many to report now, or 0 to stay quiet."""
        self._unreported += count
        now = clock()
        if now < self._next:
            return 0
        due, self._unreported = self._unreported, 0
        self._next = now + self._interval
        return due


def _close_store(store: Store) -> None:
    store.close()


def _timed_purge_chunk(store: Store, older_than: float, limit: int) -> tuple[int, float]:
    """On the store's thread: one purge chunk, and the seconds it took there
    (the OS's clock: the time the lock was held, which a mock clock does not see)."""
    started = time.monotonic()
    deleted = store.purge_chunk(older_than, limit)
    return deleted, time.monotonic() - started
