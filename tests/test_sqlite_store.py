"""SQLiteStore's write path: rows in order, many to a statement, edge types as JSON."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog import TABLE
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._table import json_array

from ._helpers import queries, record


def open_store(path: Path) -> SQLiteStore:
    return SQLiteStore.open(path, busy_timeout=0.1, synchronous="NORMAL")


@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=20), max_size=6))
def test_edge_types_json_is_what_json_dumps_writes(texts: list[str]) -> None:
    expected = json.dumps(tuple(texts), ensure_ascii=False, separators=(",", ":"))
    assert json_array(tuple(texts)) == expected
    assert json.loads(expected) == texts


@pytest.mark.parametrize("count", [1, 127, 128, 129, 300, 512])
def test_batches_of_any_size_land_in_order(db_path: Path, count: int) -> None:
    store = open_store(db_path)
    try:
        outcome = store.write_batch([(record(i), 1_700_000_000.0 + i) for i in range(count)])
    finally:
        store.close()
    assert (outcome.written, outcome.rejected) == (count, [])
    assert queries(db_path) == [f"query {i}" for i in range(count)]


def test_statement_size_respects_sqlites_variable_limit(db_path: Path) -> None:
    store = open_store(db_path)
    try:
        # 13 columns: a limit of 40 variables leaves room for 3 rows a statement.
        store._ready().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 40)
        outcome = store.write_batch([(record(i), 1_700_000_000.0) for i in range(10)])
    finally:
        store.close()
    assert outcome.written == 10
    assert queries(db_path) == [f"query {i}" for i in range(10)]


def test_one_refused_row_in_a_multi_row_statement_costs_only_that_row(db_path: Path) -> None:
    store = open_store(db_path)
    conn = sqlite3.connect(db_path)
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} WHEN NEW.query_text = 'query 150' "
        "BEGIN SELECT RAISE(ABORT, 'not this one'); END"
    )
    conn.close()
    try:
        outcome = store.write_batch([(record(i), 1_700_000_000.0) for i in range(300)])
    finally:
        store.close()
    assert outcome.written == 299
    assert len(outcome.rejected) == 1
    assert "not this one" in outcome.rejected[0]
    assert queries(db_path) == [f"query {i}" for i in range(300) if i != 150]
