"""Deleting old failures from a database by hand (the ``purge`` command).

The logger's own retention purge covers running programs; this is for a file
on disk, perhaps the reference application's, or a PostgreSQL database a fleet
shares. It deletes in short chunks so a logger writing to the same database is
never locked out for long.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ._readsql import TimeBound, _postgres_module, connect, created_at_text
from ._schema import TABLE
from ._sqlite_store import SQLiteStore
from ._storage import Database, is_postgres_url

__all__ = ["purge_in_chunks", "purge_older_than"]

#: Rows deleted per transaction.
PURGE_CHUNK: Final = 1000


def purge_older_than(
    database: Database,
    before: TimeBound,
    *,
    dry_run: bool = False,
    chunk_size: int = PURGE_CHUNK,
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Delete the failures with ``created_at`` before ``before``; return how many.

    ``before`` as a time bound (a ``timedelta`` means that long ago). With
    ``dry_run`` nothing is deleted (the file is opened read-only) and the
    return value is how many rows would be. Otherwise rows go in transactions
    of ``chunk_size`` and ``on_progress(deleted_so_far)`` is called after each.

    ``database`` may be a ``postgresql://`` URL (the ``postgres`` extra): a
    dry run then counts in a read-only transaction, and each chunk takes the
    advisory lock the loggers' retention purge takes, so that one purge of a
    fleet runs at a time (it waits up to 30 s for a logger's chunk to finish).

    Blocks: for every chunk, on the write lock (SQLite: up to 5 s if another
    connection holds it, then :exc:`sqlite3.OperationalError`). Raises
    :exc:`DatabaseSetupError` without touching the database when it is
    missing, unreachable, not an SQLite database, or lacks the table (and for
    a PostgreSQL error during the purge, without the URL's password).
    Interrupting (KeyboardInterrupt) between chunks keeps the chunks already
    committed.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    cutoff = created_at_text(before)
    if is_postgres_url(database):
        assert isinstance(database, str)
        deleted: int = _postgres_module().purge_before(
            database, cutoff, dry_run=dry_run, chunk_size=chunk_size, on_progress=on_progress
        )
        return deleted
    conn, name = connect(database, mode="ro" if dry_run else "rw")
    try:
        if dry_run:
            row = conn.execute(
                f"SELECT count(*) FROM {TABLE} WHERE created_at < ?", (cutoff,)
            ).fetchone()
            return int(row[0])
        store = SQLiteStore(conn, name)
        return purge_in_chunks(
            lambda: store.purge_chunk_before_text(cutoff, chunk_size), chunk_size, on_progress
        )
    finally:
        conn.close()


def purge_in_chunks(
    delete_chunk: Callable[[], int],
    chunk_size: int,
    on_progress: Callable[[int], object] | None,
) -> int:
    """Call ``delete_chunk()`` until it deletes fewer than ``chunk_size``; the total."""
    deleted = 0
    while True:
        chunk = delete_chunk()
        deleted += chunk
        if on_progress is not None:
            on_progress(deleted)
        if chunk < chunk_size:
            return deleted
