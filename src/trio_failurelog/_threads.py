"""Running blocking calls on a worker thread, one at a time, cancellably."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome  # trio's own dependency: what start_thread_soon delivers
import trio

__all__ = ["SerialThread", "run_inline", "start_inline"]

T = TypeVar("T")

log = logging.getLogger("trio_failurelog")


class SerialThread:
    """Runs blocking calls on trio's worker threads strictly one after another.

    A call that is cancelled while its thread runs is *abandoned*: the awaiting
    task gets :exc:`trio.Cancelled` at once (so a deadline is honoured even when
    the disk hangs), the thread finishes on its own, and the next call waits
    until it has. This is what lets one non-thread-safe resource (an sqlite3
    connection, a psycopg connection) be used across cancellable calls.
    """

    # The places blocking work leaves the event loop's thread. Tests that run on
    # trio's mock clock replace them with inline calls: time must not jump ahead
    # while a real thread works.
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

    For tests on trio's mock clock (virtual time must not run on while a real
    thread works) and the benchmarks' on-loop variant. A checkpoint, then
    ``fn()``; the keyword arguments are those ``SerialThread`` passes, ignored.
    """
    await trio.lowlevel.checkpoint()
    return fn()


def start_inline(
    fn: Callable[[], T], deliver: Callable[[outcome.Outcome[T]], object], name: str | None = None
) -> None:
    """What replaces ``SerialThread._start_thread``: ``fn()`` now, on this thread."""
    deliver(outcome.capture(fn))
