"""The summary on PostgreSQL: repeated queries grouped in the server, same answers."""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import FailureReader
from trio_failurelog._postgres import POSTGRES, PostgresReadConnection
from trio_failurelog._readsql import Filters
from trio_failurelog._summary import summarise
from trio_failurelog._table import TABLE
from trio_failurelog._timetext import format_created_at

from .._failuredb import make_db, row
from .test_interface import REFERENCE_DDL
from .test_reading import load_pg

_T0 = datetime(2024, 3, 1)
# Every character but NUL (which PostgreSQL text cannot hold) and surrogates,
# often ASCII, Python's whitespace and characters casefolding changes (or that
# it leaves alone: é, small sigma).
_texts = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=1, max_codepoint=127),
        st.sampled_from(
            ["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", " ", "\xa0", "\u3000", "\x85"]
        ),
        st.sampled_from(
            ["ß", "ẞ", "é", "É", "ς", "\u03c3", "Σ", "İ", "\u212a", "ﬁ", "Ǆ", "ǅ", "ǆ"]
        ),
        st.characters(min_codepoint=1, exclude_categories=["Cs"]),
    ),
    max_size=5,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(queries=st.lists(_texts, max_size=30))
def test_repeated_queries_match_sqlite_for_any_text(
    queries: list[str], pg_url: str, admin: Any
) -> None:
    rows = [
        row(
            ("no_hit", "timeout")[i % 2],
            ("semantic", "keyword", "graph")[i % 3],
            query,
            format_created_at(_T0 + timedelta(seconds=7 * i)),
        )
        for i, query in enumerate(queries)
    ]
    load_pg(admin, rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_db(Path(tmp) / "same.db", rows)
        with FailureReader(path) as lite, FailureReader(pg_url) as pg:
            for top in (1, 3, 100):
                assert (
                    pg.summary(top_queries=top).repeated_queries
                    == lite.summary(top_queries=top).repeated_queries
                ), top


def test_the_report_does_not_hold_every_distinct_query(pg_url: str, admin: Any) -> None:
    # 40,000 distinct failing queries, each seen twice: the server groups them
    # and sends the top ten; the reader's memory does not hold all of them.
    admin.execute(REFERENCE_DDL)
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at) "
        "SELECT 'no_hit', 'semantic', 'Question über café ' || (g % 40000), "
        "timestamptz '2024-03-01 00:00:00+00' + g * interval '1 second' "
        "FROM generate_series(1, 80000) AS g"
    )
    with FailureReader(pg_url) as pg:
        tracemalloc.start()
        try:
            summary = pg.summary(top_queries=10)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert summary.total == 80000
    assert len(summary.repeated_queries) == 10
    assert all(item.count == 2 for item in summary.repeated_queries)
    assert peak < 2_000_000, peak


def test_a_bounded_window_is_read_through_the_time_index(pg_url: str, admin: Any) -> None:
    # 60,000 rows over 30 days (analysed): the plans of a one-day summary's
    # statements read through the created_at index, never a scan of the table.
    admin.execute(REFERENCE_DDL)
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, top_score, "
        "confidence_threshold, latency_ms, created_at) "
        "SELECT (ARRAY['no_hit', 'low_confidence', 'timeout', 'error'])[1 + g % 4], "
        "(ARRAY['semantic', 'keyword', 'graph'])[1 + g % 3], 'Query ' || (g % 500), "
        "CASE WHEN g % 4 = 1 THEN 0.3 + (g % 7) / 20.0 END, CASE WHEN g % 4 = 1 THEN 0.7 END, "
        "g % 300, timestamptz '2024-03-01 00:00:00+00' + g * interval '43.2 seconds' "
        "FROM generate_series(1, 60000) AS g"
    )
    admin.execute(f"ANALYZE {TABLE}")
    conn = PostgresReadConnection(pg_url)
    seen: list[tuple[str, list[object]]] = []

    def execute(sql: str, params: Iterable[object]) -> list[Any]:
        values = list(params)
        seen.append((sql, values))
        return conn.execute(sql, values)

    try:
        for filters in (
            Filters.build(since="2024-03-30 00:00:00"),
            Filters.build(since="2024-03-10 00:00:00", until="2024-03-11 00:00:00"),
            Filters.build(since="2024-03-30 00:00:00", strategy="graph"),
        ):
            seen.clear()
            summary = summarise(
                execute, filters, candidates=None, top_queries=10, max_buckets=48,
                now=datetime(2024, 3, 31, tzinfo=UTC).timestamp(), dialect=POSTGRES,
            )  # fmt: skip
            assert summary.total > 0
            assert summary.repeated_queries
            assert summary.low_confidence
            assert len(seen) >= 7
            for sql, values in seen:
                if sql == f"SELECT count(*) FROM {TABLE}":
                    continue  # table_total: the whole table by definition
                plan = "\n".join(str(line[0]) for line in conn.execute(f"EXPLAIN {sql}", values))
                assert f"Seq Scan on {TABLE}" not in plan, (sql, plan)
    finally:
        conn.close()
