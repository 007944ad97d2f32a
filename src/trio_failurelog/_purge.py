"""The manual purge (the ``purge`` command): one chunked loop for either backend.

The logger's own retention purge covers running programs; this is for a file
on disk, perhaps the reference application's, or a PostgreSQL database a fleet
shares. It deletes in short chunks so a logger writing to the same database is
never locked out for long: on SQLite, chunks sized by time with a pause between
them (``_pacing.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._backends import open_read_connection
from ._database import Database, is_postgres_url
from ._pacing import WRITER_GAP, ChunkPacer
from ._table import TABLE
from ._timetext import TimeBound, created_at_text
from ._writer import PURGE_CHUNK  # one chunk size for the logger's purge and this one

__all__ = ["purge_older_than"]


def purge_older_than(
    database: Database,
    before: TimeBound,
    *,
    dry_run: bool = False,
    chunk_size: int | None = None,
    pause: float | None = None,
    on_progress: Callable[[int], object] | None = None,
) -> int:
    """Delete the failures with ``created_at`` before ``before``; return how many.

    ``before`` as a time bound (a ``timedelta`` means that long ago). With
    ``dry_run`` nothing is deleted (the file is opened read-only) and the
    return value is how many rows would be. Otherwise rows go in transactions
    of ``chunk_size`` rows and ``on_progress(deleted_so_far)`` is called after
    each. ``chunk_size`` ``None``: on SQLite, chunks sized to hold the write
    lock about 20 ms (the first of 1000 rows); on PostgreSQL, 1000 rows.
    ``pause``: seconds slept after each chunk but the last (``None``: 30 ms
    on SQLite, so that a writer waiting for the lock gets it, see
    ``_pacing.py``; 0 on PostgreSQL, whose row locks keep no INSERT waiting).
    On SQLite, a file with incremental auto_vacuum (every file the library
    creates) gives the freed pages back to the OS chunk by chunk; see
    :func:`~trio_failurelog._backends.vacuum_database` for other files.

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
    writers_take_turns = not is_postgres_url(database)  # SQLite: one writer at a time
    pacer = ChunkPacer(
        PURGE_CHUNK if chunk_size is None else chunk_size,
        by_time=chunk_size is None and writers_take_turns,
        gap=(WRITER_GAP if writers_take_turns else 0.0) if pause is None else pause,
    )
    cutoff = created_at_text(before)
    conn = open_read_connection(database, writable=not dry_run)
    try:
        if dry_run:  # read-only: one statement, its own transaction
            rows = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < ?", [cutoff])
            return int(rows[0][0])
        deleted = 0
        while True:
            limit = pacer.limit
            started = time.monotonic()
            chunk = conn.purge_chunk(cutoff, limit)
            pacer.took(time.monotonic() - started)
            deleted += chunk
            if on_progress is not None:
                on_progress(deleted)
            if chunk < limit:
                return deleted
            pacer.pause()
    finally:
        conn.close()
