"""The PostgreSQL interface: URL forms, the table both ways, its checks, concurrent creators."""

from __future__ import annotations

import contextlib
import datetime
import json
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trio

from trio_failurelog import (
    DatabaseSetupError,
    FailureReader,
    IncompatibleSchemaError,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._backends import open_store
from trio_failurelog._database import StoreOptions
from trio_failurelog._postgres import PostgresStore
from trio_failurelog._postgres._schema import CREATE_TABLE, ensure_schema
from trio_failurelog._table import TABLE

from ._server import PgServer

# The reference application's own migration, written out here rather than taken
# from the library: the tests must notice if the library's DDL drifts from it.
REFERENCE_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT,
    turn_index BIGINT NOT NULL DEFAULT 0,
    failure_type TEXT NOT NULL CHECK (failure_type IN
        ('no_hit', 'low_confidence', 'timeout', 'error')),
    retrieval_strategy TEXT NOT NULL,
    query_text TEXT NOT NULL,
    query_len BIGINT NOT NULL DEFAULT 0,
    result_count BIGINT NOT NULL DEFAULT 0,
    top_score REAL,
    confidence_threshold REAL,
    latency_ms BIGINT NOT NULL DEFAULT 0,
    edge_types TEXT,
    error_context TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX IF NOT EXISTS idx_mrf_type ON {TABLE}(failure_type);
CREATE INDEX IF NOT EXISTS idx_mrf_strategy ON {TABLE}(retrieval_strategy);
CREATE INDEX IF NOT EXISTS idx_mrf_created ON {TABLE}(created_at);
"""


def float4(value: float) -> float:
    """``value`` rounded to a 4-byte float, as a REAL column stores it."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def rows(admin: Any, columns: str = "*") -> list[tuple[Any, ...]]:
    return list(admin.execute(f"SELECT {columns} FROM {TABLE} ORDER BY id"))


async def log_all(database: str, records: list[RetrievalFailureRecord], **settings: Any) -> Any:
    with trio.fail_after(30):
        async with open_failure_logger(database, **settings) as failures:
            assert failures.store_kind == "postgresql"
            for record in records:
                await failures.send(record)
        return failures.statistics()


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg", "POSTGRES+psycopg2"]
)
async def test_both_schemes_over_tcp(
    pg_server: PgServer, pg_db: str, admin: Any, scheme: str
) -> None:
    records = [RetrievalFailureRecord("no_hit", "semantic", f"q{i}") for i in range(100)]
    url = pg_server.url(pg_db, scheme=scheme)  # with a driver suffix as SQLAlchemy writes it
    stats = await log_all(url, records)
    assert (stats.accepted, stats.written, stats.failed) == (100, 100, 0)
    assert [r[0] for r in rows(admin, "query_text")] == [f"q{i}" for i in range(100)]
    with FailureReader(url) as reader:
        assert reader.count() == 100


async def test_unix_socket_and_libpq_parameters(
    pg_server: PgServer, pg_db: str, admin: Any
) -> None:
    url = pg_server.socket_url(pg_db) + "&application_name=fl-test&connect_timeout=3"
    store = await trio.to_thread.run_sync(open_store, url, StoreOptions())
    try:
        seen = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fl-test'"
        ).fetchone()[0]
        assert seen == 1
    finally:
        store.close()
    stats = await log_all(url, [RetrievalFailureRecord("timeout", "graph", "over the socket")])
    assert stats.written == 1
    assert rows(admin, "query_text") == [("over the socket",)]


async def test_our_rows_read_by_plain_sql(pg_url: str, admin: Any) -> None:
    record = RetrievalFailureRecord(
        "low_confidence",
        "hybrid",
        "what\tdid I say\nabout \\ backslashes?",
        conversation_id=7,
        turn_index=3,
        top_score=0.123456789,
        confidence_threshold=0.7,
        result_count=4,
        latency_ms=12,
        edge_types=("cites", "mentions \u00e9"),
        error_context="ctx",
    )
    before = time.time()
    stats = await log_all(pg_url, [record, RetrievalFailureRecord("error", "bm25", "q")])
    after = time.time()
    assert stats.written == 2
    (first, second) = rows(admin)
    (_, conversation_id, turn, ftype, strategy, query, qlen, top, threshold, count, latency,
     edges, context, created) = first  # fmt: skip
    assert (conversation_id, turn, ftype, strategy, query) == (
        7, 3, "low_confidence", "hybrid", record.query_text,
    )  # fmt: skip
    assert (qlen, count, latency, context) == (len(record.query_text), 4, 12, "ctx")
    # REAL is a 4-byte float: the score reads back rounded, not as logged.
    assert top != 0.123456789
    assert float4(top) == float4(0.123456789)
    assert abs(top - 0.123456789) < 1e-8
    assert float4(threshold) == float4(0.7)
    (exact,) = admin.execute(f"SELECT top_score::float8 FROM {TABLE} ORDER BY id").fetchone()
    assert exact == float4(0.123456789)
    assert json.loads(edges) == ["cites", "mentions \u00e9"]
    assert created.tzinfo is not None
    assert before - 0.001 <= created.timestamp() <= after + 0.001
    assert (second[1], second[7], second[11]) == (None, None, None)
    assert second[0] > first[0]


