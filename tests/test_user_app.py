"""A small application and its own pytest-trio tests, written as a user would.

The application logs its failed recalls through the library; its tests run on
pytest-trio's ``autojump_clock`` (real worker threads, nothing patched) and see
``written == accepted`` and the rows in the table.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import trio
import trio.testing

from trio_failurelog import RetrievalFailureRecord, open_failure_logger
from trio_failurelog.testing import FailureLog

# ---------------------------------------------------------------- the application

DOCUMENTS = {"cats": ["Cats sleep a lot."], "dogs": ["Dogs bark."]}


async def search(query: str, failures: FailureLog, *, deadline: float = 0.2) -> list[str]:
    """Look ``query`` up; log a ``no_hit`` or a ``timeout`` when it fails."""
    t0 = trio.current_time()
    try:
        with trio.fail_after(deadline):
            await trio.sleep(0.05 * len(query.split()))  # the backend's latency
            hits = DOCUMENTS.get(query, [])
    except trio.TooSlowError:
        failures.log(
            RetrievalFailureRecord(
                "timeout", "keyword", query, latency_ms=(trio.current_time() - t0) * 1000
            )
        )
        return []  # noqa: ASYNC910  # fail_after raised: the sleep in it checkpointed
    if not hits:
        failures.log(
            RetrievalFailureRecord(
                "no_hit", "keyword", query, latency_ms=(trio.current_time() - t0) * 1000
            )
        )
    return hits


async def serve(queries: list[str], failures: FailureLog) -> int:
    """Answer every query concurrently; return how many found something."""
    found = 0

    async def one(query: str) -> None:
        nonlocal found
        if await search(query, failures):
            found += 1

    async with trio.open_nursery() as nursery:
        for query in queries:
            nursery.start_soon(one, query)
    return found


# ---------------------------------------------------------------- its tests


def rows(path: Path) -> list[tuple[str, str, int]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(
            "SELECT failure_type, query_text, latency_ms FROM memory_retrieval_failures ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


async def test_misses_and_timeouts_are_in_the_table(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "failures.db"
    queries = ["cats", "dogs"] + [f"unknown {i}" for i in range(1000)] + ["a b c d e f"]
    async with open_failure_logger(path) as failures:
        assert await serve(queries, failures) == 2
    stats = failures.statistics()
    assert stats.accepted == 1001
    assert (stats.written, stats.failed, stats.dropped_full) == (1001, 0, 0)
    table = rows(path)
    assert len(table) == 1001
    assert ("timeout", "a b c d e f", 200) in table
    assert sorted({latency for kind, _, latency in table if kind == "no_hit"}) == [100]


async def test_with_the_fixture_and_a_virtual_wait(
    failure_logger: FailureLog, autojump_clock: trio.testing.MockClock
) -> None:
    await serve([f"unknown {i}" for i in range(600)], failure_logger)
    await trio.sleep(10)  # virtual: the writer's thread takes none of it
    stats = failure_logger.statistics()
    assert (stats.accepted, stats.written, stats.queued) == (600, 600, 0)


async def test_flush_under_a_deadline(
    failure_logger: FailureLog, autojump_clock: trio.testing.MockClock
) -> None:
    await serve([f"unknown {i}" for i in range(2000)], failure_logger)
    with trio.fail_after(30):
        await failure_logger.flush()
    assert failure_logger.statistics().written == 2000
