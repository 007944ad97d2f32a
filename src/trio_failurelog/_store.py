"""SQLite storage: the synchronous half of the writer.

Every method here blocks and is meant to run on a worker thread (the logger
calls them through :class:`~trio_failurelog._threads.SerialThread`); the event
loop's thread never touches SQLite. One :class:`SQLiteStore` owns one
connection and is used by one thread at a time.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from ._errors import DatabaseSetupError, IncompatibleSchemaError
from ._record import RetrievalFailureRecord, RetrievalFailureType
from ._schema import INSERT_SQL, TABLE, ensure_schema

__all__ = [
    "BatchOutcome",
    "Database",
    "QueuedRecord",
    "SQLiteStore",
    "is_transient",
    "purge_cutoff",
]

#: What the public API accepts as a database: a path, or ``":memory:"``.
Database = str | os.PathLike[str]

#: A record on its way to the database, with the ``time.time()`` of its ``log()``.
QueuedRecord = tuple[RetrievalFailureRecord, float]

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

# SQLite's primary result codes for "someone else holds the lock": worth retrying.
_SQLITE_BUSY: Final = 5
_SQLITE_LOCKED: Final = 6

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

_TYPE_TEXT: Final = {member: member.value for member in RetrievalFailureType}


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is SQLite's busy/locked, which goes away when retried."""
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    )


def purge_cutoff(now: float, retention_days: float) -> str:
    """The ``created_at`` text before which rows are older than ``retention_days``.

    Whole seconds, like the reference application's own purge, so that both
    compare ``created_at`` as text the same way.
    """
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now - retention_days * 86400))


@dataclass(slots=True)
class BatchOutcome:
    """What became of a batch: how many rows were committed, why the others were not."""

    written: int = 0
    rejected: list[str] = field(default_factory=list)


def _create_owner_only(path: str) -> None:
    """Create an empty database file readable by its owner only.

    Query texts can hold user data. SQLite creates its ``-wal`` and ``-shm``
    files with the database file's permissions, so they follow.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class SQLiteStore:
    """One connection to a database holding ``memory_retrieval_failures``.

    Every method blocks. Use from one thread at a time.
    """

    def __init__(self, conn: sqlite3.Connection, name: str) -> None:
        self._conn = conn
        self.name = name
        # created_at of consecutive records mostly shares its whole-second prefix.
        self._second = -1
        self._second_text = ""

    @classmethod
    def open(
        cls,
        database: Database,
        *,
        busy_timeout: float,
        synchronous: Synchronous,
    ) -> SQLiteStore:
        """Open (creating when missing) the database and its table; WAL on.

        Raises :exc:`DatabaseSetupError` (or its subclass
        :exc:`IncompatibleSchemaError`) when the file cannot be opened or
        created, is not an SQLite database, or holds a table of another shape.
        """
        path = os.fspath(database)
        if not isinstance(path, str):
            raise TypeError(
                f"database must be a str or os.PathLike[str], not {type(path).__name__}"
            )
        name = repr(path)
        try:
            if path != ":memory:" and not path.startswith("file:"):
                _create_owner_only(path)
            conn = sqlite3.connect(
                path,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # used from trio's worker threads, one at a time
                timeout=busy_timeout,
                uri=path.startswith("file:"),
                cached_statements=16,
            )
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseSetupError(f"cannot open database {name}: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode not in ("wal", "memory"):
                raise DatabaseSetupError(
                    f"cannot put database {name} in WAL mode (it stays in {mode!r})"
                )
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            ensure_schema(conn)
        except IncompatibleSchemaError as exc:
            conn.close()
            raise IncompatibleSchemaError(f"database {name}: {exc}") from None
        except DatabaseSetupError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise DatabaseSetupError(f"cannot use database {name}: {exc}") from exc
        return cls(conn, name)

    def _created_at(self, stamp: float) -> str:
        second = int(stamp)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((stamp - second) * 1000):03d}"

    def _row(self, item: QueuedRecord) -> tuple[object, ...]:
        record, stamp = item
        edge_types = record.edge_types
        return (
            record.conversation_id,
            record.turn_index,
            _TYPE_TEXT[record.failure_type],
            record.retrieval_strategy,
            record.query_text,
            record.query_len,
            record.top_score,
            record.confidence_threshold,
            record.result_count,
            record.latency_ms,
            None
            if edge_types is None
            else json.dumps(edge_types, ensure_ascii=False, separators=(",", ":")),
            record.error_context,
            record.created_at or self._created_at(stamp),
        )

    def write_batch(self, items: Sequence[QueuedRecord]) -> BatchOutcome:
        """Insert ``items`` in one transaction.

        When a row is refused (a constraint, a trigger), the batch is written
        again row by row, each under a savepoint, so the others still land.
        Raises :exc:`sqlite3.Error` for trouble that concerns the whole batch
        (busy, I/O, disk full); nothing is committed then.
        """
        rows = [self._row(item) for item in items]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(INSERT_SQL, rows)
            conn.execute("COMMIT")
            return BatchOutcome(written=len(rows))
        except _ROW_ERRORS:
            conn.execute("ROLLBACK")
            return self._write_one_by_one(rows)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _write_one_by_one(self, rows: list[tuple[object, ...]]) -> BatchOutcome:
        conn = self._conn
        outcome = BatchOutcome()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                conn.execute("SAVEPOINT one_row")
                try:
                    conn.execute(INSERT_SQL, row)
                except _ROW_ERRORS as exc:
                    conn.execute("ROLLBACK TO one_row")
                    outcome.rejected.append(f"{type(exc).__name__}: {exc}")
                else:
                    outcome.written += 1
                conn.execute("RELEASE one_row")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcome

    def purge_chunk(self, older_than: str, limit: int) -> int:
        """Delete up to ``limit`` rows with ``created_at < older_than``; return how many.

        A bounded chunk keeps the write lock short, so that a large purge does
        not stall other writers of the file.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = conn.execute(
                f"DELETE FROM {TABLE} WHERE id IN "
                f"(SELECT id FROM {TABLE} WHERE created_at < ? LIMIT ?)",
                (older_than, limit),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return cursor.rowcount

    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL when it is the last)."""
        self._conn.close()
