"""Reading an SQLite file: opening it without ever creating it, and its read connection.

Every function here blocks on the file; the readers call them on their own
thread (the async reader on its worker thread).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from .._database import Database
from .._errors import DatabaseSetupError, IncompatibleSchemaError
from .._protocols import Dialect
from .._readsql import normalise_query
from .._table import FIELDS, TABLE
from ._dialect import NORMALISE_FUNCTION, SQLITE
from ._schema import delete_chunk, table_exists

__all__ = ["SQLiteReadConnection", "check_file", "connect", "database_uri", "require_table"]

#: SQLite virtual-machine instructions between two checks for an abandoned async call.
_ABORT_CHECK_INSTRUCTIONS: Final = 1000
#: How long one statement waits for a lock (only WAL recovery takes one a reader needs).
_BUSY_TIMEOUT: Final = 5.0
#: The most helper threads one statement's sort may start.
_MAX_SORTER_THREADS: Final = 3


def _sorter_threads() -> int:
    """Helper threads for SQLite's sorter: one per other usable core, at most
    :data:`_MAX_SORTER_THREADS` (0 on one core: no helpers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(cores - 1, _MAX_SORTER_THREADS))


def database_uri(database: Database, mode: str) -> str:
    """An SQLite URI for ``database`` with ``?mode=...``; the path is percent-encoded."""
    return Path(os.path.abspath(os.fspath(database))).as_uri() + f"?mode={mode}"


def check_file(database: Database) -> str:
    """Return the path's display name; raise :exc:`DatabaseSetupError` if it is no file."""
    path = os.fspath(database)
    if not isinstance(path, str):
        raise TypeError(f"database must be a str or os.PathLike[str], not {type(path).__name__}")
    name = repr(path)
    if not os.path.exists(path):
        raise DatabaseSetupError(f"database {name} does not exist")
    if os.path.isdir(path):
        raise DatabaseSetupError(f"database {name} is a directory, not a file")
    return name


def require_table(conn: sqlite3.Connection, name: str, columns: Iterable[str] = FIELDS) -> None:
    """Check that ``conn`` is an SQLite database holding our table with ``columns``.

    Raises :exc:`DatabaseSetupError` when the file is not a database or the
    table is missing, :exc:`IncompatibleSchemaError` when columns are missing.
    Extra columns, other types and constraints are fine for reading.
    """
    try:
        if not table_exists(conn):
            raise DatabaseSetupError(f"database {name} has no table {TABLE!r}")
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
    except sqlite3.DatabaseError as exc:
        raise DatabaseSetupError(f"cannot read database {name}: {exc}") from exc
    missing = [column for column in columns if column not in found]
    if missing:
        raise IncompatibleSchemaError(
            f"database {name}: table {TABLE!r} lacks column(s) {', '.join(missing)}"
        )


def connect(database: Database, *, mode: str = "ro") -> tuple[sqlite3.Connection, str]:
    """Open an existing database (``mode`` ``"ro"`` or ``"rw"``, never creating it).

    Blocks for the open and a schema read. Raises :exc:`DatabaseSetupError` or
    :exc:`IncompatibleSchemaError` naming the database; nothing is written.
    """
    name = check_file(database)
    try:
        conn = sqlite3.connect(
            database_uri(database, mode),
            uri=True,
            timeout=_BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=False,  # the async reader uses it from worker threads, in turn
        )
    except sqlite3.Error as exc:
        raise DatabaseSetupError(f"cannot open database {name}: {exc}") from exc
    try:
        require_table(conn, name)
    except BaseException:
        conn.close()
        raise
    return conn, name


class SQLiteReadConnection:
    """A read-only (or, for purging, read-write) connection to an SQLite file.

    Every method blocks; use from one thread at a time. Opening raises
    :exc:`DatabaseSetupError` or :exc:`IncompatibleSchemaError` naming the
    file; nothing is ever created or written but by :meth:`purge_chunk`.
    """

    dialect: Dialect = SQLITE
    needs_cancel = False

    def __init__(self, database: Database, *, mode: str = "ro") -> None:
        self._conn, self.name = connect(database, mode=mode)
        self._conn.create_function(NORMALISE_FUNCTION, 1, normalise_query, deterministic=True)
        # The summary's GROUP BYs are sorts of every row in the window (SQLite
        # has no hash aggregation): let the sorter use the other cores.
        self._conn.execute(f"PRAGMA threads = {_sorter_threads()}")

    @property
    def raw(self) -> sqlite3.Connection:
        return self._conn

    def execute(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise DatabaseSetupError(f"cannot read database {self.name}: {exc}") from exc

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        finally:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

    def watch(self, should_abort: Callable[[], int]) -> None:
        self._conn.set_progress_handler(should_abort, _ABORT_CHECK_INSTRUCTIONS)

    def cancel(self) -> None:
        pass  # the progress handler of watch() stops it

    def purge_chunk(self, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` rows with ``created_at < cutoff`` in one
        ``BEGIN IMMEDIATE`` transaction; return how many. In a file with
        incremental auto_vacuum the freed pages go back to the OS in the same
        transaction. Blocks on the write lock (up to 5 s, then
        :exc:`sqlite3.OperationalError`, nothing deleted)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            deleted = delete_chunk(conn, cutoff, limit)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        return deleted

    def close(self) -> None:
        self._conn.close()
