"""SerialThread: one blocking call at a time, on a worker thread, abandonable."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from trio_failurelog._threads import SerialThread


async def test_runs_on_another_thread_and_returns_or_raises() -> None:
    worker = SerialThread()
    assert await worker.run(threading.get_ident) != threading.get_ident()

    def fail() -> None:
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        await worker.run(fail)
    assert await worker.run(lambda: 7) == 7  # still usable after an error
    assert not worker.abandoned


async def test_calls_never_overlap() -> None:
    worker = SerialThread()
    active = 0
    most = 0
    lock = threading.Lock()

    def job() -> None:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        threading.Event().wait(0.002)
        with lock:
            active -= 1

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(worker.run, job)
    assert most == 1


async def test_cancelled_call_is_abandoned_and_the_next_waits_for_it() -> None:
    worker = SerialThread()
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(10)
        order.append("slow done")

    with trio.CancelScope() as scope:

        async def cancel_once_started() -> None:
            await trio.to_thread.run_sync(started.wait)
            scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancel_once_started)
            await worker.run(slow)
    assert scope.cancelled_caught  # returned while the thread still runs
    assert worker.abandoned
    assert order == []

    async with trio.open_nursery() as nursery:

        async def next_call() -> None:
            await worker.run(lambda: order.append("next"))

        nursery.start_soon(next_call)
        await trio.testing.wait_all_tasks_blocked()
        assert order == []  # waiting for the abandoned call
        release.set()
    assert order == ["slow done", "next"]


async def test_close_after_an_abandoned_call_runs_when_its_thread_finishes() -> None:
    worker = SerialThread()
    started = threading.Event()
    release = threading.Event()
    closed = threading.Event()
    closed_on: list[int] = []

    def slow() -> None:
        started.set()
        release.wait(10)

    def closer() -> None:
        closed_on.append(threading.get_ident())
        closed.set()

    with trio.move_on_after(5) as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_once_started() -> None:
                await trio.to_thread.run_sync(started.wait)
                scope.cancel()

            nursery.start_soon(cancel_once_started)
            await worker.run(slow)
    await worker.close(closer)  # returns at once: the thread is still busy
    assert not closed.is_set()
    release.set()
    assert await trio.to_thread.run_sync(closed.wait, 10)
    assert closed_on[0] != threading.get_ident()


async def test_close_when_idle_runs_the_closer_on_a_thread() -> None:
    worker = SerialThread()
    ran_on: list[int] = []
    await worker.close(lambda: ran_on.append(threading.get_ident()))
    assert len(ran_on) == 1
    assert ran_on[0] != threading.get_ident()


@pytest.mark.parametrize("result", ["value", "error"])
async def test_a_call_that_finished_as_its_caller_was_cancelled_still_reports(
    result: str,
) -> None:
    # The window: the thread has finished the call, its result is not delivered
    # yet, and the cancellation lands. A committed write must not read as lost.
    worker = SerialThread()
    token = trio.lowlevel.current_trio_token()
    scope = trio.CancelScope()

    def cancel_once_the_call_is_done() -> None:
        while worker._running:  # on the trio thread: holds it until the call is done
            threading.Event().wait(0.0005)
        scope.cancel()

    def call() -> int:
        token.run_sync_soon(cancel_once_the_call_is_done)
        threading.Event().wait(0.02)
        if result == "error":
            raise ValueError("committed, then failed")
        return 42

    reported = False
    with scope:
        if result == "value":
            assert await worker.run(call) == 42
        else:
            with pytest.raises(ValueError, match="committed"):
                await worker.run(call)
        reported = True
        await trio.lowlevel.checkpoint()  # the cancellation arrives here instead
        pytest.fail("not reached")
    assert reported
    assert scope.cancelled_caught
    assert not worker.abandoned
