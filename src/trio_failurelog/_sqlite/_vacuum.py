"""``purge --vacuum``: a full VACUUM of an existing SQLite file, turning on incremental auto_vacuum.

A file the library creates gives freed pages back as it purges (see
``_schema.delete_chunk``). A file made otherwise (the reference application's:
auto_vacuum NONE) keeps them as free pages inside it, which new rows reuse but
the OS never gets back; only a VACUUM rewrites the file without them, and only
a VACUUM can turn auto_vacuum on, so this does both at once. Everything here
blocks.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Final

from .._database import Database
from .._errors import DatabaseSetupError
from ._read import connect
from ._schema import AUTO_VACUUM_MODES

__all__ = ["VacuumOutcome", "vacuum_file"]

#: How long the WAL's truncation is retried after the VACUUM (seconds), and how often.
_TRUNCATE_FOR: Final = 30.0
_TRUNCATE_RETRY: Final = 0.05


@dataclass(frozen=True, slots=True)
class VacuumOutcome:
    """What :func:`vacuum_file` did: sizes in bytes (the file and its ``-wal``)."""

    bytes_before: int
    bytes_after: int
    #: ``"none"``, ``"full"`` or ``"incremental"``.
    auto_vacuum_before: str
    auto_vacuum_after: str


def _on_disk(path: str) -> int:
    total = 0
    for name in (path, path + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(name).st_size
    return total


def free_bytes(database: Database) -> int:
    """Bytes of free pages inside the file (what a VACUUM would give back, about).

    Blocks for a read-only open. Raises :exc:`DatabaseSetupError` like the readers.
    """
    conn, name = connect(database, mode="ro")
    try:
        pages = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)
    except sqlite3.DatabaseError as exc:
        raise DatabaseSetupError(f"cannot read database {name}: {exc}") from exc
    finally:
        conn.close()


def _truncate_wal(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the file and cut it to nothing, retrying a while.

    In WAL mode the VACUUM wrote the whole file into the WAL, and a WAL keeps
    its size on disk until a TRUNCATE checkpoint. The first commit of a logger
    waiting for the VACUUM runs a checkpoint of its own (the WAL is far past
    1000 pages), and SQLite answers a second checkpointer busy at once, without
    waiting: so this tries again until that one is done.
    """
    give_up = time.monotonic() + _TRUNCATE_FOR
    while True:
        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy or time.monotonic() >= give_up:
            return
        time.sleep(_TRUNCATE_RETRY)


def vacuum_file(database: Database) -> VacuumOutcome:
    """VACUUM ``database`` (an existing SQLite file with the table); a file whose
    auto_vacuum is NONE comes out INCREMENTAL, so later purges give space back.

    Costs: it holds the write lock from start to end (on an ordinary disk,
    seconds per hundred MB), so every other writer waits, a logger retrying for
    its ``retry_timeout`` (30 s by default) while its buffer fills; and it needs
    free disk for about twice what the file holds: a temporary copy (in
    ``SQLITE_TMPDIR``, else ``/var/tmp`` or ``/tmp``) and, in WAL mode, a WAL
    as large, truncated again at the end (retried up to 30 s while other
    connections checkpoint or write; what is left then goes at the next
    truncation or when the last connection closes). Readers keep reading.

    Raises :exc:`DatabaseSetupError` naming the file when it is missing, not a
    database, lacks the table, or when SQLite fails (busy for more than 5 s,
    disk full: the file is then unchanged). Not interruptible but by a signal's
    exception, after which SQLite has rolled the VACUUM back.
    """
    conn, name = connect(database, mode="rw")
    path = os.fspath(database)
    assert isinstance(path, str)  # connect() checked
    try:
        before = _on_disk(path)
        mode = AUTO_VACUUM_MODES.get(conn.execute("PRAGMA auto_vacuum").fetchone()[0], "none")
        if mode == "none":
            # Takes effect with the VACUUM; a FULL file (its owner's choice) stays so.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
        _truncate_wal(conn)
        after_mode = AUTO_VACUUM_MODES.get(conn.execute("PRAGMA auto_vacuum").fetchone()[0], "none")
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"cannot vacuum database {name}: {exc}") from exc
    finally:
        conn.close()
    return VacuumOutcome(before, _on_disk(path), mode, after_mode)
