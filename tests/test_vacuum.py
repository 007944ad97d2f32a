"""purge --vacuum's VACUUM: the space back, incremental auto_vacuum on, the rows untouched,
a logger writing meanwhile losing nothing, and the files it refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from trio_failurelog import DatabaseSetupError, open_failure_logger
from trio_failurelog._backends import reclaimable_bytes, vacuum_database
from trio_failurelog._purge import purge_older_than
from trio_failurelog._sqlite import SQLiteStore

from ._failuredb import make_db, row, stored_rows
from ._helpers import log_until_done, on_disk

OLD = "2020-01-01 00:00:00"
NEW = "2030-01-01 00:00:00"
CUTOFF = "2025-01-01 00:00:00"


def _reference_db(path: Path, old: int, new: int) -> Path:
    """A file as the reference application makes it (auto_vacuum NONE), purged of its old rows."""
    rows = [row("no_hit", "s", f"old {i} " + "x" * 300, OLD) for i in range(old)]
    rows += [row("timeout", "s", f"new {i} " + "y" * 300, NEW) for i in range(new)]
    make_db(path, rows)
    purge_older_than(path, CUTOFF, chunk_size=1000, pause=0)
    return path


def _auto_vacuum(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])
    finally:
        conn.close()


def test_a_reference_file_gives_its_space_back_and_turns_incremental(tmp_path: Path) -> None:
    db = _reference_db(tmp_path / "ref.db", 3000, 4)
    rows = stored_rows(db)
    free = reclaimable_bytes(db)
    assert free > 500_000
    before = on_disk(db)
    done = vacuum_database(db)
    assert (done.auto_vacuum_before, done.auto_vacuum_after) == ("none", "incremental")
    assert done.bytes_before == before
    assert done.bytes_after == on_disk(db) < before - free / 2  # the WAL truncated too
    assert _auto_vacuum(db) == 2
    assert stored_rows(db) == rows  # ids and all
    assert reclaimable_bytes(db) == 0


def test_after_the_vacuum_purges_give_space_back_by_themselves(tmp_path: Path) -> None:
    db = _reference_db(tmp_path / "ref.db", 0, 0)
    vacuum_database(db)
    make_db(db, [row("no_hit", "s", f"old {i} " + "x" * 300, OLD) for i in range(3000)])
    purge_older_than(db, CUTOFF, pause=0)
    assert reclaimable_bytes(db) == 0


def test_a_full_auto_vacuum_file_stays_full(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA auto_vacuum = FULL")  # the owner's choice: it shrinks on every commit
    conn.close()
    make_db(db, [row("no_hit", "s", "q", NEW)])
    done = vacuum_database(db)
    assert (done.auto_vacuum_before, done.auto_vacuum_after) == ("full", "full")
    assert _auto_vacuum(db) == 1


def test_a_library_file_stays_incremental(tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    SQLiteStore.open(db, busy_timeout=1.0, synchronous="NORMAL").close()
    done = vacuum_database(db)
    assert (done.auto_vacuum_before, done.auto_vacuum_after) == ("incremental", "incremental")


@pytest.mark.parametrize("call", [vacuum_database, reclaimable_bytes])
def test_what_is_no_failure_database_is_refused_and_left_alone(
    tmp_path: Path, call: object
) -> None:
    assert callable(call)
    missing = tmp_path / "missing.db"
    with pytest.raises(DatabaseSetupError, match="does not exist"):
        call(missing)
    assert not missing.exists()
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    before = other.read_bytes()
    with pytest.raises(DatabaseSetupError, match="has no table"):
        call(other)
    assert other.read_bytes() == before


@pytest.mark.parametrize("call", [vacuum_database, reclaimable_bytes])
def test_a_postgresql_url_is_refused_without_connecting(call: object) -> None:
    assert callable(call)
    with pytest.raises(DatabaseSetupError, match="for SQLite files") as caught:
        call("postgresql://user:s3cret@nowhere.invalid/db")
    assert "s3cret" not in str(caught.value)


async def test_a_logger_writing_during_the_vacuum_waits_and_loses_nothing(tmp_path: Path) -> None:
    """VACUUM holds the write lock throughout: the logger's writes find it taken,
    back off and retry (its busy_timeout cut to 10 ms so that every one of
    them does), and land once it is done; nothing fails, nothing is doubled."""
    db = _reference_db(tmp_path / "ref.db", 1000, 60_000)  # tens of MB to copy
    async with open_failure_logger(db, retention_days=None, busy_timeout=0.01) as failures:
        await failures.flush()  # opened: the logger holds no lock between batches
        logged = await log_until_done(failures, lambda: vacuum_database(db))
        stats = failures.statistics()
    assert stats.retries > 0  # it did wait for the VACUUM
    assert (stats.written, stats.failed, stats.dropped_full) == (logged, 0, 0)
    texts = [r["query_text"] for r in stored_rows(db)]
    assert texts[60_000:] == [f"query {i}" for i in range(logged)]
    assert len(texts) == 60_000 + logged
    assert _auto_vacuum(db) == 2
