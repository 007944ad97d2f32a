"""The table: created as the reference describes, foreign tables checked, indexes not doubled;
new files with incremental auto_vacuum, other files left as they are."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trio_failurelog import SCHEMA_VERSION, TABLE, IncompatibleSchemaError
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._sqlite._schema import INSERT_SQL, check_table, ensure_schema
from trio_failurelog._table import COLUMNS

from ._failuredb import (
    REFERENCE_DDL,  # the table as the reference application creates it
    row,
    stored_rows,
)


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    """An autocommit connection to ``db_path``, closed after the test.

    Python 3.13 warns about a connection left to the garbage collector, and
    the suite turns warnings into errors (in whichever test collects it).
    """
    connection = sqlite3.connect(db_path, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def columns(conn: sqlite3.Connection) -> dict[str, tuple[str, int, str | None, int]]:
    return {
        row[1]: (row[2], row[3], row[4], row[5])
        for row in conn.execute(f"PRAGMA table_info({TABLE})")
    }


def indexed_columns(conn: sqlite3.Connection) -> list[str]:
    found: list[str] = []
    for index in conn.execute(f"PRAGMA index_list({TABLE})").fetchall():
        if index[3] == "c":  # created by CREATE INDEX, not by a constraint
            found.extend(row[2] for row in conn.execute(f"PRAGMA index_info('{index[1]}')"))
    return sorted(found)


def test_new_database_gets_the_reference_shape(conn: sqlite3.Connection) -> None:
    ensure_schema(conn)
    cols = columns(conn)
    assert list(cols) == ["id", *COLUMNS]
    assert cols["id"] == ("INTEGER", 0, None, 1)
    assert cols["turn_index"] == ("INTEGER", 1, "0", 0)
    assert cols["failure_type"][:2] == ("TEXT", 1)
    assert cols["top_score"][:2] == ("REAL", 0)
    assert cols["created_at"] == ("TEXT", 1, "datetime('now')", 0)
    assert indexed_columns(conn) == ["created_at", "failure_type", "retrieval_strategy"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (TABLE,)).fetchone()[0]
    assert "AUTOINCREMENT" in sql


def test_check_constraint_refuses_unknown_failure_type(conn: sqlite3.Connection) -> None:
    ensure_schema(conn)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text) "
            "VALUES ('NO_HIT', 's', 'q')"
        )


def test_defaults_match_the_reference(conn: sqlite3.Connection) -> None:
    ensure_schema(conn)
    conn.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text) "
        "VALUES ('timeout', 's', 'q')"
    )
    row = conn.execute(
        f"SELECT turn_index, query_len, result_count, latency_ms, created_at FROM {TABLE}"
    ).fetchone()
    assert row[:4] == (0, 0, 0, 0)
    assert len(row[4]) == len("YYYY-MM-DD HH:MM:SS")


def test_reference_database_is_accepted_without_new_indexes_or_version(
    conn: sqlite3.Connection,
) -> None:
    conn.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY)")
    conn.executescript(REFERENCE_DDL)
    ensure_schema(conn)
    ensure_schema(conn)  # idempotent
    assert indexed_columns(conn) == ["created_at", "failure_type", "retrieval_strategy"]
    # The file belongs to the other application: its user_version is not ours to set.
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0


def test_missing_index_is_added_to_an_existing_table(conn: sqlite3.Connection) -> None:
    conn.executescript(REFERENCE_DDL)
    conn.execute("DROP INDEX idx_mrf_strategy")  # named as in REFERENCE_DDL
    ensure_schema(conn)
    assert indexed_columns(conn) == ["created_at", "failure_type", "retrieval_strategy"]


def test_wider_declared_types_are_compatible(conn: sqlite3.Connection) -> None:
    ddl = REFERENCE_DDL.replace("latency_ms INTEGER", "latency_ms BIGINT").replace(
        "query_text TEXT", "query_text VARCHAR(2000)"
    )
    conn.executescript(ddl)
    ensure_schema(conn)


def test_extra_nullable_column_is_compatible(conn: sqlite3.Connection) -> None:
    conn.executescript(REFERENCE_DDL)
    conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN note TEXT")
    ensure_schema(conn)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ddl: ddl.replace("    edge_types TEXT,\n", ""), "'edge_types' is missing"),
        (
            lambda ddl: ddl.replace("top_score REAL", "top_score TEXT"),
            "'top_score' is TEXT, expected REAL",
        ),
        (
            lambda ddl: ddl.replace("error_context TEXT", "error_context TEXT NOT NULL"),
            "'error_context' is NOT NULL",
        ),
        (
            lambda ddl: ddl.replace(
                "created_at TEXT NOT NULL DEFAULT (datetime('now'))",
                "created_at TEXT NOT NULL DEFAULT (datetime('now')),\n    tenant TEXT NOT NULL",
            ),
            "'tenant' is NOT NULL without a default",
        ),
        (
            lambda ddl: ddl.replace("id INTEGER PRIMARY KEY AUTOINCREMENT", "id INTEGER"),
            "'id' is not the INTEGER PRIMARY KEY",
        ),
    ],
)
def test_incompatible_tables_are_refused_with_the_reason(
    conn: sqlite3.Connection, change: Callable[[str], str], message: str
) -> None:
    conn.executescript(change(REFERENCE_DDL))
    with pytest.raises(IncompatibleSchemaError, match=message):
        ensure_schema(conn)
    assert not conn.in_transaction


# ---------------------------------------------------------------- auto_vacuum


def _open_store(path: Path) -> None:
    SQLiteStore.open(path, busy_timeout=1.0, synchronous="NORMAL").close()


def _auto_vacuum(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("PRAGMA auto_vacuum").fetchone()[0])


def test_a_new_file_gets_incremental_auto_vacuum_and_the_reference_still_writes_it(
    db_path: Path,
) -> None:
    _open_store(db_path)
    assert _auto_vacuum(db_path) == 2  # INCREMENTAL
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        check_table(conn)
        conn.executescript(REFERENCE_DDL)  # the reference's migration: IF NOT EXISTS, no-ops
        conn.execute(INSERT_SQL, row("no_hit", "s", "from the reference", "2024-01-01 00:00:00"))
    _open_store(db_path)  # and the library opens it again
    assert [r["query_text"] for r in stored_rows(db_path)] == ["from the reference"]


@pytest.mark.parametrize(("pragma", "mode"), [("NONE", 0), ("FULL", 1)])
def test_a_file_of_the_reference_keeps_its_auto_vacuum(
    db_path: Path, pragma: str, mode: int
) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA auto_vacuum = {pragma}")
        conn.executescript(REFERENCE_DDL)
    _open_store(db_path)
    assert _auto_vacuum(db_path) == mode


def test_an_empty_file_that_already_has_a_header_keeps_its_auto_vacuum(db_path: Path) -> None:
    # Another program put the empty file in WAL mode: its first page is written.
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    _open_store(db_path)
    assert _auto_vacuum(db_path) == 0
