"""Reading PostgreSQL: the same answers as SQLite for the same rows, and the read path's rules."""

from __future__ import annotations

import math
import re
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import (
    FailureReader,
    RetrievalFailureRecord,
    open_failure_logger,
    open_failure_reader,
)
from trio_failurelog._float4 import shortest_float4
from trio_failurelog._postgres import PostgresReadConnection
from trio_failurelog._postgres._schema import ADVISORY_CLASS, PURGE_LOCK
from trio_failurelog._purge import purge_older_than
from trio_failurelog._table import COLUMNS, TABLE
from trio_failurelog._timetext import format_created_at

from .._failuredb import make_db, row
from .test_interface import REFERENCE_DDL, float4


def shown(value: float) -> float:
    """``value`` as the reader shows a float4 column: the shortest decimal of its float4.
    SQLite is given that, so that both databases hold and show the same score."""
    return shortest_float4(float4(value))


_INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('%s' for _ in COLUMNS)})"
_CREATED_AT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6})?"
)


def load_pg(admin: Any, rows: list[tuple[Any, ...]]) -> None:
    """``rows`` (COLUMNS order, created_at as UTC text) into a fresh reference table."""
    admin.execute(REFERENCE_DDL)
    admin.execute(f"TRUNCATE {TABLE} RESTART IDENTITY")
    with admin.cursor() as cur:
        cur.executemany(_INSERT, [(*r[:-1], r[-1] + "+00") for r in rows])


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Equal, field by field; floats that are means may differ in the last bits
    (SQLite sums with compensation, PostgreSQL does not)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (path, a, b)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


# ---------------------------------------------------------------- rows both ways

_T0 = datetime(2024, 3, 1, 12, 0, 0)
_moments = st.builds(
    lambda seconds, micro, kind: (
        _T0 + timedelta(seconds=seconds, microseconds=(0, micro // 1000 * 1000, micro)[kind])
    ),
    st.integers(0, 3 * 86400),
    st.integers(0, 999_999),
    st.integers(0, 2),
)
# Texts whose normalised forms PostgreSQL's lower() and \s would get wrong:
# ß casefolds to ss, U+3000 is whitespace to Python.
_queries = st.text(alphabet=["a", "A", "ß", "s", "S", " ", "\u3000", "\t", "İ"], max_size=4)
_rows = st.builds(
    lambda ft, strategy, query, moment, conv, score, threshold, latency, edges: row(
        ft,
        strategy,
        query,
        format_created_at(moment),
        conversation_id=conv,
        top_score=None if score is None else shown(score),
        threshold=None if threshold is None else shown(threshold),
        latency_ms=latency,
        edge_types=edges,
    ),
    st.sampled_from(["no_hit", "low_confidence", "timeout", "error"]),
    st.sampled_from(["semantic", "Semantic", "keyword", "ß", "SS", "a b"]),
    _queries,
    _moments,
    st.none() | st.integers(1, 3),
    st.none() | st.floats(0, 1),
    st.none() | st.sampled_from([0.5, 0.55, 0.7]),
    st.integers(0, 3000),
    st.none() | st.lists(st.sampled_from(["mentions", "part_of"]), max_size=2),
)


def _compare(path: Path, pg_url: str) -> None:
    bounds: dict[str, Any] = {"since": "2024-03-01 18:00:00", "until": "2024-03-03 06:30:00.5"}
    with FailureReader(path) as lite, FailureReader(pg_url) as pg:
        for kwargs in (
            {},
            {"oldest_first": True, "page_size": 3},
            {**bounds, "page_size": 2, "limit": 5},
            {"failure_type": ["low_confidence", "timeout"], "strategy": "ß"},
            {"conversation_id": 2, "until": datetime(2024, 3, 2, tzinfo=UTC)},
        ):
            assert list(lite.query(**kwargs)) == list(pg.query(**kwargs)), kwargs
        for filters in ({}, bounds, {"failure_type": "low_confidence"}, {"strategy": "SS"}):
            assert lite.count(**filters) == pg.count(**filters)
            assert_same(
                lite.summary(**filters, max_buckets=30).to_dict(),
                pg.summary(**filters, max_buckets=30).to_dict(),
            )
        assert_same(
            lite.summary(thresholds=[0.3, 0.4]).to_dict(),
            pg.summary(thresholds=[0.3, 0.4]).to_dict(),
        )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_rows, max_size=25))
