"""The manual purge (the ``purge`` command): one chunked loop for either backend.

The logger's own retention purge covers running programs; this is for a file
on disk, perhaps the reference application's, or a PostgreSQL database a fleet
shares. It deletes in short chunks so a logger writing to the same database is
never locked out for long.
"""

from __future__ import annotations

from collections.abc import Callable

from ._backends import open_read_connection
from ._database import Database
from ._table import TABLE
from ._timetext import TimeBound, created_at_text
from ._writer import PURGE_CHUNK  # one chunk size for the logger's purge and this one

__all__ = ["purge_older_than"]


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
    conn = open_read_connection(database, writable=not dry_run)
    try:
        if dry_run:  # read-only: one statement, its own transaction
            rows = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < ?", [cutoff])
            return int(rows[0][0])
        deleted = 0
        while True:
            chunk = conn.purge_chunk(cutoff, chunk_size)
            deleted += chunk
            if on_progress is not None:
                on_progress(deleted)
            if chunk < chunk_size:
                return deleted
    finally:
        conn.close()
