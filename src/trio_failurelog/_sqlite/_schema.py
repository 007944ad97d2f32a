"""The ``memory_retrieval_failures`` table in SQLite: DDL, INSERT and DELETE, and its checks.

The table is the reference application's, column for column, so that either
program can read and append to the other's file. Everything here that takes a
connection is synchronous sqlite3 and runs on a worker thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Final

from .._errors import IncompatibleSchemaError
from .._table import COLUMNS, SCHEMA_VERSION, TABLE

__all__ = [
    "AUTO_VACUUM_MODES",
    "DELETE_BEFORE_SQL",
    "INSERT_SQL",
    "check_table",
    "delete_chunk",
    "ensure_schema",
    "insert_rows_sql",
    "prepare_new_file",
    "table_exists",
]

_ROW_PLACEHOLDERS: Final = f"({', '.join('?' for _ in COLUMNS)})"

INSERT_SQL: Final = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES {_ROW_PLACEHOLDERS}"


#: Deletes one chunk: the rows with ``created_at`` before the first parameter
#: (text), at most the second. A bounded chunk keeps the write lock short.
DELETE_BEFORE_SQL: Final = (
    f"DELETE FROM {TABLE} WHERE id IN (SELECT id FROM {TABLE} WHERE created_at < ? LIMIT ?)"
)


def delete_chunk(conn: sqlite3.Connection, cutoff: str, limit: int) -> int:
    """Delete up to ``limit`` rows with ``created_at < cutoff`` (text); return how many.

    Runs inside the caller's write transaction. In a file with incremental
    auto_vacuum (every file the library creates) the pages the chunk freed
    are then given back to the OS in the same transaction, so that a purge
    shrinks the file as it goes, a chunk's worth at a time rather than all at
    the end under one long lock. In a file without (the reference
    application's, auto_vacuum NONE) they stay free pages that new rows reuse;
    ``purge --vacuum`` gives them back. Blocks.
    """
    deleted: int = conn.execute(DELETE_BEFORE_SQL, (cutoff, limit)).rowcount
    if deleted:
        give_back_free_pages(conn)
    return deleted


#: PRAGMA auto_vacuum's answers, by name.
AUTO_VACUUM_MODES: Final = {0: "none", 1: "full", 2: "incremental"}


def give_back_free_pages(conn: sqlite3.Connection) -> None:
    """In a file with incremental auto_vacuum, give every free page back to the
    OS (truncating the file at commit); elsewhere a no-op. Blocks.

    Each step of ``PRAGMA incremental_vacuum`` frees one page, so it must be
    run to the end. ``fetchall()`` does that from Python 3.12; Python 3.11's
    sqlite3 stops a statement that returns no columns after its first step
    (one page), so the statement is run again while pages stay free. The loop
    is bounded by the free pages counted first.
    """
    if AUTO_VACUUM_MODES.get(conn.execute("PRAGMA auto_vacuum").fetchone()[0]) != "incremental":
        return  # the pages stay free for new rows (purge --vacuum gives them back)
    free: int = conn.execute("PRAGMA freelist_count").fetchone()[0]
    for _ in range(free):
        conn.execute("PRAGMA incremental_vacuum").fetchall()
        if not conn.execute("PRAGMA freelist_count").fetchone()[0]:
            return


def insert_rows_sql(rows: int) -> str:
    """An INSERT of ``rows`` rows in one statement: ``VALUES (...), (...), ...``."""
    return f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES " + ", ".join(
        [_ROW_PLACEHOLDERS] * rows
    )


_CREATE_TABLE: Final = f"""
CREATE TABLE {TABLE} (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id      INTEGER,
    turn_index           INTEGER NOT NULL DEFAULT 0,
    failure_type         TEXT    NOT NULL
        CHECK (failure_type IN ('no_hit', 'low_confidence', 'timeout', 'error')),
    retrieval_strategy   TEXT    NOT NULL,
    query_text           TEXT    NOT NULL,
    query_len            INTEGER NOT NULL DEFAULT 0,
    top_score            REAL,
    confidence_threshold REAL,
    result_count         INTEGER NOT NULL DEFAULT 0,
    latency_ms           INTEGER NOT NULL DEFAULT 0,
    edge_types           TEXT,
    error_context        TEXT,
    created_at           TEXT    NOT NULL DEFAULT (datetime('now'))
)
"""

# The three indexed columns. An existing table that already has an index led by
# one of them (under any name) gets no second one: duplicate indexes would slow
# every insert of the application that shares the file.
_INDEXED_COLUMNS: Final = ("failure_type", "retrieval_strategy", "created_at")


@dataclass(frozen=True, slots=True)
class _Column:
    affinity: str
    nullable: bool


# What each column must be for our inserts (and the reference application's) to work.
_EXPECTED: Final = {
    "id": _Column("INTEGER", nullable=True),
    "conversation_id": _Column("INTEGER", nullable=True),
    "turn_index": _Column("INTEGER", nullable=False),
    "failure_type": _Column("TEXT", nullable=False),
    "retrieval_strategy": _Column("TEXT", nullable=False),
    "query_text": _Column("TEXT", nullable=False),
    "query_len": _Column("INTEGER", nullable=False),
    "top_score": _Column("REAL", nullable=True),
    "confidence_threshold": _Column("REAL", nullable=True),
    "result_count": _Column("INTEGER", nullable=False),
    "latency_ms": _Column("INTEGER", nullable=False),
    "edge_types": _Column("TEXT", nullable=True),
    "error_context": _Column("TEXT", nullable=True),
    "created_at": _Column("TEXT", nullable=False),
}


def _affinity(declared: str) -> str:
    """SQLite's column affinity for a declared type (section 3.1 of its datatype doc)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not upper or "BLOB" in upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def table_exists(conn: sqlite3.Connection) -> bool:
    """Whether the database of ``conn`` has the table. Blocks."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
    ).fetchone()
    return row is not None


def check_table(conn: sqlite3.Connection) -> None:
    """Raise :exc:`IncompatibleSchemaError` unless the existing table accepts our rows.

    Extra columns are allowed when they are nullable or have a default, since
    our inserts leave them out. Types are compared by SQLite affinity, so a
    ``BIGINT`` column passes where ``INTEGER`` is expected.
    """
    found = {
        name: (declared, bool(notnull), default, pk)
        for _cid, name, declared, notnull, default, pk in conn.execute(
            f"PRAGMA table_info({TABLE})"
        )
    }
    problems: list[str] = []
    for name, expected in _EXPECTED.items():
        if name not in found:
            problems.append(f"column {name!r} is missing")
            continue
        declared, notnull, _default, pk = found[name]
        affinity = _affinity(declared)
        # A NUMERIC column stores our integers and reals unchanged, and text as text.
        if affinity != expected.affinity and not (
            affinity == "NUMERIC" and expected.affinity != "TEXT"
        ):
            problems.append(
                f"column {name!r} is {declared or 'untyped'}, expected {expected.affinity}"
            )
        if notnull and expected.nullable and name != "id":
            problems.append(f"column {name!r} is NOT NULL, but must accept NULL")
    if "id" in found and found["id"][3] != 1:
        problems.append("column 'id' is not the INTEGER PRIMARY KEY")
    for name, (_declared, notnull, default, pk) in found.items():
        if name not in _EXPECTED and notnull and default is None and not pk:
            problems.append(f"extra column {name!r} is NOT NULL without a default")
    if problems:
        raise IncompatibleSchemaError(
            f"table {TABLE!r} has an incompatible shape: " + "; ".join(problems)
        )


def _indexed_leading_columns(conn: sqlite3.Connection) -> set[str]:
    leading: set[str] = set()
    for row in conn.execute(f"PRAGMA index_list({TABLE})"):
        index_name = row[1]
        columns = conn.execute(f"PRAGMA index_info({_quote(index_name)})").fetchall()
        if columns:
            first = min(columns, key=lambda c: c[0])
            leading.add(first[2])
    return leading


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def prepare_new_file(conn: sqlite3.Connection) -> None:
    """Give a new, still empty database file incremental auto_vacuum; nothing else.

    Call before anything writes to the file, ``PRAGMA journal_mode = WAL``
    included: SQLite fixes auto_vacuum when it writes the first page, and only
    a full ``VACUUM`` changes it afterwards. With it, a purge gives the pages
    it frees back to the OS (see :func:`delete_chunk`). A file that already
    has pages keeps its setting: the application sharing it chose it, and a
    ``full`` file already shrinks on every commit. Blocks.
    """
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table and its indexes when missing, or check the existing table.

    Sets ``PRAGMA user_version`` to :data:`SCHEMA_VERSION` only on a database
    that was empty, since a shared file's ``user_version`` belongs to the
    application that owns it. Runs in one transaction; the connection must be
    in autocommit mode (``isolation_level=None``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if table_exists(conn):
            check_table(conn)
        else:
            empty = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
            conn.execute(_CREATE_TABLE)
            if empty:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        indexed = _indexed_leading_columns(conn)
        for column in _INDEXED_COLUMNS:
            if column not in indexed:
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS idx_{TABLE}_{column} ON {TABLE} ({column})"
                )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
