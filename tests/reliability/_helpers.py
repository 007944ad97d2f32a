"""Shared by the reliability tests: reading a database back, running the child."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from trio_failurelog import TABLE, LoggerStatistics

#: The child program the multi-process tests run (crash and contention modes).
CHILD = Path(__file__).with_name("_child.py")


def child_command(*args: str) -> list[str]:
    return [sys.executable, str(CHILD), *args]


def spawn_child(*args: str) -> subprocess.Popen[str]:
    """Start the child program; its stdout and stderr are captured as text."""
    return subprocess.Popen(
        child_command(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def integrity(path: Path) -> list[str]:
    """``PRAGMA integrity_check`` of the file: ``["ok"]`` when it is sound."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def column(path: Path, name: str, where: str = "") -> list[object]:
    """One column of every row, in insertion order."""
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute(f"SELECT {name} FROM {TABLE} {where} ORDER BY id")]
    finally:
        conn.close()


def row_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        count: int = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        return count
    finally:
        conn.close()


def assert_accounting(stats: LoggerStatistics) -> None:
    """The invariant every snapshot taken between two awaits satisfies."""
    assert stats.accepted == stats.written + stats.failed + stats.queued, stats


def assert_settled(stats: LoggerStatistics) -> None:
    """A closed logger that had time to drain: everything accepted was written."""
    assert stats.closed, stats
    assert stats.queued == 0, stats
    assert stats.failed == 0, stats
    assert stats.written == stats.accepted, stats


def warnings_containing(records: Sequence[object], text: str) -> list[str]:
    """Messages of WARNING (or worse) log records that contain ``text``."""
    import logging

    found = []
    for record in records:
        assert isinstance(record, logging.LogRecord)
        message = record.getMessage()
        if record.levelno >= logging.WARNING and text in message:
            found.append(message)
    return found