def test_the_same_rows_read_the_same_from_both(
    rows: list[tuple[Any, ...]], pg_url: str, admin: Any
) -> None:
    load_pg(admin, rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = make_db(Path(tmp) / "same.db", rows)
        _compare(path, pg_url)


def test_known_rows_read_the_same_from_both(pg_url: str, admin: Any, tmp_path: Path) -> None:
    # Rows that exercise every part of the summary at once (Hypothesis may not).
    rows = [
        row(
            ["low_confidence", "no_hit", "timeout", "error"][i % 4],
            ["semantic", "keyword", "ß", "SS"][i % 3],
            ["Where is ß", "where  is SS", "refund", "REFUND "][i % 4],
            format_created_at(_T0 + timedelta(minutes=37 * i, microseconds=1000 * (i % 3))),
            conversation_id=i % 2 or None,
            top_score=shown(0.2 + (i % 7) / 10) if i % 5 else None,
            threshold=shown([0.5, 0.55, 0.7][i % 3]),
            latency_ms=i * 37 % 900,
        )
        for i in range(80)
    ]
    load_pg(admin, rows)
    _compare(make_db(tmp_path / "known.db", rows), pg_url)
    with FailureReader(pg_url) as pg:
        summary = pg.summary()
    assert summary.total == 80
    assert summary.low_confidence
    assert summary.repeated_queries
    assert summary.latency
    # ß casefolds to ss: "Where is ß" and "where  is SS" are one query, as in SQLite.
    assert ("where is ss", 40) in [(q.query, q.count) for q in summary.repeated_queries]


# ---------------------------------------------------------------- values as read


async def test_records_written_by_the_logger_read_back_like_sqlite_ones(pg_url: str) -> None:
    async with open_failure_logger(pg_url) as failures:
        failures.log(
            RetrievalFailureRecord(
                "low_confidence", "semantic", "q", top_score=0.42, confidence_threshold=0.7
            )
        )
        failures.log(
            RetrievalFailureRecord("no_hit", "s", "old", created_at="2024-05-01 10:00:00.250")
        )
    async with open_failure_reader(pg_url) as reader:
        new, old = [r async for r in reader.query()]
    assert isinstance(new.id, int)
    assert isinstance(old.id, int)
    # REAL is float4: 0.42 is stored as the float4 nearest it, and read back as
    # the shortest decimal that is the same float4: 0.42, as SQLite gives it.
    assert new.top_score == 0.42
    assert new.confidence_threshold == 0.7
    assert old.created_at == "2024-05-01 10:00:00.250"
    assert new.created_at is not None
    assert _CREATED_AT.fullmatch(new.created_at)
    written = datetime.fromisoformat(new.created_at + "+00:00")
    assert abs(written - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_jsonb_edge_types_column_reads_as_in_sqlite(pg_url: str, admin: Any) -> None:
    admin.execute(REFERENCE_DDL.replace("edge_types TEXT", "edge_types JSONB"))
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, edge_types)"
        """ VALUES ('no_hit', 's', 'q', '["mentions", "part_of"]')"""
    )
    with FailureReader(pg_url) as reader:
        (found,) = reader.query()
    assert found.edge_types == ("mentions", "part_of")


def test_rows_of_the_reference_application_are_read(pg_server: Any, pg_db: str, admin: Any) -> None:
    admin.execute(REFERENCE_DDL)
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, top_score)"
        " VALUES ('low_confidence', 'theirs', 'hello', 0.5)"
    )
    admin.execute("SET TIME ZONE 'Asia/Kolkata'")  # the writer's zone does not matter
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
        " VALUES ('timeout', 'theirs', 'there', '2024-01-01 05:30:00')"
    )
    # A session time zone in the URL changes nothing either: the reader reads UTC.
    url = pg_server.url(pg_db, query="options=-c%20TimeZone%3DAsia%2FKolkata")
    with FailureReader(url) as reader:
        old, new = reader.query(oldest_first=True)
        assert reader.count(until="2024-01-01 00:00:01") == 1
    assert old.created_at == "2024-01-01 00:00:00"  # UTC, without a fraction
    assert new.created_at is not None
    assert _CREATED_AT.fullmatch(new.created_at)
    assert (new.query_text, new.top_score, new.query_len, new.edge_types) == ("hello", 0.5, 0, None)


