"""The read API: query/count/follow, read-only opening, and the trio twins."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_failurelog import (
    DatabaseSetupError,
    IncompatibleSchemaError,
    RetrievalFailureRecord,
    RetrievalFailureType,
    open_failure_logger,
)
from trio_failurelog._reader import AsyncFailureReader, FailureReader, open_failure_reader
from trio_failurelog._table import TABLE
from trio_failurelog._timetext import created_at_text

from ._failuredb import REFERENCE_DDL, insert, make_db, row

ROWS = [
    row("no_hit", "semantic", "alpha", "2024-03-01 10:00:00", conversation_id=1, latency_ms=5),
    row(
        "low_confidence",
        "keyword",
        "beta",
        "2024-03-01 10:00:00.500",
        top_score=0.4,
        threshold=0.6,
        result_count=3,
        edge_types=["mentions", "part_of"],
    ),
    row("timeout", "semantic", "gamma", "2024-03-01 11:00:00", conversation_id=1, turn_index=2),
    row("error", "hybrid", "delta", "2024-03-01 12:00:00", error_context="boom"),
    row("no_hit", "keyword", "epsilon", "2024-03-02 09:30:00", conversation_id=2),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "read.db", ROWS)


def queries(records: object) -> list[str]:
    assert not isinstance(records, str)
    return [r.query_text for r in records]  # type: ignore[attr-defined]


def test_query_returns_records_newest_first_with_id_and_created_at(db: Path) -> None:
    with FailureReader(db) as reader:
        records = list(reader.query())
    assert queries(records) == ["epsilon", "delta", "gamma", "beta", "alpha"]
    beta = records[3]
    assert beta == RetrievalFailureRecord(
        RetrievalFailureType.LOW_CONFIDENCE,
        "keyword",
        "beta",
        top_score=0.4,
        confidence_threshold=0.6,
        result_count=3,
        edge_types=("mentions", "part_of"),
        id=2,
        created_at="2024-03-01 10:00:00.500",
    )
    assert type(beta.failure_type) is RetrievalFailureType
    assert records[1].error_context == "boom"


def test_query_filters(db: Path) -> None:
    with FailureReader(db) as reader:
        assert queries(reader.query(failure_type="no_hit")) == ["epsilon", "alpha"]
        assert queries(reader.query(failure_type=["timeout", "error"])) == ["delta", "gamma"]
        assert queries(reader.query(strategy="semantic")) == ["gamma", "alpha"]
        assert queries(reader.query(strategy=("keyword", "hybrid"), failure_type="no_hit")) == [
            "epsilon"
        ]
        assert queries(reader.query(conversation_id=1)) == ["gamma", "alpha"]
        # since is inclusive, until exclusive; text and datetimes compare alike.
        assert queries(
            reader.query(since="2024-03-01 10:00:00.500", until=datetime(2024, 3, 1, 12))
        ) == ["gamma", "beta"]
        aware = datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        assert queries(reader.query(until=aware)) == ["beta", "alpha"]  # 10:30 UTC
        assert queries(reader.query(limit=2)) == ["epsilon", "delta"]
        assert queries(reader.query(limit=0)) == []
        assert queries(reader.query(oldest_first=True, limit=3)) == ["alpha", "beta", "gamma"]
        assert queries(reader.query(strategy="nope")) == []
        assert reader.count() == 5
        assert reader.count(failure_type="no_hit", since="2024-03-02 00:00:00") == 1


def test_filter_values_are_bound_not_spliced(db: Path) -> None:
    with FailureReader(db) as reader:
        hostile = "x') OR 1=1 --"
        assert list(reader.query(strategy=hostile)) == []
        assert reader.count(conversation_id=1, strategy=[hostile, "s"]) == 0
        with pytest.raises(ValueError, match="unknown failure type"):
            reader.count(failure_type=hostile)  # type: ignore[arg-type]  # wrong on purpose


def test_bad_arguments_raise_at_the_call(db: Path) -> None:
    with FailureReader(db) as reader:
        with pytest.raises(ValueError, match="limit"):
            reader.query(limit=-1)
        with pytest.raises(TypeError, match="conversation_id"):
            reader.query(conversation_id="1")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="strategy"):
            reader.query(strategy=[1])  # type: ignore[list-item]
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            reader.query(since="yesterday")


def test_pages_through_ties_in_created_at_exactly_once(tmp_path: Path) -> None:
    same = "2024-01-01 00:00:00"
    path = make_db(tmp_path / "ties.db", [row("no_hit", "s", f"q{i}", same) for i in range(25)])
    with FailureReader(path) as reader:
        newest = [r.id for r in reader.query(page_size=3)]
        oldest = [r.id for r in reader.query(page_size=4, oldest_first=True)]
        limited = [r.id for r in reader.query(page_size=4, limit=10)]
    assert newest == list(range(25, 0, -1))
    assert oldest == list(range(1, 26))
    assert limited == list(range(25, 15, -1))


def test_query_is_lazy_one_page_at_a_time(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "lazy.db",
        [row("no_hit", "s", f"q{i}", f"2024-01-01 00:00:{i:02d}") for i in range(50)],
    )
    statements: list[str] = []
    with FailureReader(path) as reader:
        reader.connection.set_trace_callback(statements.append)
        records = reader.query(page_size=10)
        assert statements == []  # nothing runs before iteration
        first = [next(records) for _ in range(10)]
        assert len(statements) == 1
        next(records)
        assert len(statements) == 2
        assert first[0].query_text == "q49"
        assert "LIMIT" in statements[0]


def test_edge_types_are_read_tolerantly(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "edges.db",
        [
            row("no_hit", "s", "a", "2024-01-01 00:00:01", edge_types=None),
            row("no_hit", "s", "b", "2024-01-01 00:00:02", edge_types="not json ["),
            row("no_hit", "s", "c", "2024-01-01 00:00:03", edge_types='["x", 1, null]'),
            row("no_hit", "s", "d", "2024-01-01 00:00:04", edge_types='"single"'),
            row("no_hit", "s", "e", "2024-01-01 00:00:05", edge_types="{}"),
            row("no_hit", "s", "f", "2024-01-01 00:00:06", edge_types="[]"),
        ],
    )
    with FailureReader(path) as reader:
        edges = [r.edge_types for r in reader.query(oldest_first=True)]
    assert edges == [None, ("not json [",), ("x", "1", "null"), ("single",), ("{}",), ()]


def test_reads_a_database_written_by_the_reference_application(tmp_path: Path) -> None:
    path = tmp_path / "reference.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(REFERENCE_DDL)
    # As sqlx writes it: created_at left to datetime('now'), f32 scores, serde_json arrays.
    conn.execute(
        f"INSERT INTO {TABLE} (conversation_id, turn_index, failure_type, retrieval_strategy, "
        "query_text, query_len, top_score, confidence_threshold, result_count, latency_ms, "
        "edge_types, error_context) VALUES (7, 1, 'low_confidence', 'graph', "
        "'low confidence query', 20, 0.30000001192092896, 0.699999988079071, 2, 12, "
        '\'["causes","mentions"]\', NULL)'
    )
    conn.close()
    with FailureReader(path) as reader:
        (record,) = reader.query()
        summary = reader.summary()
    assert record.failure_type is RetrievalFailureType.LOW_CONFIDENCE
    assert record.edge_types == ("causes", "mentions")
    assert record.created_at is not None
    assert len(record.created_at) == 19  # whole seconds, no fraction
    assert created_at_text(timedelta(minutes=5)) <= record.created_at
    assert summary.total == 1
    assert summary.low_confidence[0].threshold == pytest.approx(0.7)


# ------------------------------------------------------------------ opening


def test_missing_file_is_a_setup_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(DatabaseSetupError, match=r"missing\.db' does not exist"):
        FailureReader(path)
    assert not path.exists()


def test_directory_is_a_setup_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseSetupError, match="is a directory"):
        FailureReader(tmp_path)


def test_not_a_database_is_a_setup_error_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "text.db"
    path.write_bytes(b"this is not sqlite\n" * 100)
    with pytest.raises(DatabaseSetupError, match=r"text\.db'.*file is not a database"):
        FailureReader(path)
    assert path.read_bytes() == b"this is not sqlite\n" * 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.db"]


def test_missing_table_and_missing_columns(tmp_path: Path) -> None:
    empty = tmp_path / "other.db"
    sqlite3.connect(empty).execute("CREATE TABLE unrelated (x)").connection.close()
    with pytest.raises(DatabaseSetupError, match="has no table 'memory_retrieval_failures'"):
        FailureReader(empty)
    narrow = tmp_path / "narrow.db"
    conn = sqlite3.connect(narrow)
    conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, failure_type TEXT)")
    conn.close()
    with pytest.raises(IncompatibleSchemaError, match=r"narrow\.db'.*lacks column.*query_text"):
        FailureReader(narrow)


def test_path_with_uri_characters(tmp_path: Path) -> None:
    odd = tmp_path / "we?ird #name%20&mode=rwc.db"
    make_db(odd, ROWS[:1])
    with FailureReader(odd) as reader:
        assert reader.count() == 1
    assert not (tmp_path / "we").exists()


def test_reader_cannot_write(db: Path) -> None:
    with FailureReader(db) as reader, pytest.raises(sqlite3.OperationalError, match="readonly"):
        reader.connection.execute(f"DELETE FROM {TABLE}")


def test_created_at_text_forms() -> None:
    assert created_at_text(datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02 03:04:05"
    assert created_at_text(datetime(2024, 1, 2, 3, 4, 5, 250_000)) == "2024-01-02 03:04:05.250"
    assert created_at_text(datetime(2024, 1, 2, 3, 4, 5, 7)) == "2024-01-02 03:04:05.000007"
    berlin = timezone(timedelta(hours=1))
    assert created_at_text(datetime(2024, 1, 2, 3, 0, tzinfo=berlin)) == "2024-01-02 02:00:00"
    now = datetime(2024, 1, 2, 3, 4, 5, 999_000, tzinfo=UTC)
    assert created_at_text(timedelta(hours=24), now=now) == "2024-01-01 03:04:05"
    with pytest.raises(TypeError, match="datetime, date, timedelta or str"):
        created_at_text(12)  # type: ignore[arg-type]


# ------------------------------------------------------------------ alongside a logger


async def test_reading_does_not_block_a_logger_writing(db_path: Path) -> None:
    async with open_failure_logger(db_path, flush_interval=0.01) as logger:
        for i in range(30):
            logger.log(RetrievalFailureRecord("no_hit", "s", f"q{i}"))
        await logger.flush()
        with FailureReader(db_path) as reader:
            pages = reader.query(page_size=10)
            first = next(pages)  # a query is under way...
            for i in range(30, 40):
                logger.log(RetrievalFailureRecord("no_hit", "s", f"q{i}"))
            with trio.fail_after(10):
                await logger.flush()  # ...and the logger still writes
            assert logger.statistics().written == 40
            assert first.query_text == "q29"
            assert len(list(pages)) == 29
            assert reader.count() == 40
        assert logger.statistics().failed == 0


# ------------------------------------------------------------------ the trio twins


async def test_async_reader_matches_the_sync_one(db: Path) -> None:
    with FailureReader(db) as reader:
        expected = list(reader.query(strategy="semantic"))
        expected_summary = reader.summary()
    async with open_failure_reader(db) as areader:
        assert isinstance(areader, AsyncFailureReader)
        got = [r async for r in areader.query(strategy="semantic", page_size=1)]
        assert got == expected
        assert await areader.count(failure_type="no_hit") == 2
        assert await areader.summary() == expected_summary
        assert [r.query_text async for r in areader.query(limit=1)] == ["epsilon"]


async def test_async_open_errors_raise_as_themselves(tmp_path: Path) -> None:
    with pytest.raises(DatabaseSetupError, match="does not exist"):
        async with open_failure_reader(tmp_path / "nope.db"):
            pass  # pragma: no cover


async def test_async_follow_sees_rows_appended_by_another_connection(
    db: Path, virtual_time: trio.testing.MockClock
) -> None:
    # virtual_time runs the reader's SQLite calls inline, so virtual time is exact.
    seen: list[str] = []
    async with open_failure_reader(db) as reader:

        async def follow() -> None:
            async for record in reader.follow(failure_type="no_hit", backlog=1, poll_interval=5):
                seen.append(record.query_text)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.sleep(1)
            assert seen == ["epsilon"]  # the backlog: the last matching row
            writer = sqlite3.connect(db, isolation_level=None)
            insert(
                writer,
                [
                    row("no_hit", "s", "new one", "2024-04-01 00:00:00"),
                    row("timeout", "s", "filtered out", "2024-04-01 00:00:01"),
                    row("no_hit", "s", "new two", "2024-04-01 00:00:02"),
                ],
            )
            writer.close()
            await trio.sleep(10)
            assert seen == ["epsilon", "new one", "new two"]
            nursery.cancel_scope.cancel()


def test_sync_follow_polls_with_the_given_sleep(db: Path) -> None:
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            writer = sqlite3.connect(db, isolation_level=None)
            insert(writer, [row("error", "hybrid", "fresh", "2024-05-01 00:00:00")])
            writer.close()

    with FailureReader(db) as reader:
        records = reader.follow(strategy="hybrid", backlog=5, poll_interval=0.25, sleep=nap)
        assert next(records).query_text == "delta"
        assert next(records).query_text == "fresh"
    assert naps == [0.25]


async def test_cancelled_call_is_abandoned_and_the_reader_stays_usable(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "big.db",
        [row("no_hit", "s", f"q{i % 7}", f"2024-01-01 00:00:{i % 60:02d}") for i in range(2000)],
    )
    started = threading.Event()
    release = threading.Event()
    calls: list[str] = []

    def stuck(text: str) -> str:
        # Stands in for a slow statement: the summary's repeated-query pass calls it.
        calls.append(text)
        started.set()
        release.wait(10)
        return text

    async with open_failure_reader(path) as reader:
        reader._core.db.raw.create_function("failurelog_normalise", 1, stuck)
        with trio.move_on_after(10) as scope:
            async with trio.open_nursery() as nursery:

                async def cancel_once_running() -> None:
                    await trio.to_thread.run_sync(started.wait)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(cancel_once_running)
                await reader.summary()
                pytest.fail("summary() returned although cancelled")  # pragma: no cover
        assert not scope.cancelled_caught  # the nursery's own cancel ended it, at once
        assert not release.is_set()  # ...while the statement was still stuck on its thread
        release.set()
        # The next call waits for the abandoned thread, whose statement is interrupted.
        assert await reader.count() == 2000
        assert len(calls) < 2000  # interrupted, not run to the end of the 2000 rows
    # Closed: further calls are refused rather than touching a closed connection.
    with pytest.raises(trio.ClosedResourceError):
        await reader.count()


async def test_a_call_cancelled_while_waiting_interrupts_no_other(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "big.db",
        [row("no_hit", "s", f"q{i % 7}", f"2024-01-01 00:00:{i % 60:02d}") for i in range(500)],
    )
    started = threading.Event()
    release = threading.Event()

    def slow(text: str) -> str:
        started.set()
        release.wait(10)
        return text

    async with open_failure_reader(path) as reader:
        reader._core.db.raw.create_function("failurelog_normalise", 1, slow)
        async with trio.open_nursery() as nursery:
            results: list[int] = []

            async def first() -> None:  # runs a slow statement
                summary = await reader.summary()
                results.append(summary.total)

            nursery.start_soon(first)
            await trio.to_thread.run_sync(started.wait)
            with trio.CancelScope() as second:

                async def give_up_once_waiting() -> None:
                    await trio.testing.wait_all_tasks_blocked()
                    second.cancel()

                nursery.start_soon(give_up_once_waiting)
                await reader.count()  # waits for its turn, and is cancelled there
            assert second.cancelled_caught
            release.set()
        assert results == [500]  # the first call was not interrupted by the second's cancel
