"""purge_older_than on an SQLite file: one chunked loop, a read-only dry run, and its errors.

The same loop runs over PostgreSQL in tests/postgres/test_reading.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_failurelog import DatabaseSetupError, IncompatibleSchemaError
from trio_failurelog._purge import purge_older_than

from ._failuredb import make_db, row, stored_rows

OLD = "2020-01-01 00:00:00"
NEW = "2030-01-01 00:00:00"
CUTOFF = "2025-01-01 00:00:00"


def _db(path: Path, old: int, new: int) -> Path:
    rows = [row("no_hit", "s", f"old {i}", OLD) for i in range(old)]
    rows += [row("timeout", "s", f"new {i}", NEW) for i in range(new)]
    return make_db(path, rows)


def _bytes(path: Path) -> bytes:
    """The database file and its WAL (the -shm index is shared memory that any
    reader, read-only or not, writes its read marks into)."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


@settings(max_examples=25, deadline=None)
@given(old=st.integers(0, 12), new=st.integers(0, 3), chunk=st.integers(1, 5))
def test_every_chunk_is_reported_and_the_last_one_is_short(
    tmp_path_factory: pytest.TempPathFactory, old: int, new: int, chunk: int
) -> None:
    db = _db(tmp_path_factory.mktemp("purge") / "f.db", old, new)
    progress: list[int] = []
    assert purge_older_than(db, CUTOFF, chunk_size=chunk, on_progress=progress.append) == old
    # One call per chunk: every full chunk, then the short one that ends the loop.
    assert progress == [min(n * chunk, old) for n in range(1, old // chunk + 2)]
    assert [r["query_text"] for r in stored_rows(db)] == [f"new {i}" for i in range(new)]


def test_a_dry_run_counts_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    db = _db(tmp_path / "f.db", 7, 2)
    before = _bytes(db)
    progress: list[int] = []
    assert purge_older_than(db, CUTOFF, dry_run=True, on_progress=progress.append) == 7
    assert progress == []
    assert _bytes(db) == before
    assert len(stored_rows(db)) == 9


def test_a_chunk_size_below_one_is_refused_before_the_database_is_opened(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="chunk_size must be at least 1, got 0"):
        purge_older_than(tmp_path / "missing.db", CUTOFF, chunk_size=0)


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_missing_file_is_a_setup_error_and_is_not_created(tmp_path: Path, dry_run: bool) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(DatabaseSetupError, match="does not exist"):
        purge_older_than(missing, CUTOFF, dry_run=dry_run)
    assert not missing.exists()


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_file_without_the_table_is_a_setup_error(tmp_path: Path, dry_run: bool) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    with pytest.raises(DatabaseSetupError, match="has no table"):
        purge_older_than(other, CUTOFF, dry_run=dry_run)


def test_a_table_lacking_created_at_is_incompatible(tmp_path: Path) -> None:
    odd = tmp_path / "odd.db"
    conn = sqlite3.connect(odd)
    conn.execute("CREATE TABLE memory_retrieval_failures (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(IncompatibleSchemaError, match="lacks column"):
        purge_older_than(odd, CUTOFF)


def test_a_chunk_that_finds_the_write_lock_taken_deletes_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path / "f.db", 3, 0)
    holder = sqlite3.connect(db, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            purge_older_than(db, CUTOFF)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(stored_rows(db)) == 3  # the chunk rolled back; the next purge deletes them
    assert purge_older_than(db, CUTOFF) == 3