# ---------------------------------------------------------------- the read path's rules


def _backend(admin: Any, application: str = "trio-failurelog") -> tuple[str, Any, Any]:
    found = admin.execute(
        "SELECT state, backend_xid, backend_xmin FROM pg_stat_activity"
        " WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application,),
    ).fetchall()
    assert len(found) == 1, found
    state, xid, xmin = found[0]
    return state, xid, xmin


def test_no_transaction_is_held_between_pages(pg_url: str, admin: Any) -> None:
    load_pg(admin, [row("no_hit", "s", f"q{i}", f"2024-01-01 00:00:{i:02d}") for i in range(10)])
    with FailureReader(pg_url) as reader:
        pages = reader.query(page_size=3)
        first = next(pages)
        assert _backend(admin) == ("idle", None, None)  # not "idle in transaction"
        assert [first, *pages][-1].query_text == "q0"
        reader.summary()
        assert _backend(admin)[0] == "idle"


async def test_a_filter_with_nul_finds_what_the_logger_stored(pg_url: str) -> None:
    # PostgreSQL text cannot hold U+0000; the logger stores it as U+FFFD, and a
    # filter naming the strategy as given finds the row, as on SQLite.
    async with open_failure_logger(pg_url) as failures:
        failures.log(RetrievalFailureRecord("no_hit", "a\x00b", "q\x00"))
    with FailureReader(pg_url) as reader:
        assert reader.count(strategy="a\x00b") == 1
        (found,) = reader.query(strategy=["a\x00b", "other"])
    assert found.retrieval_strategy == "a\ufffdb"


def test_the_reader_cannot_write(pg_url: str, admin: Any) -> None:
    load_pg(admin, [row("no_hit", "s", "q", "2024-01-01 00:00:00")])
    with FailureReader(pg_url) as reader:
        with pytest.raises(Exception, match="read-only transaction"):
            reader.connection.execute(f"DELETE FROM {TABLE}")
        assert reader.count() == 1


def _wait_until(admin: Any, condition: str) -> None:
    """Wait on the server (at most 10 s, in PL/pgSQL) until ``condition`` holds."""
    admin.execute(
        "DO $$ BEGIN FOR i IN 1..1000 LOOP"
        f" IF ({condition}) THEN RETURN; END IF; PERFORM pg_sleep(0.01);"
        " END LOOP; RAISE EXCEPTION 'condition never held'; END $$"
    )


_READER_WAITING = (
    "EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = 'trio-failurelog'"
    " AND wait_event_type = 'Lock')"
)


async def test_a_cancelled_async_call_interrupts_the_query(
    pg_server: Any, pg_db: str, pg_url: str, admin: Any
) -> None:
    load_pg(admin, [row("no_hit", "s", "q", "2024-01-01 00:00:00")])
    async with open_failure_reader(pg_url) as reader:
        locker = pg_server.admin_connect(pg_db)
        try:
            # Another session's ACCESS EXCLUSIVE lock: the reader's SELECT waits.
            locker.execute("BEGIN")
            locker.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
            async with trio.open_nursery() as nursery:

                async def count() -> None:
                    await reader.count()

                nursery.start_soon(count)
                await trio.to_thread.run_sync(_wait_until, admin, _READER_WAITING)
                nursery.cancel_scope.cancel()
            # The reader's statement stops waiting while the lock is still held.
            await trio.to_thread.run_sync(_wait_until, admin, f"NOT {_READER_WAITING}")
            locker.execute("ROLLBACK")
        finally:
            locker.close()
        assert await reader.count() == 1  # and the reader goes on working


def test_follow_polls_by_id(pg_url: str, admin: Any) -> None:
    load_pg(admin, [row("no_hit", "s", f"old{i}", "2030-01-01 00:00:00") for i in range(3)])
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        # A row with an older created_at but a larger id: followed by id, it comes.
        admin.execute(_INSERT, row("timeout", "s", f"new{len(polls)}", "2020-01-01 00:00:00"))

    with FailureReader(pg_url) as reader:
        followed = reader.follow(backlog=2, poll_interval=0.5, sleep=sleep)
        seen = [next(followed).query_text for _ in range(4)]
    assert seen == ["old1", "old2", "new1", "new2"]
    assert polls == [0.5, 0.5]


