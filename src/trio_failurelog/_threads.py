"""Running blocking calls on a worker thread, one at a time, cancellably."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import trio

__all__ = ["SerialThread", "run_inline"]

T = TypeVar("T")


class SerialThread:
    """Runs blocking calls on trio's worker threads strictly one after another.

    A call that is cancelled while its thread runs is *abandoned*: the awaiting
    task gets :exc:`trio.Cancelled` at once (so a deadline is honoured even when
    the disk hangs), the thread finishes on its own, and the next call waits
    until it has. This is what lets one non-thread-safe resource (an sqlite3
    connection) be used across cancellable calls.
    """

    # The one place blocking work leaves the event loop's thread. Tests that run
    # on trio's mock clock replace it with an inline call: time must not jump
    # ahead while a real thread works.
    _to_thread = staticmethod(trio.to_thread.run_sync)

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
        #: Whether a call was ever abandoned (its outcome is unknown to the caller).
        self.abandoned = False

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn()`` on a worker thread once the previous call has finished.

        Blocks until ``fn`` returns; raises what ``fn`` raises. Cancellation:
        while waiting for the previous call, nothing happens; while ``fn``
        runs, the call is abandoned as described on the class.
        """
        async with self._turn:
            return await self._run_now(fn)

    async def _run_now(self, fn: Callable[[], T]) -> T:
        await self._idle.wait()
        idle = self._idle = trio.Event()
        token = trio.lowlevel.current_trio_token()
        started = given_up = abandoned = False

        def job() -> T | None:
            nonlocal started
            with self._lock:
                if given_up:  # the caller was cancelled before a thread took this
                    return None
                started = self._running = True
            try:
                return fn()
            finally:
                with self._lock:
                    self._running = False
                    after = self._on_abandoned_done if abandoned else None
                if abandoned:
                    if after is not None:
                        after()
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
            if abandoned:
                self.abandoned = True
            else:
                idle.set()
            raise
        except BaseException:
            idle.set()
            raise
        idle.set()
        return result  # type: ignore[return-value]  # None only when given up

    async def close(self, closer: Callable[[], object]) -> None:
        """Run ``closer()`` on a worker thread after every call has finished.

        If an abandoned call is still running, ``closer`` is left for its
        thread to run when it finishes, and this returns at once: shutting down
        never waits for a hung call. Otherwise it takes its turn after calls
        under way. Shielded from cancellation: a resource is always closed.
        """
        with self._lock:
            if self._running and self.abandoned:
                self._on_abandoned_done = closer
                return
        with trio.CancelScope(shield=True):
            async with self._turn:
                await self._idle.wait()
                await self._to_thread(closer, limiter=self._limiter)


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
