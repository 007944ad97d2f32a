"""Binary COPY stores exactly what text COPY stores, and is used only where it fits."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import RetrievalFailureRecord
from trio_failurelog._postgres_schema import ensure_schema
from trio_failurelog._postgres_store import _C_DUMPERS, PostgresStore, _binary_rows
from trio_failurelog._schema import COLUMNS, TABLE
from trio_failurelog._storage import QueuedRecord, StoreOptions

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


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore.open(pg_url, StoreOptions())
    try:
        yield opened
    finally:
        opened.close()


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.tuples(
            records().filter(lambda record: record.created_at is None),
            st.floats(min_value=0, max_value=4e9),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_plain_records_go_as_binary(batch: list[QueuedRecord]) -> None:
    # Only what binary would store differently goes as text: U+0000 (which
    # the record keeps, and the text path replaces), a score outside float4's
    # range (which the server must refuse), a created_at given as text.
    def fits(score: float | None) -> bool:
        return not score or 1.401298464324817e-45 <= abs(score) < FLOAT4_MAX

    plain = all(
        "\x00" not in record.retrieval_strategy + record.query_text + (record.error_context or "")
        and fits(record.top_score)
        and fits(record.confidence_threshold)
        for record, _stamp in batch
    )
    assert (_binary_rows(batch) is not None) == plain


def test_created_at_goes_to_the_same_microsecond_both_ways(
    store: PostgresStore, admin: Any
) -> None:
    # The settling of an unanswered COMMIT finds a batch's rows by created_at
    # computed as text: binary must store exactly that instant.
    stamps = [1_764_000_000.0000005, 1_764_000_000.9999996, 946_684_800.0, 0.5, -1.25]
    items = [(RetrievalFailureRecord("no_hit", "s", f"q{i}"), s) for i, s in enumerate(stamps)]
    assert _binary_rows(items) is not None
    _written(store, admin, items, binary=True)
    found = [row[0] for row in admin.execute(f"SELECT created_at FROM {TABLE} ORDER BY id")]
    assert found == [
        datetime.datetime.fromisoformat(store._created_at(stamp) + ":00") for stamp in stamps
    ]


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
    assert ensure_schema(admin) is True
    assert _C_DUMPERS  # the postgres extra brings psycopg's C implementation
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert store._binary_copy is True
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
    assert ensure_schema(admin) is False
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert store._binary_copy is False
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
