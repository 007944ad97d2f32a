"""Testing your own code that logs retrieval failures.

Two ways, both usable with pytest-trio's ``autojump_clock`` (see the docs'
Frameworks page):

* :class:`MemoryFailureLogger`: the logger's interface (``log``, ``send``,
  ``log_threadsafe``, ``flush``, ``aclose``, ``statistics``, ``async with``)
  keeping what it is given in memory, in :attr:`~MemoryFailureLogger.records`.
  No database, no thread: for unit tests that assert on what was logged.
* The pytest plugin (installed with the package, in
  ``trio_failurelog.pytest_plugin``): the ``failure_logger`` fixture, a real
  :class:`~trio_failurelog.RetrievalFailureLogger` on a temporary SQLite file,
  and ``memory_failure_logger``, a :class:`MemoryFailureLogger`.

A complete example test (run by the project's suite as written)::

    import trio
    from trio_failurelog import RetrievalFailureRecord
    from trio_failurelog.testing import FailureLog, MemoryFailureLogger

    async def recall(query: str, failures: FailureLog) -> list[str]:
        t0 = trio.current_time()
        hits: list[str] = []  # the search itself, left out
        if not hits:
            failures.log(RetrievalFailureRecord(
                "no_hit", "semantic", query,
                latency_ms=(trio.current_time() - t0) * 1000,
            ))
        return hits

    async def test_a_miss_is_logged(autojump_clock: trio.abc.Clock) -> None:
        async with MemoryFailureLogger() as failures:
            assert await recall("where is my cat", failures) == []
        assert [r.query_text for r in failures.records] == ["where is my cat"]
        assert failures.statistics().written == 1

Code under test takes the logger as :class:`FailureLog` (a
:class:`~typing.Protocol` both loggers satisfy), so that a type checker lets
either be passed.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Protocol, final

import trio

from ._logger import WRONG_THREAD
from ._record import RetrievalFailureRecord
from ._settings import DEFAULT_CAPACITY
from ._statistics import LoggerStatistics

__all__ = ["FailureLog", "MemoryFailureLogger"]


class FailureLog(Protocol):
    """What code that logs failures needs of a logger; both loggers have it."""

    def log(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record``, or drop it; never blocks."""
        ...

    async def send(self, record: RetrievalFailureRecord) -> bool:
        """Queue ``record``, waiting for room."""
        ...

    def log_threadsafe(self, record: RetrievalFailureRecord) -> bool:
        """Like ``log()``, from any thread."""
        ...

    async def flush(self) -> None:
        """Wait until what was accepted is written or failed."""
        ...

    def statistics(self) -> LoggerStatistics:
        """A snapshot of the counters."""
        ...


@final
class MemoryFailureLogger:
    """A logger that keeps what it is given in memory, behind the same interface.

    Every accepted record is "written" at once, into :attr:`records`, in the
    order accepted; :meth:`statistics` counts as the real logger does
    (``accepted == written`` while open; ``dropped_closed`` once closed).
    ``capacity`` bounds :attr:`records`: past it, ``log()`` drops and counts
    ``dropped_full``, as a full buffer would, and ``send()`` waits until
    :meth:`clear` makes room. Nothing blocks except ``send()`` waiting for
    room; nothing raises at run time. ``log()`` is for the thread that made
    the logger, as the real logger's is (another thread raises
    :exc:`RuntimeError`), ``log_threadsafe()`` for any thread. ``async with``
    returns the logger and closes it when the block is left.
    """

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int):
            raise TypeError(f"capacity must be an int, not {type(capacity).__name__}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self._capacity = capacity
        # log() and send() must come from this thread, as the real logger's must:
        # a test passing with the fake must not raise in production.
        self._owner = threading.get_ident()
        #: What was accepted, in order.
        self.records: list[RetrievalFailureRecord] = []
        self._lock = threading.Lock()
        self._closed = False
        self._accepted = 0
        self._dropped_full = 0
        self._dropped_closed = 0
        self._room = trio.lowlevel.ParkingLot()

    def _take(self, record: RetrievalFailureRecord, method: str) -> bool:
        if not isinstance(record, RetrievalFailureRecord):
            raise TypeError(
                f"{method}() takes a RetrievalFailureRecord, not {type(record).__name__}"
            )
        with self._lock:
            if self._closed:
                self._dropped_closed += 1
                return False
            if len(self.records) >= self._capacity:
                self._dropped_full += 1
                return False
            self.records.append(record)
            self._accepted += 1
            return True

    def log(self, record: RetrievalFailureRecord) -> bool:
        """Keep ``record``; ``False`` (counted) when full or closed. Never blocks.

        Raises :exc:`TypeError` when ``record`` is not a record, and
        :exc:`RuntimeError` when called from another thread than the one that
        made the logger (use :meth:`log_threadsafe`), as the real logger does.
        """
        if threading.get_ident() != self._owner:
            raise RuntimeError(WRONG_THREAD.format(method="log"))
        return self._take(record, "log")

    def log_threadsafe(self, record: RetrievalFailureRecord) -> bool:
        """:meth:`log`, from any thread. Never blocks."""
        return self._take(record, "log_threadsafe")

    async def send(self, record: RetrievalFailureRecord) -> bool:
        """Keep ``record``, waiting while :attr:`records` is at ``capacity``.

        Returns ``False`` if the logger is or becomes closed. A checkpoint;
        cancellation while waiting keeps nothing.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        while True:
            with self._lock:
                full = not self._closed and len(self.records) >= self._capacity
            if not full:
                break
            await self._room.park()
        taken = self._take(record, "send")
        await trio.lowlevel.cancel_shielded_checkpoint()
        return taken

    def clear(self) -> list[RetrievalFailureRecord]:
        """Return the kept records and forget them (making room). Never blocks."""
        with self._lock:
            records, self.records = self.records, []
        self._room.unpark_all()
        return records

    async def flush(self) -> None:
        """Every accepted record is already kept: a checkpoint only."""
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Refuse further records (``dropped_closed``). Idempotent; a checkpoint."""
        with self._lock:
            self._closed = True
        self._room.unpark_all()
        await trio.lowlevel.checkpoint()

    def statistics(self) -> LoggerStatistics:
        """A snapshot, as the real logger's ``statistics()`` gives. Never blocks; any thread."""
        with self._lock:
            return LoggerStatistics(
                accepted=self._accepted,
                dropped_full=self._dropped_full,
                dropped_closed=self._dropped_closed,
                written=self._accepted,
                failed=0,
                queued=0,
                capacity=self._capacity,
                batches=0,
                retries=0,
                purged=0,
                redaction_failed=0,
                last_error=None,
                closed=self._closed,
            )

    async def __aenter__(self) -> MemoryFailureLogger:
        await trio.lowlevel.checkpoint()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with trio.CancelScope(shield=True):
            await self.aclose()
