"""Closing happens when the ``async with`` block is left, not when a cancellation arrives."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_failurelog import RetrievalFailureLogger, RetrievalFailureRecord, open_failure_logger


def rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM memory_retrieval_failures").fetchone()[0])
    finally:
        conn.close()


def timeout(i: int) -> RetrievalFailureRecord:
    return RetrievalFailureRecord("timeout", "semantic", f"query {i}", latency_ms=i)


@pytest.mark.parametrize("where", ["except", "finally"])
async def test_recalls_cancelled_with_the_block_log_their_timeout_and_it_is_written(
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
    lib_log: pytest.LogCaptureFixture,
    where: str,
) -> None:
    path = tmp_path / "f.db"
    outcomes: list[bool] = []

    async def recall(failures_log: RetrievalFailureLogger, i: int) -> None:
        if where == "except":
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                outcomes.append(failures_log.log(timeout(i)))
                raise
        else:
            try:
                await trio.sleep_forever()
            finally:
                outcomes.append(failures_log.log(timeout(i)))

    with trio.move_on_after(1) as scope:
        async with open_failure_logger(path) as failures, trio.open_nursery() as nursery:
            for i in range(300):
                nursery.start_soon(recall, failures, i)
    assert scope.cancelled_caught
    assert outcomes == [True] * 300
    stats = failures.statistics()
    assert (stats.accepted, stats.written, stats.dropped_closed, stats.failed) == (300, 300, 0, 0)
    assert rows(path) == 300
    assert not [r for r in lib_log.records if r.levelname == "WARNING"]


async def test_the_block_cleanup_can_still_flush(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "f.db"
    with trio.CancelScope() as scope:
        async with open_failure_logger(path) as failures:
            scope.cancel()
            try:
                await trio.sleep_forever()
            finally:
                failures.log(timeout(0))
                with trio.CancelScope(shield=True):
                    await failures.flush()
                    assert failures.statistics().written == 1
                    assert rows(path) == 1


async def test_an_exception_from_a_cancelled_block_comes_out_as_itself(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    class Boom(Exception):
        pass

    path = tmp_path / "f.db"
    with pytest.raises(Boom), trio.CancelScope() as scope:
        async with open_failure_logger(path) as failures:
            scope.cancel()
            try:
                await trio.sleep_forever()
            finally:
                failures.log(timeout(0))
                raise Boom  # the block's own error, out of its cleanup
    assert failures.statistics().written == 1


async def test_after_the_block_is_left_the_drain_is_still_bounded(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "f.db"
    with trio.CancelScope() as scope:
        async with open_failure_logger(path, drain_timeout=0) as failures:
            scope.cancel()
            for i in range(100):
                failures.log(timeout(i))
            left = trio.current_time()
    assert trio.current_time() == left
    stats = failures.statistics()
    assert stats.accepted == 100
    assert stats.written + stats.failed == 100
    assert stats.closed


async def test_cancelled_while_opening_still_raises_cancelled(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    with trio.CancelScope() as scope:
        scope.cancel()
        async with open_failure_logger(path):
            pytest.fail("not reached: the cancellation comes while opening")
    assert scope.cancelled_caught
