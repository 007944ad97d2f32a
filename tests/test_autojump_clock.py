"""Users' own tests on pytest-trio's ``autojump_clock``: real threads, nothing patched.

Virtual time must not run out the library's deadlines while a batch is written
on the worker thread, and ``statistics()`` must agree with the table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio
import trio.testing

from trio_failurelog import RetrievalFailureRecord, open_failure_logger


def rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM memory_retrieval_failures").fetchone()[0])
    finally:
        conn.close()


def record(i: int) -> RetrievalFailureRecord:
    return RetrievalFailureRecord("no_hit", "semantic", f"query {i}")


async def test_a_thousand_records_all_written_when_the_block_is_left(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "f.db"
    async with open_failure_logger(path) as failures:
        for i in range(1000):
            assert failures.log(record(i))
    stats = failures.statistics()
    assert (stats.accepted, stats.written, stats.failed) == (1000, 1000, 0)
    assert rows(path) == 1000


async def test_flush_inside_move_on_after_does_not_fire_early(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "f.db"
    async with open_failure_logger(path, flush_interval=100) as failures:
        for i in range(2000):
            failures.log(record(i))
        with trio.move_on_after(30) as scope:
            await failures.flush()
        assert not scope.cancelled_caught
        assert failures.statistics().written == 2000
        assert rows(path) == 2000


async def test_after_a_virtual_sleep_everything_is_written(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "f.db"
    async with open_failure_logger(path) as failures:
        for i in range(1500):
            failures.log(record(i))
        await trio.sleep(10)
        stats = failures.statistics()
        assert (stats.written, stats.queued) == (1500, 0)
        assert rows(path) == 1500


async def test_a_write_takes_no_virtual_time(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # Each batch is written on a real thread; none of it is virtual time, so the
    # whole run takes the virtual time of its own sleeps and nothing more.
    path = tmp_path / "f.db"
    start = trio.current_time()
    async with open_failure_logger(path, batch_size=10, drain_timeout=0.001) as failures:
        for i in range(100):
            failures.log(record(i))
    assert trio.current_time() - start == 0
    assert failures.statistics().written == 100
    assert rows(path) == 100
