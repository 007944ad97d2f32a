"""Helpers for the read-side tests: databases with known rows, written by plain sqlite3."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from trio_failurelog._sqlite._schema import INSERT_SQL, ensure_schema
from trio_failurelog._table import COLUMNS, TABLE

# The table as the reference application's migration creates it.
REFERENCE_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER,
    turn_index INTEGER NOT NULL DEFAULT 0,
    failure_type TEXT NOT NULL CHECK (failure_type IN
        ('no_hit', 'low_confidence', 'timeout', 'error')),
    retrieval_strategy TEXT NOT NULL,
    query_text TEXT NOT NULL,
    query_len INTEGER NOT NULL DEFAULT 0,
    top_score REAL,
    confidence_threshold REAL,
    result_count INTEGER NOT NULL DEFAULT 0,
    latency_ms INTEGER NOT NULL DEFAULT 0,
    edge_types TEXT,
    error_context TEXT,
    created_at TEXT NOT NULL DEFAULT (datetime('now'))
);
CREATE INDEX IF NOT EXISTS idx_mrf_type ON {TABLE}(failure_type);
CREATE INDEX IF NOT EXISTS idx_mrf_strategy ON {TABLE}(retrieval_strategy);
CREATE INDEX IF NOT EXISTS idx_mrf_created ON {TABLE}(created_at);
"""


def row(
    failure_type: str,
    strategy: str,
    query: str,
    created_at: str,
    *,
    conversation_id: int | None = None,
    turn_index: int = 0,
    top_score: float | None = None,
    threshold: float | None = None,
    result_count: int = 0,
    latency_ms: int = 0,
    edge_types: Sequence[str] | str | None = None,
    error_context: str | None = None,
) -> tuple[Any, ...]:
    """One row in :data:`COLUMNS` order; ``edge_types`` as a list is JSON-encoded."""
    edges = json.dumps(list(edge_types)) if isinstance(edge_types, list | tuple) else edge_types
    return (
        conversation_id,
        turn_index,
        failure_type,
        strategy,
        query,
        len(query.encode()),
        top_score,
        threshold,
        result_count,
        latency_ms,
        edges,
        error_context,
        created_at,
    )


def make_db(path: Path, rows: Iterable[tuple[Any, ...]], *, wal: bool = True) -> Path:
    """Create ``path`` with our schema (WAL) and insert ``rows``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        ensure_schema(conn)
        insert(conn, rows)
    finally:
        conn.close()
    return path


def insert(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Insert ``rows`` in one transaction."""
    conn.execute("BEGIN")
    conn.executemany(INSERT_SQL, list(rows))
    conn.execute("COMMIT")


def stored_rows(path: Path) -> list[dict[str, Any]]:
    """Every row as stored, oldest id first."""
    conn = sqlite3.connect(path)
    try:
        cursor = conn.execute(f"SELECT id, {', '.join(COLUMNS)} FROM {TABLE} ORDER BY id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor]
    finally:
        conn.close()
