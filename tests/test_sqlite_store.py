"""SQLiteStore's write path: rows in order, many to a statement, edge types as JSON."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog import TABLE, open_failure_logger
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._sqlite._schema import ensure_schema
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


def _reference_file(path: Path) -> None:
    """A file as the reference application makes it: rollback journal, its table."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        ensure_schema(conn)
    finally:
        conn.close()


async def test_opening_waits_for_a_lock_as_long_as_retry_timeout(tmp_path: Path) -> None:
    """Another connection holding the file's lock when a logger opens it (a
    ``purge --vacuum``, say) is the busy database ``retry_timeout`` is about:
    opening waits for it that long, past the 5 s it always waited, rather than
    failing the program's start. Real time, as SQLite's busy handler sleeps:
    the holder lets go once 5.5 s have passed, and the open must then succeed."""
    db = tmp_path / "reference.db"
    _reference_file(db)
    holding = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")  # rollback journal: readers wait too
            holding.set()
            time.sleep(5.5)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        await trio.to_thread.run_sync(holding.wait)
        async with open_failure_logger(db, retry_timeout=20) as failures:
            failures.log(record())
        assert failures.statistics().written == 1
    finally:
        holder.join()
