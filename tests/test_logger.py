"""RetrievalFailureLogger and open_failure_logger: the recall path, the buffer, setup, shutdown."""

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
from trio_failurelog import (
    TABLE,
    DatabaseSetupError,
    IncompatibleSchemaError,
    RetrievalFailureLogger,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._sqlite import SQLiteStore

from ._failuredb import REFERENCE_DDL
from ._helpers import assert_accounted, count_rows, fetch, queries, record

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
    assert "the buffer is full (capacity 3);" in drops[0].getMessage()
    assert queries(db_path) == ["query 0", "query 1", "query 2"]
    summary = [r for r in lib_log.records if "closed:" in r.getMessage()]
    assert len(summary) == 1
    assert "7 dropped" in summary[0].getMessage()


async def test_a_closed_loggers_drop_warning_names_no_capacity(
    db_path: Path, lib_log: pytest.LogCaptureFixture
) -> None:
    async with open_failure_logger(db_path, capacity=3) as failures:
        pass
    assert failures.log(record(1)) is False
    (drop,) = [r for r in lib_log.records if "dropping" in r.getMessage()]
    assert "the logger is closed;" in drop.getMessage()
    assert "capacity" not in drop.getMessage()  # the buffer has nothing to do with it


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


# ------------------------------------------ closing early, a busy thread pool, an interrupted drain


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


@pytest.mark.parametrize(
    ("database", "label"),
    [
        ("it's here.db", "it's here.db"),
        ('say "no".db', 'say "no".db'),
        (Path("a") / "b.db", os.path.join("a", "b.db")),
        ("postgresql://u:se#cret@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ],
)
def test_database_label_is_the_name_unquoted_without_password(
    database: str | Path, label: str
) -> None:
    failures = RetrievalFailureLogger(database)
    assert failures.database_label == label
    assert failures.database_name == repr(label)
    assert "se#cret" not in failures.database_label