async def test_created_at_text_on_a_record_is_utc(pg_url: str, admin: Any) -> None:
    record = RetrievalFailureRecord("no_hit", "s", "q", created_at="2024-02-29 23:59:58.25")
    assert (await log_all(pg_url, [record])).written == 1
    (created,) = admin.execute(f"SELECT created_at FROM {TABLE}").fetchone()
    assert created == datetime.datetime(2024, 2, 29, 23, 59, 58, 250000, tzinfo=datetime.UTC)


async def test_text_postgresql_cannot_hold_is_repaired_not_refused(pg_url: str, admin: Any) -> None:
    # U+0000 is valid in SQLite text and in a record, but not in PostgreSQL text.
    record = RetrievalFailureRecord(
        "error", "a\x00b", "q\x00", edge_types=("e\x00",), error_context="c\x00"
    )
    stats = await log_all(pg_url, [record])
    assert (stats.written, stats.failed) == (1, 0)
    assert rows(admin, "retrieval_strategy, query_text, edge_types, error_context") == [
        ("a\ufffdb", "q\ufffd", '["e\\u0000"]', "c\ufffd")
    ]


async def test_reference_table_first_then_ours_then_theirs(pg_url: str, admin: Any) -> None:
    admin.execute(REFERENCE_DDL)
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text) "
        "VALUES ('no_hit', 'theirs', 'their first')"
    )
    stats = await log_all(pg_url, [RetrievalFailureRecord("timeout", "ours", "our row")])
    assert stats.written == 1
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, top_score) "
        "VALUES ('error', 'theirs', 'their second', 0.5)"
    )
    assert rows(admin, "retrieval_strategy, query_text") == [
        ("theirs", "their first"),
        ("ours", "our row"),
        ("theirs", "their second"),
    ]
    # Their three indexes are enough: no duplicates of ours beside them.
    (indexes,) = admin.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = %s", (TABLE,)
    ).fetchone()
    assert indexes == 4  # three plus the primary key


async def test_ours_first_then_the_reference_application(pg_url: str, admin: Any) -> None:
    assert (await log_all(pg_url, [RetrievalFailureRecord("no_hit", "ours", "q")])).written == 1
    admin.execute(REFERENCE_DDL)  # its migration runs against our table: a no-op for the table
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text) "
        "VALUES ('no_hit', 'theirs', 'q2')"
    )
    shape = admin.execute(
        "SELECT column_name, data_type, is_nullable, column_default IS NOT NULL "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY column_name",
        (TABLE,),
    ).fetchall()
    admin.execute(f"DROP TABLE {TABLE}")
    admin.execute(REFERENCE_DDL)
    theirs = admin.execute(
        "SELECT column_name, data_type, is_nullable, column_default IS NOT NULL "
        "FROM information_schema.columns WHERE table_name = %s ORDER BY column_name",
        (TABLE,),
    ).fetchall()
    assert shape == theirs  # column for column
    assert "BIGSERIAL" in CREATE_TABLE