def test_follow_sees_a_row_that_commits_after_a_larger_id(
    pg_server: Any, pg_db: str, pg_url: str, admin: Any
) -> None:
    # Two writers of a fleet: the one holding the smaller id commits last.
    load_pg(admin, [row("no_hit", "s", "old", "2024-01-01 00:00:00")])
    slow = pg_server.admin_connect(pg_db)
    try:
        with FailureReader(pg_url) as reader:
            naps: list[float] = []

            def sleep(seconds: float) -> None:
                naps.append(seconds)
                if len(naps) > 5:
                    raise AssertionError("the row never came")

            followed = reader.follow(backlog=1, strategy="s", poll_interval=1, sleep=sleep)
            assert next(followed).query_text == "old"
            slow.execute("BEGIN")
            slow.execute(_INSERT, row("timeout", "s", "late", "2024-01-01 00:00:01"))
            admin.execute(_INSERT, row("no_hit", "other", "filtered out", "2024-01-01 00:00:02"))
            admin.execute(_INSERT, row("no_hit", "s", "early", "2024-01-01 00:00:03"))
            assert next(followed).query_text == "early"
            slow.execute("COMMIT")
            assert next(followed).query_text == "late"
            admin.execute(_INSERT, row("error", "s", "next", "2024-01-01 00:00:04"))
            assert next(followed).query_text == "next"
    finally:
        slow.close()


# ---------------------------------------------------------------- purge


def _insert_aged(admin: Any, count: int, days: int, tag: str) -> None:
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
        " SELECT 'no_hit', 's', %s || i, now() - make_interval(days => %s)"
        " FROM generate_series(1, %s) AS i",
        (tag, days, count),
    )


def _count(admin: Any, tag: str) -> int:
    return int(
        admin.execute(
            f"SELECT count(*) FROM {TABLE} WHERE query_text LIKE %s", (tag + "%",)
        ).fetchone()[0]
    )


def test_purge_deletes_in_chunks_and_dry_run_counts(pg_url: str, admin: Any) -> None:
    admin.execute(REFERENCE_DDL)
    _insert_aged(admin, 25, 40, "old")
    _insert_aged(admin, 5, 1, "new")
    assert purge_older_than(pg_url, timedelta(days=30), dry_run=True) == 25
    assert _count(admin, "old") == 25
    progress: list[int] = []
    deleted = purge_older_than(
        pg_url, timedelta(days=30), chunk_size=10, on_progress=progress.append
    )
    assert (deleted, progress) == (25, [10, 20, 25])
    assert (_count(admin, "old"), _count(admin, "new")) == (0, 5)


def test_a_dry_run_reads_in_a_read_only_session(
    pg_url: str, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin.execute(REFERENCE_DDL)
    _insert_aged(admin, 3, 40, "old")
    seen: list[str] = []
    execute = PostgresReadConnection.execute

    def spy(self: PostgresReadConnection, sql: str, params: Any = ()) -> list[Any]:
        (setting,) = self.raw.execute("SHOW transaction_read_only").fetchall()
        seen.append(setting[0])
        return execute(self, sql, params)

    monkeypatch.setattr(PostgresReadConnection, "execute", spy)
    assert purge_older_than(pg_url, timedelta(days=30), dry_run=True) == 3
    assert seen == ["on"]


def test_purge_waits_for_the_loggers_purge_lock(
    pg_server: Any, pg_db: str, pg_url: str, admin: Any
) -> None:
    admin.execute(REFERENCE_DDL)
    _insert_aged(admin, 5, 40, "old")
    holder = pg_server.admin_connect(pg_db)
    try:
        # A logger of the fleet in the middle of its retention purge.
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK))
        result: list[int] = []
        purging = threading.Thread(
            target=lambda: result.append(purge_older_than(pg_url, timedelta(days=30)))
        )
        purging.start()
        _wait_until(
            admin,
            "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted)",
        )
        assert _count(admin, "old") == 5  # nothing deleted while the logger purges
        holder.execute("COMMIT")
        purging.join(30)
    finally:
        holder.close()
    assert result == [5]
    assert _count(admin, "old") == 0
