"""The SQLite store: :class:`SQLiteStore`, the ``Store`` (``_protocols.py``) for a file.

Every method here blocks and is meant to run on a worker thread (the logger
calls them through :class:`~trio_failurelog._threads.SerialThread`); the event
loop's thread never touches SQLite. One :class:`SQLiteStore` owns one
connection and is used by one thread at a time.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from .._database import BatchOutcome, Database, QueuedRecord, StoreKind, Synchronous
from .._errors import DatabaseSetupError, IncompatibleSchemaError
from .._pacing import WRITER_GAP
from .._table import (
    COLUMNS,
    TYPE_TEXT,
    RowByRow,
    SecondText,
    insert_one_by_one,
    json_array,
    utc_second_text,
)
from ._schema import INSERT_SQL, delete_chunk, ensure_schema, insert_rows_sql, prepare_new_file

__all__ = [
    "DatabaseFileError",
    "SQLiteStore",
    "is_transient",
]

T = TypeVar("T")

log = logging.getLogger("trio_failurelog")

# SQLite's primary result codes for "someone else holds the lock": worth retrying.
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6

# Primary result codes after which the connection is closed and the file opened
# afresh before the next write: the file may have been made read-only, damaged,
# or swapped under the connection (SQLite's READONLY, IOERR, CORRUPT, CANTOPEN,
# NOTADB). A new connection sees the file as it is now; when the fault has
# cleared (permission restored, file restored), writing resumes.
_RECONNECT_CODES: Final = frozenset({8, 10, 11, 14, 26})

# How long opening waits for the write lock it needs to check or create the table.
# ``busy_timeout`` is meant for writes, which the logger retries; setup is not
# retried, so a writer of another process holding the lock for a moment when
# the logger starts (or reopens after a fault) must not make it fail.
_SETUP_BUSY_TIMEOUT: Final = 5.0

# Errors that condemn one row rather than the whole batch: a constraint or a
# trigger of the application sharing the file refusing it, a value SQLite will
# not bind. A batch that hits one is written again row by row.
_ROW_ERRORS: Final = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    OverflowError,
)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's busy/locked, which goes away when retried."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    )


class DatabaseFileError(Exception):
    """The file at the database's path is no longer the database this store wrote to.

    It was removed (or its directory was), replaced by another file, or
    overwritten with something that is not an SQLite database. Raised by
    :meth:`SQLiteStore.write_batch` and :meth:`SQLiteStore.purge_chunk`; the
    batch concerned is not written. The next call opens the path afresh.
    """


def _create_owner_only(path: str) -> None:
    """Create an empty database file readable by its owner only.

    Query texts can hold user data. SQLite creates its ``-wal`` and ``-shm``
    files with the database file's permissions, so they follow. An existing
    file keeps its permissions.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def _connect(
    path: str,
    name: str,
    *,
    busy_timeout: float,
    synchronous: Synchronous,
    setup_timeout: float = _SETUP_BUSY_TIMEOUT,
) -> sqlite3.Connection:
    """Open ``path`` (creating it when missing, with incremental auto_vacuum), turn WAL
    on, check or create the table, waiting up to ``setup_timeout`` (at least
    ``busy_timeout``) for a lock another connection holds."""
    setup_wait = max(busy_timeout, setup_timeout)
    try:
        if path != ":memory:" and not path.startswith("file:"):
            _create_owner_only(path)
        conn = sqlite3.connect(
            path,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # used from trio's worker threads, one at a time
            timeout=setup_wait,
            uri=path.startswith("file:"),
            cached_statements=16,
        )
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseSetupError(f"cannot open database {name}: {exc}") from exc
    try:
        prepare_new_file(conn)  # before WAL: switching to WAL writes the first page
        mode = _enable_wal(conn, setup_wait)
        if mode not in ("wal", "memory"):
            raise DatabaseSetupError(
                f"cannot put database {name} in WAL mode (it stays in {mode!r})"
            )
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        ensure_schema(conn)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    except IncompatibleSchemaError as exc:
        conn.close()
        raise IncompatibleSchemaError(f"database {name}: {exc}") from None
    except DatabaseSetupError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise DatabaseSetupError(f"cannot use database {name}: {exc}") from exc
    return conn


