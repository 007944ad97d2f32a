"""Running blocking calls on a worker thread, one at a time, cancellably.

Under a clock that is not the real one (trio's ``MockClock``, pytest-trio's
``autojump_clock``), virtual time does not pass while the library waits on its
worker thread: see :func:`holding_virtual_time`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final, TypeVar

import outcome  # trio's own dependency: what start_thread_soon delivers
import trio
import trio.testing

__all__ = ["HOLD_LIMIT", "SerialThread", "holding_virtual_time", "run_inline"]

T = TypeVar("T")

log = logging.getLogger("trio_failurelog")

#: Under a virtual clock, how long (real seconds of an otherwise idle run) one
#: wait on the worker thread holds virtual time still at most. A thread that
#: takes longer (a hung disk) lets virtual time go on, so that drain_timeout
#: and the other deadlines still hold in a test that simulates one.
HOLD_LIMIT: Final = 2.0


class _TimeHold:
    """One per trio run whose clock is virtual: keeps autojump off while the library waits.

    The mock clock's autojump advances time whenever the run is idle, and a
    task waiting for a thread counts as idle: a 5 ms write would let virtual
    time run out every deadline (``drain_timeout``, the user's own
    ``move_on_after``) while it works. A task parked in
    :func:`trio.testing.wait_all_tasks_blocked` turns autojump off for as long
    as it waits (trio jumps the clock only when nobody waits for idleness), so
    this system task waits there while a call is in flight, for at most
    :data:`HOLD_LIMIT` real seconds of idleness per call, and is cancelled out
    of it the moment the call ends (or autojump would stay off after it).
    """

    def __init__(self) -> None:
        self._waits = 0  # library waits on the worker thread in progress
        self._generation = 0  # bumped at each first wait, so a lapsed hold is not resumed
        self._lot = trio.lowlevel.ParkingLot()
        self._scope: trio.CancelScope | None = None
        trio.lowlevel.spawn_system_task(self._run, name="trio-failurelog virtual time hold")

    def begin(self) -> None:
        self._waits += 1
        if self._waits == 1:
            self._generation += 1
            self._lot.unpark_all()

    def end(self) -> None:
        self._waits -= 1
        if self._waits == 0 and self._scope is not None:
            self._scope.cancel()

    async def _run(self) -> None:
        while True:
            while not self._waits:
                await self._lot.park()
            generation = self._generation
            with trio.CancelScope() as self._scope:
                await trio.testing.wait_all_tasks_blocked(HOLD_LIMIT)
            self._scope = None
            # Lapsed (the thread took longer) or done: hold again only for a new wait.
            while self._waits and self._generation == generation:
                await self._lot.park()


_HOLD: trio.lowlevel.RunVar[_TimeHold | None] = trio.lowlevel.RunVar("trio_failurelog_hold")


def _clock_is_real() -> bool:
    clock = type(trio.lowlevel.current_clock())
    # trio's default clock; any other (MockClock, a user's own) is treated as virtual.
    return clock.__name__ == "SystemClock" and clock.__module__.startswith("trio.")


@contextlib.contextmanager
def holding_virtual_time() -> Iterator[None]:
    """While in this block, a virtual clock does not advance for lack of runnable tasks.

    For the library's waits on its worker thread. Under the real clock, does
    nothing (one check of the clock's type). Under any other clock, the
    time the thread takes is not virtual time: a batch written on a real
    thread takes no virtual time at all, up to :data:`HOLD_LIMIT` real
    seconds of idleness per wait.
    """
    try:
        hold = _HOLD.get()
    except LookupError:
        hold = None if _clock_is_real() else _TimeHold()
        _HOLD.set(hold)
    if hold is None:
        yield
        return
    hold.begin()
    try:
        yield
    finally:
        hold.end()


class SerialThread:
    """Runs blocking calls on trio's worker threads strictly one after another.

    A call that is cancelled while its thread runs is *abandoned*: the awaiting
    task gets :exc:`trio.Cancelled` at once (so a deadline is honoured even when
    the disk hangs), the thread finishes on its own, and the next call waits
    until it has. This is what lets one non-thread-safe resource (an sqlite3
    connection, a psycopg connection) be used across cancellable calls.
    """

    # The places blocking work leaves the event loop's thread. (Fault-injection
    # tests put a slow disk here; the mock clock needs no such patch, see
    # holding_virtual_time.)
    _to_thread = staticmethod(trio.to_thread.run_sync)
    _start_thread = staticmethod(trio.lowlevel.start_thread_soon)

    def __init__(self) -> None:
        self._turn = trio.StrictFIFOLock()  # callers take turns, in order
        # A thread of our own: trio's default limiter is shared with the
        # application, whose blocking calls must not starve the writer.
        self._limiter = trio.CapacityLimiter(1)
        self._idle = trio.Event()  # unset while a (possibly abandoned) call runs
        self._idle.set()
        self._lock = threading.Lock()
        self._running = False
        self._on_abandoned_done: Callable[[], object] | None = None
        #: Whether the last call was abandoned (its outcome is unknown to the caller).
        self.abandoned = False

    async def run(
        self, fn: Callable[[], T], *, on_abandoned: Callable[[T], object] | None = None
    ) -> T:
        """Run ``fn()`` on a worker thread once the previous call has finished.

        Blocks until ``fn`` returns; raises what ``fn`` raises. Cancellation:
        while waiting for the previous call, nothing happens; while ``fn``
        runs, the call is abandoned as described on the class, and if ``fn``
        then returns a value, ``on_abandoned(value)`` is called with it on the
        same thread (to close a connection nobody will use, say).
        """
        async with self._turn:
            return await self._run_now(fn, on_abandoned)

    async def _run_now(self, fn: Callable[[], T], on_abandoned: Callable[[T], object] | None) -> T:
        with holding_virtual_time():
            return await self._run_held(fn, on_abandoned)

    async def _run_held(self, fn: Callable[[], T], on_abandoned: Callable[[T], object] | None) -> T:
        await self._idle.wait()
        idle = self._idle = trio.Event()
        token = trio.lowlevel.current_trio_token()
        started = given_up = abandoned = False
        self.abandoned = False
        # What fn() did, once it is done: a call that finished just as the
        # caller was cancelled still reports it (a batch that was committed
        # must be counted as written, not as lost).
        finished: outcome.Outcome[T] | None = None

        def job() -> T | None:
            nonlocal started, finished
            with self._lock:
                if given_up:  # the caller was cancelled before a thread took this
                    return None
                started = self._running = True
            returned = False
            try:
                result = fn()
                returned = True
                finished = outcome.Value(result)
                return result
            except BaseException as exc:
                finished = outcome.Error(exc)
                raise
            finally:
                with self._lock:
                    self._running = False
                    after = self._on_abandoned_done if abandoned else None
                if abandoned:
                    if returned and on_abandoned is not None:
                        _quietly(on_abandoned, result)
                    if after is not None:
                        _quietly(after)
                    with contextlib.suppress(trio.RunFinishedError):  # the run is over
                        token.run_sync_soon(idle.set)

        try:
            result = await self._to_thread(job, abandon_on_cancel=True, limiter=self._limiter)
        except trio.Cancelled:
            # Decide under the lock, so that exactly one side (this task or the
            # thread's finally) marks the worker idle again.
            with self._lock:
                abandoned = started and self._running
                given_up = not started
                done = None if abandoned or given_up else finished
            if abandoned:
                self.abandoned = True
                raise
            idle.set()
            if done is not None:
                # Finished before the cancellation reached us: its outcome stands,
                # and the cancellation comes again at the caller's next checkpoint.
                return done.unwrap()  # noqa: ASYNC104  # it finished: its outcome stands
            raise
        except BaseException:
            idle.set()
            raise
        idle.set()
        return result  # type: ignore[return-value]  # None only when given up

    async def close(self, closer: Callable[[], object]) -> None:
        """Run ``closer()`` on a worker thread after every call, and wait for it.

        The last call: nothing may be run after it. If an abandoned call is
        still running, ``closer`` is left for its thread to run when it
        finishes, and this returns at once. Otherwise ``closer`` starts on a
        thread at once, before the first checkpoint, so a resource is closed
        even when this is cancelled; cancelled, this stops waiting and the
        closer finishes on its own (the caller's scope sets the deadline). An
        exception from ``closer`` is logged, not raised.
        """
        with self._lock:
            handed_over = self._running  # only an abandoned call can still be running now
            if handed_over:
                self._on_abandoned_done = closer
            else:
                self._running = True  # the closer's, from here on
        if handed_over:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()

        def job() -> None:
            try:
                _quietly(closer)
            finally:
                with self._lock:
                    self._running = False
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(done.set)

        self._start_thread(job, _ignore, name="trio-failurelog close")
        with holding_virtual_time():
            await done.wait()


def _ignore(result: outcome.Outcome[Any]) -> None:
    """``start_thread_soon``'s deliver callback for jobs that report by themselves."""


def _quietly(fn: Callable[..., object], *args: Any) -> None:
    """Call ``fn`` on a worker thread where nobody waits for it: log what it raises."""
    try:
        fn(*args)
    except Exception:
        log.warning("trio_failurelog: error in a background close", exc_info=True)


async def run_inline(
    fn: Callable[[], T],
    *,
    abandon_on_cancel: bool = False,
    limiter: trio.CapacityLimiter | None = None,
) -> T:
    """What replaces ``SerialThread._to_thread`` to run calls on the event loop's thread.

    For the benchmarks' on-loop variant (the cost of the thread hop, measured
    by leaving it out). A checkpoint, then
    ``fn()``; the keyword arguments are those ``SerialThread`` passes, ignored.
    """
    await trio.lowlevel.checkpoint()
    return fn()