@pytest.mark.parametrize(
    ("ddl", "problem"),
    [
        ("created_at TEXT NOT NULL DEFAULT ''", "'created_at' is text"),
        ("created_at TIMESTAMP NOT NULL DEFAULT now()", "'created_at' is timestamp"),
        ("conversation_id BIGINT NOT NULL", "'conversation_id' is NOT NULL"),
        ("top_score TEXT", "'top_score' is text"),
        ("turn_index INTEGER NOT NULL DEFAULT 0", "'turn_index' is int4"),
        (None, "'query_text' is missing"),
        ("extra TEXT NOT NULL", "extra column 'extra'"),
    ],
)
async def test_an_incompatible_table_is_refused(
    pg_url: str, admin: Any, ddl: str | None, problem: str
) -> None:
    admin.execute(REFERENCE_DDL)
    if ddl is None:
        admin.execute(f"ALTER TABLE {TABLE} DROP COLUMN query_text")
    else:
        column = ddl.split()[0]
        if column != "extra":
            admin.execute(f"ALTER TABLE {TABLE} DROP COLUMN {column}")
        admin.execute(f"ALTER TABLE {TABLE} ADD COLUMN {ddl}")
    with pytest.raises(IncompatibleSchemaError, match=problem) as caught:
        async with open_failure_logger(pg_url):
            pass  # pragma: no cover
    assert "***" in str(caught.value)  # names the database, without its password


async def test_id_without_default_is_refused(pg_url: str, admin: Any) -> None:
    admin.execute(REFERENCE_DDL)
    admin.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id DROP DEFAULT")
    with pytest.raises(IncompatibleSchemaError, match="'id' has no default"):
        await trio.to_thread.run_sync(PostgresStore.open, pg_url, StoreOptions())


@contextlib.contextmanager
def _all_at_once(count: int, work: Callable[[int], object]) -> Iterator[list[BaseException]]:
    """Run ``work(0)`` ... ``work(count - 1)`` in plain threads released together.

    Yields the list of what they raised, complete once the block has ended
    (the threads are joined on leaving it).
    """
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            work(i)
        except BaseException as exc:  # noqa: ASYNC103  # a plain thread: errors are kept for the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield errors
    finally:
        for thread in threads:
            thread.join(30)


def test_concurrent_creators_on_an_empty_database(pg_url: str, admin: Any) -> None:
    # Connections are made first, so that the table checks and creations overlap.
    import psycopg

    connections = [psycopg.connect(pg_url, autocommit=True) for _ in range(12)]
    with _all_at_once(len(connections), lambda i: ensure_schema(connections[i])) as errors:
        pass
    for conn in connections:
        conn.close()
    assert errors == []
    (indexes,) = admin.execute(
        "SELECT count(*) FROM pg_indexes WHERE tablename = %s", (TABLE,)
    ).fetchone()
    assert indexes == 4


def test_creating_while_the_reference_application_creates(pg_url: str, admin: Any) -> None:
    # The application takes no advisory lock of ours. Its CREATE TABLE is
    # uncommitted while ours run: they find no table, their CREATE TABLE IF NOT
    # EXISTS waits on its catalog rows and then fails with a unique violation
    # on pg_type (without the retry, this test fails with exactly that).
    import psycopg

    connections = [psycopg.connect(pg_url, autocommit=True) for _ in range(4)]
    admin.execute("BEGIN")
    admin.execute(REFERENCE_DDL)
    with _all_at_once(len(connections), lambda i: ensure_schema(connections[i])) as errors:
        give_up = time.monotonic() + 10
        while time.monotonic() < give_up:  # until they all wait on the application's transaction
            (waiting,) = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()
            if waiting >= 1:
                break
            time.sleep(0.01)
        time.sleep(0.2)  # let the others reach the lock too (the test holds either way)
        admin.execute("COMMIT")
    for conn in connections:
        conn.close()
    assert errors == []


def test_concurrent_stores_opening(pg_url: str) -> None:
    openers = 8
    stores: list[Any] = []

    def open_one(_i: int) -> None:
        stores.append(open_store(pg_url, StoreOptions()))

    with _all_at_once(openers, open_one) as errors:
        pass
    for store in stores:
        store.close()
    assert errors == []
    assert len(stores) == openers


def test_store_repr_and_name_hold_no_password(pg_url: str) -> None:
    store = open_store(pg_url, StoreOptions())
    try:
        assert "Pw-9zQx7vLk" not in repr(store)
        assert "Pw-9zQx7vLk" not in store.name
        assert store.kind == "postgresql"
    finally:
        store.close()


async def test_a_table_we_may_not_insert_into_is_a_setup_error(
    pg_server: PgServer, pg_url: str, pg_db: str
) -> None:
    with pg_server.admin_connect(pg_db) as superuser:  # owned by another role
        superuser.execute(REFERENCE_DDL)
    with pytest.raises(DatabaseSetupError, match="may not INSERT into the table") as caught:
        async with open_failure_logger(pg_url):
            pass  # pragma: no cover
    assert not isinstance(caught.value, IncompatibleSchemaError)
