"""Every statement of the summary (and so of ``report``) follows the time window.

A bounded window must be read through the ``created_at`` index: the plan of a
statement that walks the whole table (``SCAN memory_retrieval_failures``, with
or without another index) costs what a report of everything costs, whatever
the window. The statements are the ones the summary really runs, recorded
through the reader's public ``connection`` (SQLite's trace callback), on a
populated file with the reference application's table and indexes, and on
one with the library's.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from trio_failurelog import FailureReader
from trio_failurelog._readsql import normalise_query
from trio_failurelog._sqlite._dialect import NORMALISE_FUNCTION
from trio_failurelog._sqlite._schema import INSERT_SQL, ensure_schema
from trio_failurelog._table import TABLE
from trio_failurelog._timetext import format_created_at

from ._failuredb import REFERENCE_DDL

T0 = datetime(2024, 1, 1)
DAYS = 30
PER_DAY = 40


def _rows() -> list[tuple[Any, ...]]:
    rows = []
    for i in range(DAYS * PER_DAY):
        moment = T0 + timedelta(seconds=i * 86400 / PER_DAY)
        kind = ("no_hit", "low_confidence", "timeout", "error")[i % 4]
        rows.append(
            (
                i // 5, i % 5, kind, ("semantic", "keyword", "graph")[i % 3],
                f"Query {i % 50}", 8,
                0.4 + (i % 7) / 20 if kind == "low_confidence" else None,
                0.7 if kind == "low_confidence" else None,
                0, 10 + i % 300, None, None, format_created_at(moment),
            )
        )  # fmt: skip
    return rows


def _populate(path: Path, reference: bool) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    if reference:
        conn.executescript(REFERENCE_DDL)
    else:
        ensure_schema(conn)
    with conn:  # one transaction
        conn.execute("BEGIN")
        conn.executemany(INSERT_SQL, _rows())
    conn.close()
    return path


@pytest.fixture(params=["reference", "library"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return _populate(tmp_path / "plans.db", request.param == "reference")


def _statements(reader: FailureReader, **kwargs: Any) -> list[str]:
    """The SELECT statements one summary runs (with their parameters inlined)."""
    seen: list[str] = []
    conn: sqlite3.Connection = reader.connection
    conn.set_trace_callback(seen.append)
    try:
        reader.summary(**kwargs)
    finally:
        conn.set_trace_callback(None)
    return [sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]


def _plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]


def _walks_the_table(step: str) -> bool:
    # "SCAN t" reads every row; "SCAN t USING INDEX i" reads every row in i's
    # order. A covering index over the whole table is fine only for count(*).
    return step.startswith(f"SCAN {TABLE}")


WINDOWS = [
    {"since": T0 + timedelta(days=DAYS - 1)},
    {"since": T0 + timedelta(days=3), "until": T0 + timedelta(days=4)},
    {"until": T0 + timedelta(days=1)},
    {"since": T0 + timedelta(days=DAYS - 2), "failure_type": "low_confidence"},
    {"since": T0 + timedelta(days=DAYS - 2), "strategy": ["semantic", "graph"]},
    {"since": T0 + timedelta(days=DAYS - 2), "conversation_id": 235, "thresholds": [0.5]},
]


@pytest.mark.parametrize("window", WINDOWS)
def test_a_bounded_window_is_read_through_the_time_index(
    database: Path, window: dict[str, Any]
) -> None:
    with FailureReader(database) as reader:
        statements = _statements(reader, **window)
        summary = reader.summary(**window)
        conn: sqlite3.Connection = reader.connection
        assert summary.total > 0  # the window holds rows: every section runs
        assert len(statements) >= 6
        for sql in statements:
            if sql == f"SELECT count(*) FROM {TABLE}":
                continue  # table_total: the whole table by definition, on a covering index
            walks = [step for step in _plan(conn, sql) if _walks_the_table(step)]
            assert not walks, (sql, walks)


def test_the_plans_are_read_from_every_section(database: Path) -> None:
    # The check above is only as good as the statements it sees: the repeated
    # queries, the timeline, the latency and the what-ifs must all be there.
    with FailureReader(database) as reader:
        statements = " ".join(_statements(reader, since=T0 + timedelta(days=DAYS - 2)))
    for part in (
        "failurelog_normalise",
        "substr(created_at, 1, 19)",  # the timeline's bucket
        "latency_ms",
        "top_score >=",
        "min(created_at)",
    ):
        assert part in statements, part


def test_the_repeated_queries_normalise_each_row_once(database: Path) -> None:
    # normalise_query is a Python call per row, the report's costliest part:
    # a key SQLite computes both for the sort and for the result costs two.
    calls: list[object] = []

    def counting(text: object) -> str | None:
        calls.append(text)
        return normalise_query(text)

    with FailureReader(database) as reader:
        conn: sqlite3.Connection = reader.connection
        conn.create_function(NORMALISE_FUNCTION, 1, counting, deterministic=True)
        summary = reader.summary(since=T0 + timedelta(days=DAYS - 2))
        in_window = summary.total
        assert summary.repeated_queries  # the section ran, and found repeats
        assert len(calls) == in_window
