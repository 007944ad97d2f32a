"""summary(): every number checked against values worked out by hand from the rows."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_failurelog._reader import FailureReader
from trio_failurelog._sqlite import SQLITE
from trio_failurelog._summary import (
    _BUCKET_SIZES,
    FailureSummary,
    LatencyStats,
    RepeatedQuery,
    WhatIf,
    latency_bounds,
    nice_step,
    percentile,
)

from ._failuredb import make_db, row

DAY = "2024-01-01"
T0 = f"{DAY} 00:00:00"
T1 = f"{DAY} 01:00:00"
LC = "low_confidence"


def t(clock: str) -> str:
    return f"{DAY} {clock}"


# semantic: 5 low_confidence (threshold 0.7, one without a score) + 2 no_hit, 7 latencies
# keyword: 2 low_confidence (threshold 0.45) + 1 no_hit + 1 timeout
# hybrid: 1 error
ROWS = [
    row(LC, "semantic", "a", t("00:00:30"), top_score=0.62, threshold=0.7, latency_ms=10),
    row(LC, "semantic", "b", t("00:01:59.999"), top_score=0.66, threshold=0.7, latency_ms=20),
    row(LC, "semantic", "c", t("00:02:00"), top_score=0.52, threshold=0.7, latency_ms=30),
    row(LC, "semantic", "d", t("00:02:00.001"), top_score=0.41, threshold=0.7, latency_ms=40),
    row(LC, "semantic", "e", t("00:10:00"), threshold=0.7, latency_ms=50),
    row("no_hit", "semantic", "Refund  Policy", t("00:20:00"), latency_ms=60),
    row("no_hit", "semantic", "refund policy", t("00:30:00"), latency_ms=1000),
    row(LC, "keyword", "f", t("00:40:00"), top_score=0.35, threshold=0.45, latency_ms=3),
    row(LC, "keyword", "g", t("00:50:00"), top_score=0.44, threshold=0.45, latency_ms=3),
    row("no_hit", "keyword", " REFUND\tpolicy ", t("00:59:59"), latency_ms=3),
    row("timeout", "keyword", "where is my order", t("00:59:59.500"), latency_ms=250),
    row("error", "hybrid", "Where is my  ORDER", t("00:30:00"), latency_ms=5, error_context="x"),
    # Outside the range [T0, T1): before and at the (exclusive) end.
    row("no_hit", "semantic", "refund policy", "2023-12-31 23:59:59.999", latency_ms=7),
    row("timeout", "keyword", "late", T1, latency_ms=9),
]  # fmt: skip


@pytest.fixture
def summary(tmp_path: Path) -> FailureSummary:
    with FailureReader(make_db(tmp_path / "s.db", ROWS)) as reader:
        return reader.summary(since=T0, until=T1)


def test_counts_by_type_and_strategy(summary: FailureSummary) -> None:
    assert summary.total == 12
    assert (summary.since, summary.until) == (T0, T1)
    assert (summary.first_at, summary.last_at) == (t("00:00:30"), t("00:59:59.500"))
    assert summary.by_type == {"no_hit": 3, "low_confidence": 7, "timeout": 1, "error": 1}
    assert list(summary.by_type) == ["no_hit", "low_confidence", "timeout", "error"]
    assert summary.by_strategy == {"semantic": 7, "keyword": 4, "hybrid": 1}
    assert {(c.failure_type, c.strategy): c.count for c in summary.counts} == {
        ("low_confidence", "semantic"): 5,
        ("no_hit", "semantic"): 2,
        ("low_confidence", "keyword"): 2,
        ("no_hit", "keyword"): 1,
        ("timeout", "keyword"): 1,
        ("error", "hybrid"): 1,
    }


def test_timeline_buckets(summary: FailureSummary) -> None:
    # One hour in at most 48 buckets: 60 s would need 61, so 120 s buckets, 30 of them
    # (the exclusive end at 01:00:00 opens no bucket of its own).
    assert summary.bucket_seconds == 120
    assert len(summary.timeline) == 30
    assert summary.timeline[0].start == T0
    assert summary.timeline[-1].start == t("00:58:00")
    assert summary.timeline[0].counts == {
        "no_hit": 0,
        "low_confidence": 2,  # 00:00:30 and 00:01:59.999
        "timeout": 0,
        "error": 0,
    }
    assert summary.timeline[1].counts["low_confidence"] == 2  # 00:02:00 and 00:02:00.001
    assert summary.timeline[15].start == t("00:30:00")
    assert summary.timeline[15].counts == {
        "no_hit": 1,
        "low_confidence": 0,
        "timeout": 0,
        "error": 1,
    }
    assert summary.timeline[29].counts == {
        "no_hit": 1,
        "low_confidence": 0,
        "timeout": 1,
        "error": 0,
    }
    assert sum(bucket.total for bucket in summary.timeline) == 12
    assert [i for i, b in enumerate(summary.timeline) if b.total] == [0, 1, 5, 10, 15, 20, 25, 29]


def test_latency_percentiles_and_histogram(summary: FailureSummary) -> None:
    assert summary.latency_bounds == (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
    semantic, keyword, hybrid = summary.latency
    # Nearest rank over 10, 20, 30, 40, 50, 60, 1000: p50 is the 4th, p95 and p99 the 7th.
    assert semantic == LatencyStats(
        strategy="semantic",
        count=7,
        mean_ms=semantic.mean_ms,
        p50_ms=40,
        p95_ms=1000,
        p99_ms=1000,
        max_ms=1000,
        histogram=(0, 0, 0, 1, 1, 3, 1, 0, 0, 1),
    )
    assert semantic.mean_ms == pytest.approx(1210 / 7)
    # 3, 3, 3, 250: p50 is the 2nd (3), p95 and p99 the 4th (250).
    assert (keyword.strategy, keyword.p50_ms, keyword.p95_ms, keyword.p99_ms) == (
        "keyword",
        3,
        250,
        250,
    )
    assert keyword.histogram == (0, 0, 3, 0, 0, 0, 0, 0, 1, 0)
    assert (hybrid.count, hybrid.p50_ms, hybrid.histogram[2]) == (1, 5, 1)


def test_low_confidence_scores_and_what_if(summary: FailureSummary) -> None:
    semantic, keyword = summary.low_confidence
    assert (semantic.strategy, semantic.failures, semantic.scored) == ("semantic", 5, 4)
    assert semantic.threshold == 0.7
    assert semantic.thresholds == (0.7,)
    assert (semantic.score_min, semantic.score_max) == (0.41, 0.66)
    assert semantic.score_mean == pytest.approx((0.62 + 0.66 + 0.52 + 0.41) / 4)
    assert semantic.mean_gap == pytest.approx(0.7 - (0.62 + 0.66 + 0.52 + 0.41) / 4)
    # Lowering 0.7 in steps of 0.05 down to the lowest score (0.41): scores >= 0.65:
    # 0.66; >= 0.6: +0.62; >= 0.55: same; >= 0.5: +0.52; >= 0.45: same; >= 0.4: +0.41.
    # Shares are of all 5 low-confidence failures (one had no score).
    assert semantic.what_if == (
        WhatIf(0.65, 1, 0.2),
        WhatIf(0.6, 2, 0.4),
        WhatIf(0.55, 2, 0.4),
        WhatIf(0.5, 3, 0.6),
        WhatIf(0.45, 3, 0.6),
        WhatIf(0.4, 4, 0.8),
    )
    # 0.45 - 2 * 0.05 is 0.35 exactly after rounding, so the 0.35 score counts.
    assert keyword.what_if == (
        WhatIf(0.4, 1, 0.5),
        WhatIf(0.35, 2, 1.0),
        WhatIf(0.3, 2, 1.0),
        WhatIf(0.25, 2, 1.0),
    )
    # Scores 0.35..0.66 and thresholds up to 0.7: bins of 0.02 from 0.34 to 0.70.
    assert summary.score_edges[0] == 0.34
    assert summary.score_edges[-1] == 0.7
    assert len(summary.score_edges) == 19
    expected_semantic = [0] * 18
    for index in (3, 9, 14, 16):  # 0.41, 0.52, 0.62, 0.66
        expected_semantic[index] = 1
    assert semantic.histogram == tuple(expected_semantic)
    expected_keyword = [0] * 18
    expected_keyword[0] = 1  # 0.35 in [0.34, 0.36)
    expected_keyword[5] = 1  # 0.44 on an edge: in [0.44, 0.46)
    assert keyword.histogram == tuple(expected_keyword)


def test_explicit_candidate_thresholds(tmp_path: Path) -> None:
    with FailureReader(make_db(tmp_path / "s.db", ROWS)) as reader:
        summary = reader.summary(since=T0, until=T1, thresholds=[0.4, 0.6, 0.6])
    semantic, keyword = summary.low_confidence
    assert semantic.what_if == (WhatIf(0.6, 2, 0.4), WhatIf(0.4, 4, 0.8))
    assert keyword.what_if == (WhatIf(0.6, 0, 0.0), WhatIf(0.4, 1, 0.5))


def test_repeated_queries_are_normalised(summary: FailureSummary) -> None:
    assert summary.repeated_queries == (
        RepeatedQuery(
            query="refund policy",
            count=3,
            last_at=t("00:59:59"),
            failure_types=("no_hit",),
            strategies=("keyword", "semantic"),
        ),
        RepeatedQuery(
            query="where is my order",
            count=2,
            last_at=t("00:59:59.500"),
            failure_types=("timeout", "error"),
            strategies=("hybrid", "keyword"),
        ),
    )


def test_filters_and_top_queries(tmp_path: Path) -> None:
    with FailureReader(make_db(tmp_path / "s.db", ROWS)) as reader:
        keyword = reader.summary(since=T0, until=T1, strategy="keyword", top_queries=1)
        everything = reader.summary()
    assert keyword.total == 4
    assert keyword.by_strategy == {"keyword": 4}
    assert [q.query for q in keyword.repeated_queries] == []  # one of each, within keyword
    assert everything.total == 14
    assert everything.repeated_queries[0] == RepeatedQuery(
        "refund policy", 4, t("00:59:59"), ("no_hit",), ("keyword", "semantic")
    )
    # No range given: the timeline spans the data, 2023-12-31 23:59:59.999 to 01:00:00.
    assert everything.timeline[0].start <= "2023-12-31 23:59:59"
    assert everything.timeline[-1].start <= T1
    assert sum(b.total for b in everything.timeline) == 14


def test_a_time_just_before_a_second_is_bucketed_in_that_second(tmp_path: Path) -> None:
    # SQLite reads fractions of a second to the millisecond, rounding: 00.9995
    # would count in the bucket of 00:00:01, outside the data's own range.
    rows = [row("no_hit", "s", "a", t("00:00:00")), row("no_hit", "s", "b", t("00:00:00.999500"))]
    with FailureReader(make_db(tmp_path / "s.db", rows)) as reader:
        summary = reader.summary()
    assert summary.bucket_seconds == 1
    assert [(b.start, b.total) for b in summary.timeline] == [(t("00:00:00"), 2)]


def test_empty_range(tmp_path: Path) -> None:
    with FailureReader(make_db(tmp_path / "s.db", ROWS)) as reader:
        empty = reader.summary(since="2030-01-01 00:00:00", until="2030-01-02 00:00:00")
    assert empty.total == 0
    assert empty.by_type == {}
    assert empty.latency == ()
    assert empty.low_confidence == ()
    assert empty.score_edges == ()
    assert empty.repeated_queries == ()
    assert empty.bucket_seconds == 3600
    assert len(empty.timeline) == 24
    assert all(bucket.total == 0 for bucket in empty.timeline)


def test_to_dict_is_json(summary: FailureSummary) -> None:
    data = json.loads(json.dumps(summary.to_dict()))
    assert data["total"] == 12
    assert data["by_type"]["low_confidence"] == 7
    assert data["low_confidence"][0]["what_if"][0] == {
        "threshold": 0.65,
        "recovered": 1,
        "share": 0.2,
    }
    assert data["timeline"][0]["counts"]["low_confidence"] == 2


def test_helpers() -> None:
    assert [nice_step(x) for x in (0.0175, 0.02, 0.03, 0.7, 7, 11)] == [0.02, 0.02, 0.05, 1, 10, 20]
    assert percentile([(1, 1), (2, 1), (3, 2)], 4, 50) == 2
    assert percentile([(1, 1), (2, 1), (3, 2)], 4, 51) == 3
    assert percentile([(5, 1)], 1, 99) == 5
    assert latency_bounds(0) == (1,)
    assert latency_bounds(21) == (1, 2, 5, 10, 20, 50)


# ------------------------------------------------------------ equivalence of the SQL

# The bucket expression before it parsed the text once: the reference.
_SECONDS = "CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER)"


def _bucket_before(width: int) -> str:
    return f"(({_SECONDS}) - ((({_SECONDS}) % {width}) + {width}) % {width}) / {width}"


_created_at = st.one_of(
    st.builds(
        lambda year, rest, fraction: f"{year:04d}-{rest}{fraction}",
        st.integers(0, 9999),
        st.sampled_from(["01-01 00:00:00", "02-29 23:59:59", "12-31 12:30:07", "06-15 00:00:01"]),
        st.sampled_from(["", ".5", ".999", ".999500", ".000001"]),
    ),
    st.text(max_size=25),
)


@settings(max_examples=300, deadline=None)
@given(
    times=st.lists(_created_at, min_size=1, max_size=20),
    width=st.sampled_from(_BUCKET_SIZES) | st.integers(1, 10**12),
)
def test_the_bucket_of_a_time_is_the_one_before(times: list[str], width: int) -> None:
    # Closed by hand: Python 3.13 warns about a connection left to the garbage
    # collector, at whichever later test the collector runs in.
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE t (created_at TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(value,) for value in times])
        old = conn.execute(f"SELECT {_bucket_before(width)} FROM t ORDER BY rowid").fetchall()
        new = conn.execute(
            f"SELECT {SQLITE.bucket_index_sql(width)} FROM t ORDER BY rowid"
        ).fetchall()
    assert new == old
