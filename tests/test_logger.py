"""RetrievalFailureLogger and open_failure_logger: the recall path, the writer, shutdown."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import stat
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_failurelog._logger as logger_module
import trio_failurelog._writer as writer_module
from trio_failurelog import (
    TABLE,
    DatabaseSetupError,
    IncompatibleSchemaError,
    RetrievalFailureLogger,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._sqlite_store import SQLiteStore
from trio_failurelog._storage import BatchOutcome, QueuedRecord

from ._failuredb import REFERENCE_DDL
from .helpers import assert_accounted, count_rows, fetch, queries, record

# ---------------------------------------------------------------- writing rows


async def test_rows_hold_every_field(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logger_module, "_now", lambda: 1_700_000_000.25)
    full = RetrievalFailureRecord(
        "low_confidence",
        "hybrid",
        "what's my dog's name?",
        conversation_id=42,
        turn_index=3,
        top_score=0.31,
        confidence_threshold=0.7,
        result_count=5,
        latency_ms=12,
        edge_types=("mentions", "caused_by"),
        error_context=None,
    )
    bare = RetrievalFailureRecord("error", "graph", "q", error_context="backend: 503")
    async with open_failure_logger(db_path) as failures:
        assert failures.log(full)
        assert failures.log(bare)
    first, second = fetch(db_path)
    assert dict(first) == {
        "id": 1,
        "conversation_id": 42,
        "turn_index": 3,
        "failure_type": "low_confidence",
        "retrieval_strategy": "hybrid",
        "query_text": "what's my dog's name?",
        "query_len": len(b"what's my dog's name?"),
        "top_score": 0.31,
        "confidence_threshold": 0.7,
        "result_count": 5,
        "latency_ms": 12,
        "edge_types": '["mentions","caused_by"]',
        "error_context": None,
        "created_at": "2023-11-14 22:13:20.250",  # the time of log(), in UTC
    }
    assert second["failure_type"] == "error"
    assert second["conversation_id"] is None
    assert second["top_score"] is None
    assert second["edge_types"] is None
    assert second["error_context"] == "backend: 503"


async def test_created_at_is_the_time_of_log_not_of_the_write(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1_700_000_000.0]
    monkeypatch.setattr(logger_module, "_now", lambda: now[0])
    async with open_failure_logger(db_path) as failures:
        failures.log(record(1))
        now[0] += 3600  # an hour passes before the batch is written
        await failures.flush()
        assert failures.statistics().written == 1
    assert fetch(db_path)[0]["created_at"] == "2023-11-14 22:13:20.000"


async def test_explicit_created_at_is_kept(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        failures.log(record(created_at="2020-02-03 04:05:06"))
    assert fetch(db_path)[0]["created_at"] == "2020-02-03 04:05:06"


async def test_log_truncates_long_text_but_keeps_the_original_length(db_path: Path) -> None:
    query = "ü" * 600
    async with open_failure_logger(db_path) as failures:
        failures.log(record(query_text=query, error_context="e" * 300))
        await failures.send(record(query_text="x" * 1000))
    rows = fetch(db_path)
    assert rows[0]["query_text"] == "ü" * 512
    assert rows[0]["query_len"] == len(query.encode())
    assert rows[0]["error_context"] == "e" * 256
    assert len(rows[1]["query_text"]) == 512
    assert rows[1]["query_len"] == 1000


async def test_new_file_is_owner_only_and_versioned(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        failures.log(record())
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    assert fetch(db_path, "PRAGMA user_version")[0][0] == 1
    assert fetch(db_path, "PRAGMA journal_mode")[0][0] == "wal"


async def test_memory_database_works() -> None:
    async with open_failure_logger(":memory:") as failures:
        failures.log(record())
        await failures.flush()
        assert failures.statistics().written == 1


# ---------------------------------------------------------------- batching and flush


async def test_batches_by_size_then_by_deadline(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, batch_size=10, flush_interval=5) as failures:
        for i in range(25):
            failures.log(record(i))
        await trio.sleep(4.9)
        stats = failures.statistics()
        assert (stats.written, stats.batches, stats.queued) == (20, 2, 5)
        assert_accounted(stats)
        await trio.sleep(0.2)  # the last partial batch's deadline passes
        stats = failures.statistics()
        assert (stats.written, stats.batches, stats.queued) == (25, 3, 0)
    assert queries(db_path) == [f"query {i}" for i in range(25)]


async def test_deadline_counts_from_the_first_record_of_a_batch(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, flush_interval=10) as failures:
        failures.log(record(1))
        await trio.sleep(6)
        failures.log(record(2))
        await trio.sleep(3.9)
        assert failures.statistics().written == 0
        await trio.sleep(0.2)
        assert failures.statistics().written == 2


async def test_flush_writes_the_partial_batch_now(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, flush_interval=1000) as failures:
        for i in range(5):
            failures.log(record(i))
        start = trio.current_time()
        await failures.flush()
        assert trio.current_time() - start < 1
        assert failures.statistics().written == 5
        assert count_rows(db_path) == 5
        await failures.flush()  # nothing pending: returns at once


async def test_flush_waits_only_for_records_accepted_before_it(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(
        db_path, batch_size=10, flush_interval=1000, busy_timeout=0
    ) as failures:
        await failures.flush()  # the writer is up and idle
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the writer will retry its first batch
        for i in range(10):
            failures.log(record(i))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(failures.flush)
            await trio.sleep(1)  # flush() is waiting; the writer is backing off
            assert failures.statistics().written == 0
            for i in range(10, 15):
                failures.log(record(i))  # accepted after flush() began
            other.execute("COMMIT")
            other.close()
        stats = failures.statistics()
        assert (stats.written, stats.queued) == (10, 5)  # the later five still gather
        assert_accounted(stats)
        assert trio.current_time() < 100


async def test_cancelled_flush_loses_nothing(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, flush_interval=50) as failures:
        failures.log(record(1))
        with trio.CancelScope() as scope:
            scope.cancel()
            await failures.flush()
        assert failures.statistics().queued == 1
    assert count_rows(db_path) == 1


# ---------------------------------------------------------------- the buffer


async def test_full_buffer_drops_counts_and_warns_once(
    db_path: Path, lib_log: pytest.LogCaptureFixture
) -> None:
    async with open_failure_logger(db_path, capacity=3) as failures:
        results = [failures.log(record(i)) for i in range(10)]  # no checkpoint in between
        assert results == [True] * 3 + [False] * 7
        stats = failures.statistics()
        assert (stats.accepted, stats.dropped_full, stats.queued) == (3, 7, 3)
        assert_accounted(stats)
    drops = [r for r in lib_log.records if "dropping" in r.getMessage()]
    assert len(drops) == 1
    assert drops[0].levelno == logging.WARNING
    assert "buffer is full" in drops[0].getMessage()
    assert queries(db_path) == ["query 0", "query 1", "query 2"]
    summary = [r for r in lib_log.records if "closed:" in r.getMessage()]
    assert len(summary) == 1
    assert "7 dropped" in summary[0].getMessage()


async def test_drop_warning_again_after_a_quiet_spell(
    db_path: Path,
    lib_log: pytest.LogCaptureFixture,
    virtual_time: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logger_module, "_drop_clock", trio.current_time)
    async with open_failure_logger(db_path, capacity=1) as failures:

        def overload() -> int:
            """Log until one record is dropped; return the drop count so far."""
            while failures.log(record()):
                pass
            return failures.statistics().dropped_full

        def warnings() -> int:
            return sum("dropping" in r.getMessage() for r in lib_log.records)

        assert overload() == 1
        await trio.sleep(30)
        assert overload() == 2  # within the quiet period after the last drop
        assert warnings() == 1
        await trio.sleep(30)
        assert overload() == 3  # 60 s after the first drop, but only 30 s of quiet
        assert warnings() == 1
        await trio.sleep(logger_module.DROP_WARNING_QUIET)
        assert overload() == 4
        assert warnings() == 2


async def test_send_waits_for_room_instead_of_dropping(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, capacity=2, batch_size=3) as failures:
        for i in range(50):
            assert await failures.send(record(i))
        stats = failures.statistics()
        assert stats.dropped_full == 0
        assert stats.accepted == 50
    assert queries(db_path) == [f"query {i}" for i in range(50)]


async def test_cancelled_send_queues_nothing(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, capacity=1, batch_size=1, busy_timeout=0) as failures:
        await failures.flush()  # the writer is up and idle
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the writer will be stuck retrying
        assert await failures.send(record(0))  # taken by the writer, which then waits
        await trio.sleep(0.5)
        assert await failures.send(record(1))  # fills the buffer
        with trio.move_on_after(1) as scope:
            await failures.send(record(2))  # no room while the lock is held
        assert scope.cancelled_caught
        stats = failures.statistics()
        assert (stats.accepted, stats.queued) == (2, 2)
        assert_accounted(stats)
        other.execute("COMMIT")
        other.close()
    assert queries(db_path) == ["query 0", "query 1"]


async def test_send_in_a_cancelled_scope_queues_nothing(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        with trio.CancelScope() as scope:
            scope.cancel()
            await failures.send(record())  # room in the buffer, but cancelled first
        assert scope.cancelled_caught
        assert failures.statistics().accepted == 0


async def test_a_producer_that_never_waits_still_lets_others_run(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    ticks = 0

    async def other_task() -> None:
        nonlocal ticks
        while True:
            await trio.lowlevel.checkpoint()
            ticks += 1

    async with (
        open_failure_logger(db_path, capacity=100_000) as failures,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(other_task)
        for i in range(1280):
            await failures.send(record(i))  # always room: no waiting
        # One tick per yield, less the first few that start the task; 0 if it never yielded.
        assert ticks >= 1280 // logger_module._SEND_YIELD_EVERY - 3
        nursery.cancel_scope.cancel()


async def test_log_and_send_after_close_are_dropped_not_raised(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        pass
    assert failures.log(record()) is False
    assert await failures.send(record()) is False
    stats = failures.statistics()
    assert stats.dropped_closed == 2
    assert stats.closed


async def test_log_rejects_what_is_not_a_record(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        with pytest.raises(TypeError, match="RetrievalFailureRecord"):
            failures.log("no_hit")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="RetrievalFailureRecord"):
            failures.log_threadsafe(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- threads


async def test_log_threadsafe_from_a_worker_thread(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:

        def sync_recall_code() -> None:
            for i in range(200):
                failures.log_threadsafe(record(i))

        await trio.to_thread.run_sync(sync_recall_code)
        await trio.testing.wait_all_tasks_blocked()
        await failures.flush()
        assert failures.statistics().written == 200
    assert sorted(queries(db_path)) == sorted(f"query {i}" for i in range(200))


async def test_log_threadsafe_hand_over_is_bounded(db_path: Path) -> None:
    async with open_failure_logger(db_path, capacity=5) as failures:
        # The trio thread does not run the hand-overs until this task yields.
        for i in range(20):
            failures.log_threadsafe(record(i))
        assert failures.statistics().dropped_full == 15
        await trio.testing.wait_all_tasks_blocked()
        stats = failures.statistics()
        assert stats.accepted == 5
        assert_accounted(stats)


async def test_a_ctrl_c_during_a_hand_over_gives_its_place_back(db_path: Path) -> None:
    # From the main thread of a program whose trio run is in another thread,
    # a Ctrl-C can interrupt log_threadsafe() anywhere: here, inside the
    # hand-over itself. The places it had taken must not stay taken.
    class Interrupted:
        def run_sync_soon(self, *args: object) -> None:
            raise KeyboardInterrupt

    async with open_failure_logger(db_path, capacity=3) as failures:
        token = failures._token
        failures._token = Interrupted()  # type: ignore[assignment]
        for i in range(3):
            with pytest.raises(KeyboardInterrupt):
                failures.log_threadsafe(record(i))
        failures._token = token
        assert [failures.log_threadsafe(record(i)) for i in range(3, 6)] == [True] * 3
        await trio.testing.wait_all_tasks_blocked()
        stats = failures.statistics()
        assert (stats.accepted, stats.dropped_full) == (3, 0)
        assert_accounted(stats)


def test_log_threadsafe_after_the_run_ended_is_counted(db_path: Path) -> None:
    holder: list[RetrievalFailureLogger] = []

    async def main() -> None:
        async with open_failure_logger(db_path) as failures:
            holder.append(failures)

    trio.run(main)
    holder[0].log_threadsafe(record())
    assert holder[0].statistics().dropped_closed == 1


# ---------------------------------------------------------------- structured concurrency


async def test_cancelled_block_still_writes_what_was_queued(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    with trio.CancelScope() as scope:
        async with open_failure_logger(db_path, flush_interval=100) as failures:
            for i in range(30):
                failures.log(record(i))
            scope.cancel()
            await trio.sleep(1)
            pytest.fail("not reached: the sleep is cancelled")
    assert scope.cancelled_caught
    stats = failures.statistics()
    assert (stats.written, stats.failed, stats.queued) == (30, 0, 0)
    assert count_rows(db_path) == 30


async def test_exception_in_block_comes_out_as_itself(db_path: Path) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom) as info:
        async with open_failure_logger(db_path) as failures:
            failures.log(record())
            raise Boom("recall crashed")
    assert not isinstance(info.value, BaseExceptionGroup)
    assert str(info.value) == "recall crashed"
    assert count_rows(db_path) == 1


async def test_exception_in_block_while_the_scope_is_cancelled(db_path: Path) -> None:
    with trio.CancelScope() as scope, pytest.raises(KeyError):
        async with open_failure_logger(db_path) as failures:
            failures.log(record())
            scope.cancel()
            raise KeyError("mine")
    assert count_rows(db_path) == 1


async def test_logger_runs_in_a_users_nursery(db_path: Path) -> None:
    failures = RetrievalFailureLogger(db_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(failures.run)
        failures.log(record(1))
        await failures.aclose()
        await failures.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="only once"):
        await failures.run()
    assert count_rows(db_path) == 1


async def test_aclose_before_run_fails_what_was_queued(db_path: Path) -> None:
    failures = RetrievalFailureLogger(db_path)
    failures.log(record())
    await failures.aclose()
    stats = failures.statistics()
    assert (stats.accepted, stats.failed, stats.queued) == (1, 1, 0)
    assert stats.last_error is not None
    assert "before its writer started" in stats.last_error


async def test_records_logged_before_run_are_written(db_path: Path) -> None:
    failures = RetrievalFailureLogger(db_path)
    failures.log(record(1))
    async with trio.open_nursery() as nursery:
        await nursery.start(failures.run)
        await failures.flush()
        await failures.aclose()
    assert queries(db_path) == ["query 1"]


# ---------------------------------------------------------------- setup errors


async def test_missing_directory_raises_plain_setup_error(tmp_path: Path) -> None:
    with pytest.raises(DatabaseSetupError, match="cannot open database") as info:
        async with open_failure_logger(tmp_path / "nope" / "f.db"):
            pytest.fail("not reached")
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_not_a_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    content = b"these are my notes, not a database\n" * 200
    path.write_bytes(content)
    with pytest.raises(DatabaseSetupError, match="not a database"):
        async with open_failure_logger(path):
            pytest.fail("not reached")
    assert path.read_bytes() == content
    assert not (tmp_path / "notes.txt-wal").exists()


async def test_incompatible_table_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, what TEXT)")
    conn.close()
    with pytest.raises(IncompatibleSchemaError, match="'failure_type' is missing"):
        async with open_failure_logger(db_path):
            pytest.fail("not reached")


async def test_records_logged_before_a_failed_open_are_counted(tmp_path: Path) -> None:
    failures = RetrievalFailureLogger(tmp_path / "missing" / "x.db")
    failures.log(record())
    async with trio.open_nursery() as nursery:
        with pytest.raises(DatabaseSetupError):
            await nursery.start(failures.run)
    stats = failures.statistics()
    assert (stats.failed, stats.closed) == (1, True)
    assert failures.log(record()) is False


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("capacity", 0, ValueError),
        ("capacity", 1.5, TypeError),
        ("batch_size", -1, ValueError),
        ("batch_size", True, TypeError),
        ("flush_interval", 0, ValueError),
        ("flush_interval", float("nan"), ValueError),
        ("flush_interval", float("inf"), ValueError),
        ("retention_days", -3, ValueError),
        ("retention_days", "90", TypeError),
        ("purge_every", 0, ValueError),
        ("drain_timeout", -1, ValueError),
        ("busy_timeout", "1", TypeError),
        ("retry_timeout", -0.5, ValueError),
        ("synchronous", "SOMETIMES", ValueError),
    ],
)
def test_bad_settings_raise_at_construction_naming_the_argument(
    argument: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=argument):
        open_failure_logger(":memory:", **{argument: value})  # type: ignore[arg-type]


def test_bad_database_argument_type() -> None:
    with pytest.raises(TypeError, match="database"):
        RetrievalFailureLogger(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------- storage trouble at run time


@pytest.fixture
def faulty_writes(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """Make the next write_batch calls raise the listed errors (None: write normally)."""
    plan: list[BaseException | None] = []
    real = SQLiteStore.write_batch

    def write_batch(
        self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any
    ) -> BatchOutcome:
        if plan:
            error = plan.pop(0)
            if error is not None:
                raise error
        return real(self, items, **kwargs)

    monkeypatch.setattr(SQLiteStore, "write_batch", write_batch)
    return plan


async def test_storage_error_fails_one_batch_and_the_writer_carries_on(
    db_path: Path,
    faulty_writes: list[BaseException | None],
    lib_log: pytest.LogCaptureFixture,
) -> None:
    faulty_writes.append(sqlite3.OperationalError("disk I/O error"))
    async with open_failure_logger(db_path) as failures:
        for i in range(3):
            failures.log(record(i))
        await failures.flush()
        stats = failures.statistics()
        assert (stats.written, stats.failed) == (0, 3)
        assert stats.last_error == "OperationalError: disk I/O error"
        for i in range(3, 5):
            failures.log(record(i))
        await failures.flush()
        stats = failures.statistics()
        assert (stats.written, stats.failed) == (2, 3)
        assert_accounted(stats)
    assert queries(db_path) == ["query 3", "query 4"]
    warnings = [r for r in lib_log.records if "could not write" in r.getMessage()]
    assert len(warnings) == 1
    assert "disk I/O error" in warnings[0].getMessage()


async def test_failure_warnings_are_rate_limited(
    db_path: Path,
    faulty_writes: list[BaseException | None],
    lib_log: pytest.LogCaptureFixture,
    virtual_time: trio.testing.MockClock,
) -> None:
    faulty_writes.extend(sqlite3.OperationalError("disk I/O error") for _ in range(5))
    async with open_failure_logger(db_path) as failures:
        for i in range(4):
            failures.log(record(i))
            await failures.flush()
        await trio.sleep(writer_module.FAILURE_WARNING_INTERVAL)
        failures.log(record(4))
        await failures.flush()
        assert failures.statistics().failed == 5
    warnings = [r.getMessage() for r in lib_log.records if "could not write" in r.getMessage()]
    assert len(warnings) == 2
    assert warnings[1].startswith("could not write 4 ")  # the ones not reported before


async def test_unexpected_exception_in_a_write_is_contained(
    db_path: Path, faulty_writes: list[BaseException | None]
) -> None:
    faulty_writes.append(MemoryError())
    async with open_failure_logger(db_path) as failures:
        failures.log(record())
        await failures.flush()
        assert failures.statistics().failed == 1


async def test_one_refused_row_does_not_cost_the_batch(db_path: Path) -> None:
    # The application sharing the file may refuse rows (here, a trigger).
    async with open_failure_logger(db_path):
        pass
    conn = sqlite3.connect(db_path)
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} WHEN NEW.query_text = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
    )
    conn.close()
    async with open_failure_logger(db_path) as failures:
        failures.log(record(1))
        failures.log(record(query_text="poison"))
        failures.log(record(3))
        await failures.flush()
        stats = failures.statistics()
        assert (stats.written, stats.failed, stats.batches) == (2, 1, 1)
        assert stats.last_error is not None
        assert "poisoned row" in stats.last_error
    assert queries(db_path) == ["query 1", "query 3"]


async def test_busy_database_is_retried_until_the_lock_is_released(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, busy_timeout=0) as failures:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        for i in range(10):
            failures.log(record(i))
        await trio.sleep(3)  # the writer backs off and retries meanwhile
        assert failures.statistics().written == 0
        other.execute("COMMIT")
        other.close()
        await failures.flush()
        stats = failures.statistics()
        assert (stats.written, stats.failed) == (10, 0)
        assert stats.retries >= 5  # 10 ms doubling up to 3 s: at least 8 sleeps
    assert count_rows(db_path) == 10


async def test_lock_held_past_retry_timeout_fails_the_batch_then_recovers(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, busy_timeout=0, retry_timeout=2) as failures:
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        failures.log(record(1))
        await failures.flush()
        stats = failures.statistics()
        assert (stats.written, stats.failed) == (0, 1)
        assert stats.last_error is not None
        assert "locked" in stats.last_error
        other.execute("COMMIT")
        other.close()
        failures.log(record(2))
        await failures.flush()
        assert failures.statistics().written == 1
    assert queries(db_path) == ["query 2"]


async def test_drain_timeout_is_honoured_when_the_disk_hangs(
    db_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lib_log: pytest.LogCaptureFixture,
    autojump_clock: trio.testing.MockClock,  # real threads: the hang is in one
) -> None:
    release = threading.Event()
    real = SQLiteStore.write_batch
    calls: list[int] = []

    def hanging_write(
        self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any
    ) -> BatchOutcome:
        calls.append(len(items))
        if len(calls) > 1:
            release.wait(30)  # a disk that stops answering after the first write
        return real(self, items, **kwargs)

    monkeypatch.setattr(SQLiteStore, "write_batch", hanging_write)
    try:
        async with open_failure_logger(
            db_path, drain_timeout=2, flush_interval=100, batch_size=4
        ) as failures:
            failures.log(record(0))
            await failures.flush()
            for i in range(1, 11):
                failures.log(record(i))
            start = trio.current_time()
        elapsed = trio.current_time() - start
        assert 2 <= elapsed < 2.5
        stats = failures.statistics()
        assert (stats.written, stats.failed, stats.queued) == (1, 10, 0)
        assert stats.last_error is not None
        assert "drain_timeout" in stats.last_error
        # One write hung (or was abandoned before its thread even began); no other began.
        assert calls in ([1], [1, 4])
    finally:
        release.set()
    summary = [r for r in lib_log.records if "closed:" in r.getMessage()]
    assert len(summary) == 1
    assert "10 failed" in summary[0].getMessage()


# ---------------------------------------------------------------- retention


def insert_aged(path: Path, count: int, created_at: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    with conn:
        conn.executemany(
            f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at) "
            "VALUES ('no_hit', 'old', 'q', ?)",
            [(created_at,)] * count,
        )
    conn.close()


async def test_purge_at_open_deletes_old_rows_in_chunks(db_path: Path) -> None:
    async with open_failure_logger(db_path):
        pass
    insert_aged(db_path, 2500, "2001-01-01 00:00:00")
    insert_aged(db_path, 3, "2999-01-01 00:00:00")
    async with open_failure_logger(db_path, retention_days=30) as failures:
        failures.log(record())
        await failures.flush()  # the purge at open runs before the first batch
        assert failures.statistics().purged == 2500
    assert count_rows(db_path) == 4


async def test_purge_every_n_batches(db_path: Path, virtual_time: trio.testing.MockClock) -> None:
    async with open_failure_logger(db_path, retention_days=1, purge_every=3) as failures:
        insert_aged(db_path, 5, "2001-01-01 00:00:00")  # before the purge at open
        failures.log(record(0))
        await failures.flush()  # the purge at open, then batch 1
        assert failures.statistics().purged == 5
        insert_aged(db_path, 7, "2001-01-01 00:00:00")
        failures.log(record(1))  # batch 2
        await failures.flush()
        await trio.sleep(1)  # virtual; wait_all_tasks_blocked() counts a thread wait as blocked
        assert failures.statistics().purged == 5
        failures.log(record(2))  # batch 3 is the third since the purge at open
        await failures.flush()
        await trio.sleep(1)  # virtual; wait_all_tasks_blocked() counts a thread wait as blocked
        assert failures.statistics().purged == 12
    assert count_rows(db_path) == 3


async def test_no_retention_keeps_everything(db_path: Path) -> None:
    async with open_failure_logger(db_path):
        pass
    insert_aged(db_path, 5, "2001-01-01 00:00:00")
    async with open_failure_logger(db_path, retention_days=None, purge_every=1) as failures:
        failures.log(record())
    assert failures.statistics().purged == 0
    assert count_rows(db_path) == 6


# ---------------------------------------------------------------- the reference application


async def test_reference_application_file_is_appended_and_readable(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("CREATE TABLE conversations (id INTEGER PRIMARY KEY)")
    conn.executescript(REFERENCE_DDL)
    conn.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, query_len) "
        "VALUES ('no_hit', 'semantic', 'theirs', 6)"
    )
    conn.close()
    async with open_failure_logger(db_path) as failures:
        failures.log(record(query_text="ours"))
    rows = fetch(db_path)
    assert [row["query_text"] for row in rows] == ["theirs", "ours"]
    # The reference purge compares created_at as text against 'YYYY-MM-DD HH:MM:SS'.
    theirs, ours = rows[0]["created_at"], rows[1]["created_at"]
    assert ours[:19] >= theirs
    purge_all = fetch(
        db_path, f"SELECT count(*) FROM {TABLE} WHERE created_at < '9999-12-31 23:59:59'"
    )
    assert purge_all[0][0] == 2


# ---------------------------------------------------------------- found in review


async def test_closed_before_its_writer_was_scheduled_raises_nothing(db_path: Path) -> None:
    failures = RetrievalFailureLogger(db_path)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(failures.run)
        failures.log(record())
        await failures.aclose()  # before run() got its first turn
    stats = failures.statistics()
    assert (stats.accepted, stats.failed, stats.closed) == (1, 1, True)


async def test_a_busy_application_thread_pool_does_not_starve_the_writer(db_path: Path) -> None:
    # trio's default limiter allows 40 threads; the application has them all.
    stop = threading.Event()
    limiter = trio.to_thread.current_default_thread_limiter()
    async with trio.open_nursery() as nursery:

        async def hold_a_thread() -> None:
            await trio.to_thread.run_sync(stop.wait)

        for _ in range(int(limiter.total_tokens)):
            nursery.start_soon(hold_a_thread)
        await trio.testing.wait_all_tasks_blocked()
        try:
            async with open_failure_logger(db_path, drain_timeout=5) as failures:
                for i in range(5):
                    failures.log(record(i))
            assert failures.statistics().written == 5
        finally:
            stop.set()
    assert count_rows(db_path) == 5


def test_an_interrupt_during_the_drain_still_closes_the_logger(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = SQLiteStore.write_batch

    def interrupted(
        self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any
    ) -> BatchOutcome:
        if holder[0].statistics().closed:
            raise KeyboardInterrupt  # Ctrl-C lands in the writer while it drains
        return real(self, items, **kwargs)

    monkeypatch.setattr(SQLiteStore, "write_batch", interrupted)
    holder: list[RetrievalFailureLogger] = []
    outcome: list[BaseException] = []

    async def main() -> None:
        async with open_failure_logger(db_path, flush_interval=100) as failures:
            holder.append(failures)
            failures.log(record())

    def in_a_thread() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # noqa: ASYNC103  # the test keeps whatever trio.run raises
            outcome.append(exc)

    runner = threading.Thread(target=in_a_thread, daemon=True)
    runner.start()
    runner.join(20)
    assert not runner.is_alive(), "closing hung after an interrupt in the drain"
    assert len(outcome) == 1
    assert isinstance(outcome[0], KeyboardInterrupt)
    stats = holder[0].statistics()
    assert (stats.accepted, stats.failed, stats.queued) == (1, 1, 0)


# ---------------------------------------------------------------- the wrong thread, the wrong run


async def test_log_from_a_plain_thread_raises_a_clear_error(db_path: Path) -> None:
    async with open_failure_logger(db_path) as failures:
        failures.log(record(0))
        errors: list[BaseException] = []

        def from_a_thread() -> None:
            for call in (
                lambda: failures.log(record(1)),
                lambda: trio.run(failures.send, record(2)),
                lambda: trio.run(failures.flush),
                lambda: trio.run(failures.aclose),
            ):
                try:
                    call()
                except RuntimeError as exc:
                    errors.append(exc)

        await trio.to_thread.run_sync(from_a_thread)
        assert len(errors) == 4
        assert all("log_threadsafe()" in str(error) for error in errors)
        # Nothing was torn: the logger goes on as before.
        assert failures.log(record(3))
        await failures.flush()
        stats = failures.statistics()
        assert (stats.accepted, stats.written, stats.closed) == (2, 2, False)
    assert queries(db_path) == ["query 0", "query 3"]


def test_log_from_a_second_trio_run_raises_a_clear_error(db_path: Path) -> None:
    ready = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    async def second_run(failures: RetrievalFailureLogger) -> None:  # noqa: ASYNC124, ASYNC910  # trio.run needs an async function
        try:
            failures.log(record(1))
        except RuntimeError as exc:
            errors.append(exc)

    async def main() -> None:
        async with open_failure_logger(db_path) as failures:

            def other_thread() -> None:
                ready.wait(10)
                trio.run(second_run, failures)
                done.set()

            thread = threading.Thread(target=other_thread)
            thread.start()
            ready.set()
            await trio.to_thread.run_sync(done.wait, 10)
            thread.join(10)
            assert failures.log(record(2))

    trio.run(main)
    assert len(errors) == 1
    assert "log_threadsafe()" in str(errors[0])
    assert queries(db_path) == ["query 2"]


async def test_log_threadsafe_says_whether_it_took_the_record(db_path: Path) -> None:
    async with open_failure_logger(db_path, capacity=3) as failures:
        taken = [failures.log_threadsafe(record(i)) for i in range(5)]
        assert taken == [True, True, True, False, False]
    never_run = RetrievalFailureLogger(db_path)
    assert await trio.to_thread.run_sync(never_run.log_threadsafe, record()) is True
    assert never_run.statistics().dropped_closed == 0


def test_log_threadsafe_outside_any_run_is_refused(db_path: Path) -> None:
    failures = RetrievalFailureLogger(db_path)  # built outside trio.run: no run to hand to
    assert failures.log_threadsafe(record()) is False
    assert failures.statistics().dropped_closed == 1


# ---------------------------------------------------------------- Ctrl-C inside the bookkeeping


def _with_sigint_delivery() -> object:
    """Python's SIGINT handler, so that trio.run installs its own (see tests/test_writer.py)."""
    return signal.signal(signal.SIGINT, signal.default_int_handler)


