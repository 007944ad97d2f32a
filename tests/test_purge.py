"""purge_older_than on an SQLite file: one chunked loop, a read-only dry run, its errors,
the space it gives back, and the writers it lets in between its chunks.

The same loop runs over PostgreSQL in tests/postgres/test_reading.py.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_failurelog import DatabaseSetupError, IncompatibleSchemaError, open_failure_logger
from trio_failurelog._purge import purge_older_than
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._sqlite._schema import INSERT_SQL

from ._failuredb import make_db, row, stored_rows
from ._helpers import log_until_done

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


# ---------------------------------------------------------------- space and other writers


def _library_db(path: Path, old: int, new: int, *, text: int = 300) -> Path:
    """A file the library created (incremental auto_vacuum), holding ``old`` + ``new`` rows."""
    SQLiteStore.open(path, busy_timeout=1.0, synchronous="NORMAL").close()
    rows = [row("no_hit", "s", f"old {i} " + "x" * text, OLD) for i in range(old)]
    rows += [row("timeout", "s", f"new {i}", NEW) for i in range(new)]
    return make_db(path, rows)


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


def _checkpointed_size(path: Path) -> int:
    """The file's size once its WAL is copied back (what it takes when idle)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return path.stat().st_size


def test_a_file_the_library_created_shrinks_as_it_is_purged(tmp_path: Path) -> None:
    db = _library_db(tmp_path / "f.db", 3000, 5)
    before = _checkpointed_size(db)
    assert purge_older_than(db, CUTOFF, chunk_size=500, pause=0) == 3000
    assert _pragma(db, "freelist_count") == 0  # every freed page went back
    assert _checkpointed_size(db) < before / 2
    assert [r["query_text"] for r in stored_rows(db)] == [f"new {i}" for i in range(5)]


def test_a_reference_file_keeps_its_size_and_its_setting(tmp_path: Path) -> None:
    rows = [row("no_hit", "s", f"old {i} " + "x" * 300, OLD) for i in range(3000)]
    db = make_db(tmp_path / "ref.db", rows)  # auto_vacuum NONE, as the reference makes it
    before = _checkpointed_size(db)
    assert purge_older_than(db, CUTOFF, chunk_size=500, pause=0) == 3000
    assert _pragma(db, "auto_vacuum") == 0
    assert _pragma(db, "freelist_count") > 0  # kept for new rows: --vacuum gives it back
    assert _checkpointed_size(db) == before


def test_chunks_sized_by_time_delete_exactly_the_old_rows(tmp_path: Path) -> None:
    db = _library_db(tmp_path / "f.db", 2500, 3, text=10)
    progress: list[int] = []
    assert purge_older_than(db, CUTOFF, pause=0, on_progress=progress.append) == 2500
    assert progress[0] == 1000  # the first chunk; the next ones as fast as they went
    assert progress == sorted(set(progress))
    assert progress[-1] == 2500
    assert [r["query_text"] for r in stored_rows(db)] == [f"new {i}" for i in range(3)]


def test_a_writer_waiting_for_the_lock_gets_it_between_two_chunks(tmp_path: Path) -> None:
    """The purge pauses after each chunk, so a writer waiting in SQLite's busy
    handler (as the logger does, busy_timeout 0.1 s) takes the lock before the
    purge's next chunk or the one after, never waiting out a run of chunks;
    nothing it writes is lost or doubled, nothing old is left."""
    db = _library_db(tmp_path / "f.db", 2000, 0, text=10)
    committed = threading.Condition()
    chunks = 0

    def on_progress(_deleted: int) -> None:
        nonlocal chunks
        with committed:
            chunks += 1
            committed.notify_all()

    outcome: list[int] = []
    purge = threading.Thread(
        target=lambda: outcome.append(
            purge_older_than(db, CUTOFF, chunk_size=50, on_progress=on_progress)
        )
    )
    writer = sqlite3.connect(db, isolation_level=None, timeout=0.1)
    waited: list[int] = []  # chunks committed while each write waited for the lock
    try:
        purge.start()
        while purge.is_alive():
            with committed:  # a chunk just committed: the purge pauses, or is in the next
                seen = chunks

                def next_chunk(seen: int = seen) -> bool:
                    return chunks > seen or not purge.is_alive()

                committed.wait_for(next_chunk, timeout=60)
                start = chunks
            try:
                writer.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # busy for 0.1 s: the logger retries
                assert "locked" in str(exc)
                continue
            writer.execute(INSERT_SQL, row("error", "w", f"w {len(waited)}", NEW))
            writer.execute("COMMIT")
            waited.append(chunks - start)
    finally:
        purge.join()
        writer.close()
    assert outcome == [2000]
    assert len(waited) >= 20  # the writer got in all along the purge's 41 chunks
    assert max(waited) <= 2  # back to back, a waiting writer sat through dozens
    assert [r["query_text"] for r in stored_rows(db)] == [f"w {i}" for i in range(len(waited))]


async def test_a_logger_keeps_writing_into_the_file_while_it_is_purged(tmp_path: Path) -> None:
    """A real logger flushing batch after batch while the manual purge runs:
    its commits land between the purge's chunks, and every row is where it
    should be: the logger's all there once, the old ones all gone."""
    db = _library_db(tmp_path / "f.db", 1500, 0, text=10)
    written_at_chunk: list[int] = []
    async with open_failure_logger(db, retention_days=None) as failures:

        def on_progress(_deleted: int) -> None:  # on the purge's thread
            written_at_chunk.append(failures.statistics().written)

        logged = await log_until_done(
            failures,
            lambda: purge_older_than(db, CUTOFF, chunk_size=50, on_progress=on_progress),
        )
        stats = failures.statistics()
    assert (stats.written, stats.failed, stats.dropped_full) == (logged, 0, 0)
    assert len(written_at_chunk) == 31  # 30 full chunks, then the empty one that ends it
    assert len(set(written_at_chunk)) > 10  # the logger committed between many chunks
    assert [r["query_text"] for r in stored_rows(db)] == [f"query {i}" for i in range(logged)]
