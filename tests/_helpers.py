"""Small helpers shared by the logger tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_failurelog import (
    TABLE,
    LoggerStatistics,
    RetrievalFailureLogger,
    RetrievalFailureRecord,
)
from trio_failurelog._cli import main


def record(i: int = 0, **overrides: Any) -> RetrievalFailureRecord:
    """A valid record whose query text says which one it is."""
    values: dict[str, Any] = {
        "failure_type": "no_hit",
        "retrieval_strategy": "semantic",
        "query_text": f"query {i}",
        "latency_ms": i,
    }
    values.update(overrides)
    return RetrievalFailureRecord(**values)


def fetch(path: Path, sql: str = f"SELECT * FROM {TABLE} ORDER BY id") -> list[sqlite3.Row]:
    """Rows of ``sql``, read through a connection of its own that is closed after."""
    conn = sqlite3.connect(path)
    try:
        conn.row_factory = sqlite3.Row
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def count_rows(path: Path) -> int:
    return int(fetch(path, f"SELECT count(*) FROM {TABLE}")[0][0])


def queries(path: Path) -> list[str]:
    return [row[0] for row in fetch(path, f"SELECT query_text FROM {TABLE} ORDER BY id")]


def assert_accounted(stats: LoggerStatistics) -> None:
    """The invariant every quiescent snapshot must satisfy."""
    assert stats.accepted == stats.written + stats.failed + stats.queued, stats
    assert stats.queued >= 0, stats


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command line run in-process: its exit status, standard output and error."""
    try:
        code = main(list(argv))
    except SystemExit as exit:  # argparse: --help, usage errors
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def log_until_done(failures: RetrievalFailureLogger, blocking: Callable[[], object]) -> int:
    """Run ``blocking`` on a thread; meanwhile log ``record(0)``, ``record(1)``, ...
    through ``failures``, one flush (one commit) each. Return how many were logged."""
    logged = 0
    done = trio.Event()

    async def run_it() -> None:
        try:
            await trio.to_thread.run_sync(blocking)
        finally:
            done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_it)
        while not done.is_set():
            failures.log(record(logged))
            logged += 1
            await failures.flush()  # one commit each: the lock is wanted that often
    return logged


def on_disk(path: Path) -> int:
    """Bytes of an SQLite file and its WAL."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