class _InterruptAfter:
    """Wraps a callable: calls it, then presses Ctrl-C (once) before returning."""

    def __init__(self, inner: Callable[..., Any]) -> None:
        self.inner = inner
        self.pressed = False

    def __call__(self, *args: Any) -> Any:
        result = self.inner(*args)
        if not self.pressed:
            self.pressed = True
            signal.raise_signal(signal.SIGINT)
        return result


@pytest.mark.parametrize("where", ["log", "send", "log_threadsafe", "writer_take"])
def test_ctrl_c_between_queueing_and_counting_tears_nothing(db_path: Path, where: str) -> None:
    previous = _with_sigint_delivery()
    interrupts: list[str] = []

    async def main() -> None:
        async with open_failure_logger(db_path, flush_interval=0.01) as failures:
            if where == "writer_take":
                receive = failures._writer._receive
                press = _InterruptAfter(receive.receive_nowait)
                monkey = pytest.MonkeyPatch()
                monkey.setattr(receive, "receive_nowait", press)
            else:
                press = _InterruptAfter(failures._send_nowait)
                failures._send_nowait = press  # type: ignore[assignment]  # a wrapper that presses Ctrl-C
            for i in range(3):
                try:
                    if where == "log":
                        failures.log(record(i))
                    elif where == "send":
                        await failures.send(record(i))
                    elif where == "log_threadsafe":
                        await trio.to_thread.run_sync(failures.log_threadsafe, record(i))
                    else:
                        failures.log(record(i))
                    await trio.sleep(0.05)  # a Ctrl-C held back is delivered here
                except KeyboardInterrupt:
                    interrupts.append(where)
                    await trio.sleep(0.05)
            assert press.pressed
            await failures.flush()
            stats = failures.statistics()
            assert_accounted(stats)
            assert (stats.accepted, stats.written, stats.queued) == (3, 3, 0), stats

    try:
        trio.run(main)
    finally:
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]
    assert interrupts == [where]  # delivered to the program, once, at a checkpoint
    assert count_rows(db_path) == 3