def _enable_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode = WAL``, retried while another connection is writing.

    Switching a rollback-journal file to WAL needs it to itself, and SQLite
    answers busy at once rather than waiting (waiting could deadlock), so the
    connection's busy timeout does not help here.
    """
    give_up = time.monotonic() + timeout
    while True:
        try:
            mode: str = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if not is_transient(exc) or time.monotonic() >= give_up:
                raise
            time.sleep(0.02)
        else:
            return mode


def _close_quietly(conn: sqlite3.Connection) -> None:
    """Close a connection whose file may be gone or foreign, skipping the final
    checkpoint where Python lets us (3.12+): it would copy pages into that file."""
    no_checkpoint = getattr(sqlite3, "SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE", None)
    with contextlib.suppress(sqlite3.Error):
        if no_checkpoint is not None:
            conn.setconfig(no_checkpoint, True)  # type: ignore[attr-defined,unused-ignore]
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    with contextlib.suppress(sqlite3.Error):
        conn.close()


def _needs_reconnect(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.DatabaseError)
        and code is not None
        and (code & 0xFF in _RECONNECT_CODES)
    )


class SQLiteStore:
    """One connection to a database holding ``memory_retrieval_failures``.

    Every method blocks. Use from one thread at a time.

    For a database given as a plain path, the store also watches the file:
    before each write it checks (one ``stat``) that the path still names the
    file it opened, and again after each commit, so that rows committed into a
    file that was removed or replaced meanwhile are reported as not written
    (:exc:`DatabaseFileError`) rather than acknowledged into nothing. When the
    file changed in a way its own commits do not explain, a fresh read-only
    connection checks that it is still an SQLite database. After such a fault,
    or an I/O, read-only or corruption error, the connection is dropped and the
    path opened again (creating the file when missing) by the next call, so
    writing resumes once the fault clears.
    """

    kind: StoreKind = "sqlite"
    purge_gap: float = WRITER_GAP

    def __init__(
        self,
        conn: sqlite3.Connection,
        name: str,
        *,
        path: str | None = None,
        busy_timeout: float = 5.0,
        synchronous: Synchronous = "NORMAL",
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.name = name
        # The file to watch: None for ":memory:" and URIs, which are not reopened.
        self._path = path
        self._busy_timeout = busy_timeout
        self._synchronous: Synchronous = synchronous
        self._identity: tuple[int, int] | None = None
        self._seen: tuple[int, int] | None = None
        if path is not None:
            self._remember(os.stat(path))
        self._second_text = SecondText()

    @classmethod
    def open(
        cls,
        database: Database,
        *,
        busy_timeout: float,
        synchronous: Synchronous,
        setup_timeout: float = _SETUP_BUSY_TIMEOUT,
    ) -> SQLiteStore:
        """Open (creating when missing) the database and its table; WAL on.

        Blocks, waiting up to ``setup_timeout`` seconds (at least 5) for a lock
        another connection holds. Raises :exc:`DatabaseSetupError` (or its subclass
        :exc:`IncompatibleSchemaError`) when the file cannot be opened or
        created, is not an SQLite database, or holds a table of another shape.
        """
        path = os.fspath(database)
        if not isinstance(path, str):
            raise TypeError(
                f"database must be a str or os.PathLike[str], not {type(path).__name__}"
            )
        name = repr(path)
        conn = _connect(
            path,
            name,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
            setup_timeout=max(setup_timeout, _SETUP_BUSY_TIMEOUT),
        )
        watched = None if path == ":memory:" or path.startswith("file:") else path
        try:
            return cls(conn, name, path=watched, busy_timeout=busy_timeout, synchronous=synchronous)
        except OSError as exc:  # removed again between connecting and stat()
            conn.close()
            raise DatabaseSetupError(f"cannot open database {name}: {exc}") from exc

    # ------------------------------------------------------------ watching the file

    def _remember(self, stat: os.stat_result) -> None:
        self._identity = (stat.st_dev, stat.st_ino)
        self._seen = (stat.st_mtime_ns, stat.st_size)

    def _lost(self, what: str) -> DatabaseFileError:
        """Drop the connection (the next call reopens) and describe the fault."""
        conn, self._conn = self._conn, None
        if conn is not None:
            _close_quietly(conn)
        return DatabaseFileError(f"database file {self.name} {what}")

    def _stat(self, when: str) -> os.stat_result:
        assert self._path is not None
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            raise self._lost(f"was removed (or its directory was){when}") from None
        except OSError as exc:
            raise self._lost(f"cannot be checked{when}: {exc}") from exc
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise self._lost(f"was replaced by another file{when}")
        return stat

    def _check_header(self) -> None:
        """Whether a fresh connection still reads the path as an SQLite database."""
        assert self._path is not None
        uri = "file:" + self._path.replace("%", "%25").replace("?", "%3f").replace("#", "%23")
        try:
            probe = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=self._busy_timeout)
        except sqlite3.Error as exc:
            raise self._lost(f"cannot be opened: {exc}") from exc
        try:
            probe.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as exc:
            if is_transient(exc):
                raise
            raise self._lost(f"was overwritten or damaged: {exc}") from exc
        finally:
            probe.close()

    def _reopen(self) -> sqlite3.Connection:
        assert self._path is not None
        conn = _connect(
            self._path, self.name, busy_timeout=self._busy_timeout, synchronous=self._synchronous
        )
        try:
            self._remember(os.stat(self._path))
        except OSError as exc:
            conn.close()
            raise self._lost(f"cannot be checked: {exc}") from exc
        self._conn = conn
        log.info("trio_failurelog: reopened database %s", self.name)
        return conn

    def _ready(self) -> sqlite3.Connection:
        """The connection, after checking that the path still names our database.

        Opens the path again when the last call lost the connection, or when
        the file turns out removed or replaced now (a removed file is created
        anew, so only the rows committed before are gone). Raises
        :exc:`DatabaseFileError` or :exc:`DatabaseSetupError` when that fails.
        """
        conn = self._conn
        if conn is None:
            return self._reopen()
        if self._path is None:
            return conn
        try:
            stat = self._stat("")
            if (stat.st_mtime_ns, stat.st_size) != self._seen:
                # Someone else wrote to the file: another writer's checkpoint, or not.
                self._check_header()
                self._seen = (stat.st_mtime_ns, stat.st_size)
        except DatabaseFileError as fault:
            try:
                return self._reopen()
            except DatabaseSetupError:
                raise fault from None
        return conn

    def _confirm(self) -> None:
        """After a commit: the path must still name the file the rows went into."""
        if self._path is not None:
            stat = self._stat(" while a batch was written; the batch did not reach it")
            self._seen = (stat.st_mtime_ns, stat.st_size)

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction on a checked connection."""
        conn = self._ready()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn is conn:
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                if _needs_reconnect(exc):
                    self._conn = None
                    _close_quietly(conn)
            raise
        self._confirm()
        return result

    # ------------------------------------------------------------ writing

    def _created_at(self, stamp: float) -> str:
        """``stamp`` as ``created_at`` text, to the millisecond."""
        second = int(stamp)
        return f"{self._second_text(second)}.{int((stamp - second) * 1000):03d}"

    def _row(self, item: QueuedRecord) -> tuple[object, ...]:
        record, stamp = item
        edge_types = record.edge_types
        return (
            record.conversation_id,
            record.turn_index,
            TYPE_TEXT[record.failure_type],
            record.retrieval_strategy,
            record.query_text,
            record.query_len,
            record.top_score,
            record.confidence_threshold,
            record.result_count,
            record.latency_ms,
            None if edge_types is None else json_array(edge_types),
            record.error_context,
            record.created_at or self._created_at(stamp),
        )

    def write_batch(
        self, items: Sequence[QueuedRecord], *, sent: Callable[[], object] | None = None
    ) -> BatchOutcome:
        """Insert ``items`` in one transaction.

        ``sent`` is never called: the rows are bound, in Python, as SQLite
        steps through them, so no part of the call waits without the GIL long
        enough to be worth taking the next batch during it.

        When a row is refused (a constraint, a trigger), the batch is written
        again row by row, each under a savepoint, so the others still land.
        Raises :exc:`sqlite3.Error` for trouble that concerns the whole batch
        (busy, I/O, disk full), :exc:`DatabaseFileError` when the file was
        removed, replaced or overwritten, :exc:`DatabaseSetupError` when it
        cannot be opened again; nothing is acknowledged then.
        """
        rows = [self._row(item) for item in items]

        def insert_all(conn: sqlite3.Connection) -> None:
            _insert_many(conn, rows)

        try:
            self._transaction(insert_all)
        except _ROW_ERRORS:
            return self._transaction(
                lambda conn: insert_one_by_one(conn.execute, rows, _ROW_BY_ROW, _refusal)
            )
        return BatchOutcome(written=len(rows))

    def purge_chunk(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` rows created before ``older_than`` (POSIX seconds).

        Compares whole seconds as text, like the reference application's purge.
        In a file with incremental auto_vacuum, the pages freed go back to the
        OS in the same transaction.
        """
        cutoff = utc_second_text(older_than)

        def delete(conn: sqlite3.Connection) -> int:
            # A bounded chunk keeps the write lock short, so that a large purge
            # does not stall other writers of the file.
            return delete_chunk(conn, cutoff, limit)

        return self._transaction(delete)

    def is_transient(self, error: Exception) -> bool:
        """Whether ``error`` is SQLite's busy/locked, which goes away when retried."""
        return is_transient(error)

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL when it is the last)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


# Rows per INSERT statement. sqlite3 releases the GIL around every statement
# step, and under a busy event loop each re-acquisition can wait for the loop's
# thread: fewer, larger statements keep the writer from starving (measured 11x
# more rows written under an overloaded loop, with 128 rows; no change when idle).
_ROWS_PER_STATEMENT: Final = 128


def _insert_many(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Insert ``rows`` in order, many to a statement."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(COLUMNS)
    per_statement = max(1, min(_ROWS_PER_STATEMENT, limit))
    whole = len(rows) - len(rows) % per_statement
    if whole and per_statement > 1:
        conn.executemany(
            _multi_row_sql(per_statement),
            [
                tuple(itertools.chain.from_iterable(rows[start : start + per_statement]))
                for start in range(0, whole, per_statement)
            ],
        )
    else:
        whole = 0
    if whole < len(rows):
        conn.executemany(INSERT_SQL, rows[whole:])


@functools.cache
def _multi_row_sql(rows: int) -> str:
    return insert_rows_sql(rows)


_ROW_BY_ROW: Final = RowByRow(
    INSERT_SQL,
    savepoint="SAVEPOINT one_row",
    rollback="ROLLBACK TO one_row",
    release="RELEASE one_row",
)


def _refusal(error: Exception) -> str | None:
    """Why SQLite refused a row, or ``None`` for an error of the whole batch."""
    return f"{type(error).__name__}: {error}" if isinstance(error, _ROW_ERRORS) else None
