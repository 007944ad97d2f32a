"""Binary COPY stores exactly what text COPY stores, and is used only where it fits."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import RetrievalFailureRecord
from trio_failurelog._database import QueuedRecord, StoreOptions
from trio_failurelog._postgres import PostgresStore
from trio_failurelog._postgres._copy import C_DUMPERS, binary_rows
from trio_failurelog._table import COLUMNS, TABLE

from ._server import ROLE, PgServer
from .test_interface import REFERENCE_DDL

pytestmark = pytest.mark.postgres

INT64 = st.integers(-(2**63), 2**63 - 1)
COUNTS = st.integers(0, 2**63 - 1)
TEXTS = st.text(max_size=12)
# Every finite double: float4's range and beyond it, its denormals, its edges.
FLOAT4_MAX = 3.4028234663852886e38
SCORES = st.none() | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.0, -0.0, FLOAT4_MAX, -FLOAT4_MAX, 3.4028235e38, 1.17549435e-38, 1.401298464324817e-45,
     7.006492321624085e-46, 1e-50, 1e39, 0.1, 1 / 3]
)  # fmt: skip
# POSIX seconds of log() stamps: now, the far past and future, fractions of a microsecond.
STAMPS = st.floats(min_value=-2e9, max_value=4e9, allow_nan=False) | st.just(1_764_000_000.123456)
CREATED = st.none() | st.sampled_from(["2024-02-29 23:59:58.25", "1999-12-31 23:59:59.999999"])


@st.composite
def records(draw: st.DrawFn) -> RetrievalFailureRecord:
    return RetrievalFailureRecord(
        draw(st.sampled_from(["no_hit", "low_confidence", "timeout", "error"])),
        draw(TEXTS),
        draw(TEXTS),
        conversation_id=draw(st.none() | INT64),
        turn_index=draw(COUNTS),
        top_score=draw(SCORES),
        confidence_threshold=draw(SCORES),
        result_count=draw(COUNTS),
        latency_ms=draw(COUNTS),
        edge_types=draw(st.none() | st.lists(TEXTS, max_size=3)),
        error_context=draw(st.none() | TEXTS),
        created_at=draw(CREATED),
    )


def _written(store: PostgresStore, admin: Any, items: list[QueuedRecord], binary: bool) -> Any:
    """What ``store`` stores of ``items`` (column by column), or what it refused."""
    admin.execute(f"TRUNCATE {TABLE}")
    store._binary_copy = binary
    outcome = store.write_batch(items)
    return (
        outcome.written,
        len(outcome.rejected),
        admin.execute(f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY id").fetchall(),
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batch=st.lists(st.tuples(records(), STAMPS), min_size=1, max_size=6),
)
def test_binary_copy_stores_what_text_copy_stores(
    store: PostgresStore, admin: Any, batch: list[QueuedRecord]
) -> None:
    # Text COPY is the reference: the server parses every value itself. A
    # batch that binary cannot carry as text would (a score float4 cannot
    # hold, an explicit created_at...) goes as text: the same either way.
    as_text = _written(store, admin, batch, binary=False)
    as_binary = _written(store, admin, batch, binary=True)
    assert as_binary == as_text


PLAIN_SCORES = [0.5, 0.123456789, 1 / 3, 1.1754944e-38, 3.3e38, -0.75, 0.0, -0.0, 1 + 2**-23]
NOT_PLAIN_SCORES = [
    1e39,  # beyond float4: the server refuses it; C's cast makes it infinity
    -3.4028235e38,  # beyond FLT_MAX once rounded
    1e-50,  # below float4's smallest: the server refuses it; the cast makes it 0
    1e-40,  # float4's subnormal fringe: left to the server
    1 + 2**-24,  # halfway between two float4 values: the two roundings part
    0.5 + 2**-25,
    -(3 + 2**-23),
    1.5 * 2**-149,
]


@pytest.mark.parametrize("score", PLAIN_SCORES)
def test_a_plain_score_goes_as_binary(score: float) -> None:
    for record in (
        RetrievalFailureRecord("low_confidence", "s", "q", top_score=score),
        RetrievalFailureRecord("low_confidence", "s", "q", confidence_threshold=score),
    ):
        assert binary_rows([(record, 1_764_000_000.0)]) is not None


@pytest.mark.parametrize("score", NOT_PLAIN_SCORES)
def test_a_score_binary_would_store_otherwise_sends_the_batch_as_text(score: float) -> None:
    for record in (
        RetrievalFailureRecord("low_confidence", "s", "q", top_score=score),
        RetrievalFailureRecord("low_confidence", "s", "q", confidence_threshold=score),
    ):
        plain = RetrievalFailureRecord("no_hit", "s", "q")
        assert binary_rows([(plain, 0.0), (record, 0.0)]) is None


@pytest.mark.parametrize(
    "record",
    [
        RetrievalFailureRecord("no_hit", "a\x00b", "q"),
        RetrievalFailureRecord("no_hit", "s", "q\x00"),
        RetrievalFailureRecord("error", "s", "q", error_context="c\x00"),
        RetrievalFailureRecord("no_hit", "s", "q", created_at="2024-02-29 23:59:58.25"),
    ],
)
def test_text_with_nul_or_a_given_created_at_sends_the_batch_as_text(
    record: RetrievalFailureRecord,
) -> None:
    assert binary_rows([(record, 0.0)]) is None


@pytest.mark.parametrize("score", PLAIN_SCORES + NOT_PLAIN_SCORES)
def test_every_score_is_stored_as_text_copy_stores_it(
    store: PostgresStore, admin: Any, score: float
) -> None:
    # Values Hypothesis almost never draws: float4's edges, exact halfway points.
    items: list[QueuedRecord] = [
        (RetrievalFailureRecord("low_confidence", "s", "q", top_score=score), 1_764_000_000.0),
        (RetrievalFailureRecord("no_hit", "s", "other", confidence_threshold=score), 0.0),
    ]
    assert _written(store, admin, items, binary=True) == _written(store, admin, items, binary=False)


def test_created_at_goes_to_the_same_microsecond_both_ways(
    store: PostgresStore, admin: Any
) -> None:
    # The settling of an unanswered COMMIT finds a batch's rows by created_at
    # computed as text: binary must store exactly that instant.
    stamps = [1_764_000_000.0000005, 1_764_000_000.9999996, 946_684_800.0, 0.5, -1.25]
    items = [(RetrievalFailureRecord("no_hit", "s", f"q{i}"), s) for i, s in enumerate(stamps)]
    assert binary_rows(items) is not None
    _written(store, admin, items, binary=True)
    found = [row[0] for row in admin.execute(f"SELECT created_at FROM {TABLE} ORDER BY id")]
    assert found == [
        datetime.datetime.fromisoformat(store._created_at(stamp) + ":00") for stamp in stamps
    ]


def _reference_types(store: PostgresStore) -> bool:
    """What a transaction of ``store`` finds: whether the table has the reference types."""
    conn = store._ready()
    cur, txn = store._begin(conn)
    try:
        return store._has_reference_types(cur, txn)
    finally:
        conn.execute("ROLLBACK")


@pytest.mark.parametrize(
    "ddl",
    [
        pytest.param(None, id="ours"),
        pytest.param(REFERENCE_DDL, id="the reference application's"),
    ],
)
def test_the_reference_types_take_binary(pg_url: str, admin: Any, ddl: str | None) -> None:
    if ddl is not None:
        admin.execute(ddl)
    assert C_DUMPERS  # the postgres extra brings psycopg's C implementation
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert store._binary_copy is True
        assert _reference_types(store) is True
    finally:
        store.close()


OTHER_TYPES = f"""
CREATE TABLE {TABLE} (
    id BIGSERIAL PRIMARY KEY,
    conversation_id NUMERIC,
    turn_index BIGINT NOT NULL DEFAULT 0,
    failure_type VARCHAR(20) NOT NULL,
    retrieval_strategy TEXT NOT NULL,
    query_text TEXT NOT NULL,
    query_len BIGINT NOT NULL DEFAULT 0,
    top_score DOUBLE PRECISION,
    confidence_threshold REAL,
    result_count BIGINT NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL DEFAULT 0,
    edge_types JSONB,
    error_context TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
)
"""


def test_a_table_of_other_accepted_types_is_written_as_text(pg_url: str, admin: Any) -> None:
    # Binary COPY carries no types: 8-byte floats sent into NUMERIC or
    # DOUBLE PRECISION columns would be misread. Such a table gets text.
    admin.execute(OTHER_TYPES)
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert _reference_types(store) is False
        record = RetrievalFailureRecord(
            "low_confidence",
            "s",
            "q",
            conversation_id=2**62,
            top_score=0.123456789,
            confidence_threshold=0.5,
            edge_types=("cites",),
        )
        outcome = store.write_batch([(record, 1_764_000_000.25)])
        assert (outcome.written, outcome.rejected) == (1, [])
    finally:
        store.close()
    found = admin.execute(
        f"SELECT conversation_id, failure_type, top_score, edge_types FROM {TABLE}"
    ).fetchone()
    assert found == (2**62, "low_confidence", 0.123456789, ["cites"])  # double kept whole
    assert json.dumps(found[3]) == '["cites"]'


@pytest.mark.parametrize(
    ("column", "new_type", "field", "value"),
    [
        ("latency_ms", "NUMERIC", "latency_ms", 42),  # binary int8 read as numeric: 0
        ("top_score", "DOUBLE PRECISION", "top_score", 0.5),  # 4 bytes where 8 are read
        ("edge_types", "JSONB", "edge_types", ["cites"]),  # JSONB's binary form is versioned
    ],
)
def test_a_column_altered_while_connected_is_written_as_text(
    store: PostgresStore, admin: Any, column: str, new_type: str, field: str, value: Any
) -> None:
    # The types are checked in each transaction, under a lock that keeps
    # ALTER TABLE out until COMMIT, not only when the store connected.
    first = RetrievalFailureRecord("no_hit", "s", "before")
    assert store.write_batch([(first, 1_764_000_000.0)]).written == 1
    admin.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN {column} TYPE {new_type} USING {column}::{new_type}"
    )
    record = RetrievalFailureRecord(
        "low_confidence", "s", "after", latency_ms=42, top_score=0.5, edge_types=("cites",)
    )
    outcome = store.write_batch([(record, 1_764_000_001.0)])
    assert (outcome.written, outcome.rejected) == (1, [])
    found = admin.execute(f"SELECT {field} FROM {TABLE} WHERE query_text = 'after'").fetchone()
    assert found == (value,)


def test_a_database_in_another_encoding_gets_the_same_rows_both_ways(
    pg_server: PgServer,
) -> None:
    # Both forms send UTF-8 and the server converts: é stored as é, and a
    # character LATIN1 cannot hold costs its row only, either way.
    name = pg_server.new_database("latin")
    pg_server.drop_database(name)
    pg_server.admin_execute(
        f"CREATE DATABASE {name} OWNER {ROLE} ENCODING 'LATIN1' TEMPLATE template0"
        " LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    admin = pg_server.admin_connect(name)
    opened = PostgresStore.open(pg_server.url(name), StoreOptions())
    try:
        items: list[QueuedRecord] = [
            (RetrievalFailureRecord("no_hit", "s", "caf\u00e9"), 1_764_000_000.0),
            (RetrievalFailureRecord("no_hit", "s", "\u65e5\u672c"), 1_764_000_000.0),
        ]
        as_text = _written(opened, admin, items, binary=False)
        as_binary = _written(opened, admin, items, binary=True)
        assert as_binary == as_text
        written, rejected, rows = as_binary
        assert (written, rejected) == (1, 1)
        assert [row[4] for row in rows] == ["caf\u00e9"]
    finally:
        opened.close()
        admin.close()


PARTITIONED = f"""
CREATE TABLE {TABLE} (
    id BIGSERIAL,
    conversation_id BIGINT,
    turn_index BIGINT NOT NULL DEFAULT 0,
    failure_type TEXT NOT NULL,
    retrieval_strategy TEXT NOT NULL,
    query_text TEXT NOT NULL,
    query_len BIGINT NOT NULL DEFAULT 0,
    top_score REAL,
    confidence_threshold REAL,
    result_count BIGINT NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL DEFAULT 0,
    edge_types TEXT,
    error_context TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE {TABLE}_rest PARTITION OF {TABLE} DEFAULT;
"""


def test_a_table_partitioned_by_created_at_is_written(pg_url: str, admin: Any) -> None:
    # What the Fleets page suggests for retention at scale. The parent has no
    # file of its own to watch for type changes: its types are checked in each
    # transaction instead, and it gets binary COPY like a plain table.
    admin.execute(PARTITIONED)
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert _reference_types(store) is True
        items: list[QueuedRecord] = [
            (RetrievalFailureRecord("low_confidence", "s", f"q{i}", top_score=0.5), 1.7e9 + i)
            for i in range(3)
        ]
        outcome = store.write_batch(items)
        assert (outcome.written, outcome.rejected) == (3, [])
    finally:
        store.close()
    found = admin.execute(f"SELECT query_text, top_score FROM {TABLE} ORDER BY id").fetchall()
    assert found == [("q0", 0.5), ("q1", 0.5), ("q2", 0.5)]
