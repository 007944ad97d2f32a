"""The summary on PostgreSQL: repeated queries grouped in the server, same answers."""

from __future__ import annotations

import tempfile
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import FailureReader
from trio_failurelog._readsql import format_created_at
from trio_failurelog._schema import TABLE

from .._failuredb import make_db, row
from .test_interface import REFERENCE_DDL
from .test_reading import load_pg

_T0 = datetime(2024, 3, 1)
# Every ASCII character but NUL (which PostgreSQL text cannot hold), the
# whitespace Python splits on among them, and a few that fold to ASCII.
_ascii = st.characters(min_codepoint=1, max_codepoint=127)
_texts = st.text(
    alphabet=st.one_of(
        _ascii, st.sampled_from(["\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", " ", "ß", "K"])
    ),
    max_size=5,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
        "SELECT 'no_hit', 'semantic', 'Question number ' || (g % 40000), "
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
