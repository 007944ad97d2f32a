"""The writer task: batching, flush, wake-ups, storage trouble, retention, draining, closing."""

from __future__ import annotations

import itertools
import logging
import random
import signal
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_failurelog._writer as writer_module
from trio_failurelog import (
    REDACTION_FAILED,
    TABLE,
    RetrievalFailureLogger,
    mask_emails_and_digits,
    open_failure_logger,
)
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._pacing import WRITER_GAP
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._threads import SerialThread
from trio_failurelog._writer import PURGE_CHUNKS_PER_ROUND

from ._helpers import assert_accounted, count_rows, fetch, queries, record

# ---------------------------------------------------------------- wake-ups


class _StepCounter(trio.abc.Instrument):
    """Counts the scheduling steps of tasks whose name contains ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.name in task.name:
            self.steps += 1


@pytest.mark.parametrize("rate", [10_000, 50_000])
async def test_many_tasks_logging_one_record_each_cost_no_writer_step_per_record(
    db_path: Path, virtual_time: trio.testing.MockClock, rate: int
) -> None:
    # 100 producer tasks, each logging one record per tick: one task switch
    # per record for the writer would show as steps ~ records.
    producers = 100
    tick = producers / rate
    seconds = 1.0
    counter = _StepCounter("RetrievalFailureLogger.run")
    trio.lowlevel.add_instrument(counter)
    try:
        async with open_failure_logger(db_path, flush_interval=0.5) as failures:

            async def producer(n: int) -> None:  # noqa: ASYNC910  # each producer sleeps every tick
                for i in range(int(seconds / tick)):
                    failures.log(record(n * 1_000_000 + i))
                    await trio.sleep(tick)

            async with trio.open_nursery() as nursery:
                for n in range(producers):
                    nursery.start_soon(producer, n)
    finally:
        trio.lowlevel.remove_instrument(counter)
    stats = failures.statistics()
    records = int(seconds / tick) * producers
    assert stats.written == records
    assert stats.dropped_full == 0
    # A few steps per batch of 512 (wake, write, checkpoints), not one per record.
    assert counter.steps < records / 50, (counter.steps, records)


# ---------------------------------------------------------------- a buffer smaller than a batch


@pytest.mark.parametrize(
    ("capacity", "batch_size", "per_second"),
    [(256, 512, 1_000), (64, 512, 2_000), (1, 512, 500), (10, 11, 3_000), (2, 4096, 1_000)],
)
async def test_a_trickle_is_written_whatever_the_buffer_and_batch_sizes(
    db_path: Path,
    virtual_time: trio.testing.MockClock,
    capacity: int,
    batch_size: int,
    per_second: int,
) -> None:
    # Offered in 10 ms ticks, far below the writer's speed: nothing may drop.
    tick = 0.01
    per_tick = max(1, int(per_second * tick))
    ticks = 300
    async with open_failure_logger(
        db_path, capacity=max(capacity, per_tick), batch_size=batch_size, flush_interval=0.5
    ) as failures:
        for t in range(ticks):
            for i in range(per_tick):
                assert failures.log(record(t * per_tick + i)), failures.statistics()
            await trio.sleep(tick)
            assert failures.statistics().queued <= max(capacity, per_tick) + batch_size
    stats = failures.statistics()
    assert (stats.dropped_full, stats.written) == (0, ticks * per_tick)


# ---------------------------------------------------------------- send() through the channel


async def test_statistics_stay_exact_while_sends_wait_in_the_channel(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path, capacity=4, batch_size=2, flush_interval=1) as failures:
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(failures.send, record(i))
            for _ in range(200):  # look at every step of the hand-over
                stats = failures.statistics()
                assert_accounted(stats)
                assert 0 <= stats.queued <= stats.capacity + 2
                await trio.lowlevel.checkpoint()
        await failures.flush()
        assert failures.statistics().written == 20


async def test_sends_waiting_when_the_logger_closes_are_refused_and_counted(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    failures = RetrievalFailureLogger(db_path, capacity=2)
    results: list[bool] = []

    async def send(i: int) -> None:
        results.append(await failures.send(record(i)))

    async with trio.open_nursery() as nursery:
        for i in range(5):
            nursery.start_soon(send, i)
        await trio.testing.wait_all_tasks_blocked()  # 2 in the buffer, 3 waiting
        assert failures.statistics().accepted == 2
        await nursery.start(failures.run)
        await failures.aclose()
    stats = failures.statistics()
    assert len(results) == 5
    assert stats.accepted == sum(results) >= 2
    assert stats.dropped_closed == results.count(False)
    assert (stats.written, stats.queued) == (stats.accepted, 0)


# ------------------------------------------------------------- taking the next batch while writing


class _HeldStore:
    """Makes SQLite's first write behave like a server's: it says its rows are
    on their way (``sent``) once the test has filled the buffer, then waits
    for the test's word before writing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writing = threading.Event()  # the first write has begun
        self.filled = threading.Event()  # the test has filled the buffer
        self.release = threading.Event()  # the first write may go on
        self.batches: list[int] = []
        real = SQLiteStore.write_batch

        def write_batch(
            store: SQLiteStore,
            items: Sequence[QueuedRecord],
            *,
            sent: Callable[[], object] | None = None,
        ) -> BatchOutcome:
            self.batches.append(len(items))
            if len(self.batches) == 1:
                self.writing.set()
                self.filled.wait(10)
                assert sent is not None
                sent()
                self.release.wait(10)
            return real(store, items)

        monkeypatch.setattr(SQLiteStore, "write_batch", write_batch)


async def test_the_next_batch_is_taken_while_the_store_waits_on_its_database(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A producer parked on a full buffer goes on while the database works,
    # not only once the write has returned.
    held = _HeldStore(monkeypatch)
    with trio.fail_after(20):  # a safety net against a hang, not a timing check
        async with open_failure_logger(
            db_path, capacity=8, batch_size=4, flush_interval=100
        ) as failures:
            for i in range(4):  # a full batch: written at once
                failures.log(record(i))
            await trio.to_thread.run_sync(held.writing.wait)
            for i in range(4, 12):  # the buffer, full
                failures.log(record(i))
            sent = trio.Event()

            async def producer() -> None:
                assert await failures.send(record(12))  # parks: no room
                sent.set()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(producer)
                await trio.testing.wait_all_tasks_blocked()
                assert not sent.is_set()
                held.filled.set()  # the store says its rows are sent, and waits
                await sent.wait()  # room made while the first write is still held
                stats = failures.statistics()
                assert (stats.accepted, stats.written, stats.queued) == (13, 0, 13)
                assert held.batches == [4]
                held.release.set()
    stats = failures.statistics()
    assert (stats.written, stats.failed, stats.queued) == (13, 0, 0)
    assert held.batches[:2] == [4, 4]  # the batch taken early went next, whole
    texts = [row[0] for row in fetch(db_path, f"SELECT query_text FROM {TABLE} ORDER BY id")]
    assert texts == [record(i).query_text for i in range(13)]


async def test_a_batch_taken_during_a_write_that_never_ends_is_counted_failed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The drain deadline passes while the first write hangs: it, the batch
    # taken during it, and what is still buffered all count as failed.
    held = _HeldStore(monkeypatch)
    try:
        with trio.fail_after(20):  # a safety net against a hang, not a timing check
            async with open_failure_logger(
                db_path, capacity=8, batch_size=4, flush_interval=100, drain_timeout=0.2
            ) as failures:
                for i in range(4):
                    failures.log(record(i))
                await trio.to_thread.run_sync(held.writing.wait)
                for i in range(4, 12):
                    failures.log(record(i))
                held.filled.set()
                assert await failures.send(record(12))  # room made by the early take
                failures.log(record(13))
        stats = failures.statistics()
        assert_accounted(stats)
        assert (stats.accepted, stats.written, stats.failed, stats.queued) == (14, 0, 14, 0)
        assert held.batches == [4]
    finally:
        held.release.set()


async def test_a_late_wake_up_to_take_early_takes_nothing_once_the_write_is_over(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    # The store's wake-up comes through the loop's callback queue and can land
    # once the write has returned and the writer gathers again. Taking then,
    # beside a writer that has just been handed a record, would put the
    # records after it first. trio runs the two in either order: many rounds.
    async with open_failure_logger(db_path, batch_size=8, flush_interval=1000) as failures:
        writer = failures._writer
        for round_ in range(30):
            await trio.testing.wait_all_tasks_blocked()  # the writer waits in receive()
            first = 3 * round_
            for i in range(first, first + 3):  # the first handed to the writer, two buffered
                failures.log(record(i))
            writer._prefetch_lot.unpark_all()  # the late wake-up
            await failures.flush()
    texts = [row[0] for row in fetch(db_path, f"SELECT query_text FROM {TABLE} ORDER BY id")]
    assert texts == [record(i).query_text for i in range(90)]


# ---------------------------------------------------------------- the second Ctrl-C


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Python's own SIGINT handler, so trio installs its KeyboardInterrupt delivery.

    A shell that starts the suite in the background (``&``) ignores SIGINT, and
    trio then leaves it ignored.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@trio.lowlevel.enable_ki_protection
def _press_ctrl_c() -> None:
    # Protected, so that trio delivers it to the main task rather than here.
    signal.raise_signal(signal.SIGINT)


@pytest.mark.usefixtures("sigint_default")
@pytest.mark.parametrize("first", ["exception", "cancelled"])
def test_a_second_ctrl_c_stops_a_drain_with_many_batches_left(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    holder: list[RetrievalFailureLogger] = []
    lock = sqlite3.connect(db_path, isolation_level=None)  # creates the file

    async def interrupt_at(when: float) -> None:
        await trio.sleep_until(when)
        _press_ctrl_c()

    async def main() -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(interrupt_at, 100.0)
            with trio.CancelScope() as scope:
                async with open_failure_logger(
                    db_path, batch_size=1, drain_timeout=1000, retry_timeout=1000, busy_timeout=0
                ) as failures:
                    holder.append(failures)
                    for i in range(50):
                        failures.log(record(i))
                    lock.execute("BEGIN IMMEDIATE")  # every batch now waits for the lock
                    if first == "cancelled":
                        scope.cancel()
                        await trio.sleep(1)
                    raise KeyboardInterrupt  # the first Ctrl-C

    try:
        with pytest.raises(BaseException) as info:  # noqa: PT011  # KI, maybe in a group
            trio.run(main, clock=clock)
    finally:
        lock.close()
    assert (
        info.group_contains(KeyboardInterrupt)
        if isinstance(info.value, BaseExceptionGroup)
        else isinstance(info.value, KeyboardInterrupt)
    )
    # Stopped at the second Ctrl-C (t=100), not at the drain deadline (t=1000).
    assert clock.current_time() < 101
    stats = holder[0].statistics()
    assert (stats.accepted, stats.written, stats.failed, stats.queued) == (50, 0, 50, 0)


# ---------------------------------------------------------------- closing is bounded


class _StallingClose:
    """Makes SQLiteStore.close wait (on a real thread) until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.closed = threading.Event()
        real = SQLiteStore.close

        def close(store: SQLiteStore) -> None:
            self.started.set()
            self.release.wait(30)
            real(store)
            self.closed.set()

        monkeypatch.setattr(SQLiteStore, "close", close)


async def test_closing_the_database_is_bounded_by_drain_timeout(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stall = _StallingClose(monkeypatch)
    with trio.fail_after(10):  # a guard: the promise is far tighter
        async with open_failure_logger(db_path, drain_timeout=0.2) as failures:
            failures.log(record())
    # The block is over though the close is still stuck: it goes on on its thread.
    assert stall.started.is_set()
    assert not stall.closed.is_set()
    assert failures.statistics().written == 1
    stall.release.set()
    assert await trio.to_thread.run_sync(stall.closed.wait, 10)


async def test_the_database_is_closed_even_with_no_time_left(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, virtual_time: trio.testing.MockClock
) -> None:
    closed: list[SQLiteStore] = []
    done = threading.Event()
    real = SQLiteStore.close

    def close(store: SQLiteStore) -> None:
        closed.append(store)
        real(store)
        done.set()

    monkeypatch.setattr(SQLiteStore, "close", close)
    failures = RetrievalFailureLogger(db_path, drain_timeout=0)
    async with trio.open_nursery() as nursery:
        await nursery.start(failures.run)
        failures.log(record())
        await failures.aclose()
    # With no time left, the close finishes on its own thread.
    assert await trio.to_thread.run_sync(done.wait, 10)
    assert len(closed) == 1
    stats = failures.statistics()
    assert (stats.accepted, stats.written + stats.failed) == (1, 1)


async def test_an_abandoned_write_closes_the_database_after_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    closed = threading.Event()
    real_write, real_close = SQLiteStore.write_batch, SQLiteStore.close

    def hung_write(
        store: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any
    ) -> BatchOutcome:
        release.wait(30)
        return real_write(store, items, **kwargs)

    def close(store: SQLiteStore) -> None:
        real_close(store)
        closed.set()

    monkeypatch.setattr(SQLiteStore, "write_batch", hung_write)
    monkeypatch.setattr(SQLiteStore, "close", close)
    with trio.fail_after(10):
        async with open_failure_logger(db_path, drain_timeout=0.2) as failures:
            failures.log(record())
    assert not closed.is_set()  # the write still holds the connection
    release.set()
    assert await trio.to_thread.run_sync(closed.wait, 10)
    stats = failures.statistics()
    assert (stats.failed, stats.queued) == (1, 0)


# ---------------------------------------------------------------- cancelled while opening


async def test_a_cancelled_open_leaves_no_connection_behind(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = threading.Event()
    release = threading.Event()
    closed = threading.Event()
    real_open, real_close = SQLiteStore.open, SQLiteStore.close

    def slow_open(*args: object, **kwargs: object) -> SQLiteStore:
        entered.set()
        release.wait(30)
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    def close(store: SQLiteStore) -> None:
        real_close(store)
        closed.set()

    monkeypatch.setattr(SQLiteStore, "open", slow_open)
    monkeypatch.setattr(SQLiteStore, "close", close)
    failures = RetrievalFailureLogger(db_path)
    failures.log(record())
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(failures.run)
            await trio.to_thread.run_sync(entered.wait, 10)
            scope.cancel()
    assert scope.cancelled_caught
    stats = failures.statistics()
    assert (stats.accepted, stats.failed, stats.closed) == (1, 1, True)
    release.set()  # the open now completes on its abandoned thread ...
    assert await trio.to_thread.run_sync(closed.wait, 10)  # ... and is closed there
    assert count_rows(db_path) == 0


def test_retention_longer_than_the_calendar_purges_nothing_and_raises_nothing(
    db_path: Path,
) -> None:
    async def main() -> None:
        async with open_failure_logger(db_path, retention_days=1e12) as failures:
            failures.log(record())
        stats = failures.statistics()
        assert (stats.written, stats.purged, stats.last_error) == (1, 0, None)

    trio.run(main)


# ---------------------------------------------------------------- redaction on the writer's thread


async def test_rows_are_stored_redacted_on_the_writers_thread(db_path: Path) -> None:
    threads: set[int] = set()

    def redact(text: str) -> str:
        threads.add(threading.get_ident())
        return mask_emails_and_digits(text)

    query = "mail jane.doe@example.com about order 12345678"
    async with open_failure_logger(db_path, redact=redact) as failures:
        failures.log(record(0, query_text=query, error_context="card 4111111111111111"))
    rows = fetch(db_path)
    assert rows[0]["query_text"] == "mail [email] about order [digits]"
    assert rows[0]["error_context"] == "card [digits]"
    assert rows[0]["query_len"] == len(query)  # the original's
    assert threads
    assert threading.get_ident() not in threads
    assert failures.statistics().redaction_failed == 0


async def test_a_raising_redactor_costs_one_rows_text_counted_and_warned_once(
    db_path: Path, virtual_time: trio.testing.MockClock, lib_log: pytest.LogCaptureFixture
) -> None:
    def redact(text: str) -> str:
        if "secret" in text:
            raise ValueError("cannot parse: secret 123")
        return text.upper()

    async with open_failure_logger(db_path, redact=redact) as failures:
        for i in range(3):
            failures.log(record(i, query_text=f"secret {i}" if i else "plain"))
        await failures.flush()
        failures.log(record(9, query_text="secret again"))
        await failures.flush()
    stats = failures.statistics()
    assert (stats.written, stats.failed, stats.redaction_failed) == (4, 0, 3)
    assert [row["query_text"] for row in fetch(db_path)] == [
        "PLAIN",
        REDACTION_FAILED,
        REDACTION_FAILED,
        REDACTION_FAILED,
    ]
    warnings = [r.getMessage() for r in lib_log.records if "redact failed" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited: the second batch's failure is only counted
    assert "secret" not in warnings[0]  # the exception's message may quote the text


async def test_redaction_failures_are_counted_once_when_a_busy_write_is_retried(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    def redact(text: str) -> str:
        raise RuntimeError("always")

    async with open_failure_logger(db_path, redact=redact, busy_timeout=0) as failures:
        lock = sqlite3.connect(db_path, isolation_level=None)
        try:
            lock.execute("BEGIN IMMEDIATE")
            failures.log(record(1))
            with trio.move_on_after(0.2):
                await failures.flush()
            assert failures.statistics().retries > 0
        finally:
            lock.close()
        await failures.flush()
    stats = failures.statistics()
    assert (stats.written, stats.redaction_failed) == (1, 1)


@pytest.mark.parametrize("seed", range(8))
async def test_flush_waits_for_every_record_accepted_while_sends_are_parked(
    db_path: Path, virtual_time: trio.testing.MockClock, seed: int
) -> None:
    # Parked send()s have their records moved into the buffer by the writer
    # before they resume; a log() in between must still be waited for by flush().
    rng = random.Random(seed)
    async with (
        open_failure_logger(db_path, capacity=2, batch_size=3, flush_interval=1000) as failures,
        trio.open_nursery() as nursery,
    ):
        for i in range(40):
            nursery.start_soon(failures.send, record(i))
        for j in range(40):
            failures.log(record(1000 + j))
            before = failures.statistics()
            assert_accounted(before)
            await failures.flush()
            after = failures.statistics()
            assert after.written + after.failed >= before.accepted, (before, after)
            for _ in range(rng.randrange(3)):
                await trio.lowlevel.checkpoint()
    stats = failures.statistics()
    assert (stats.written, stats.queued) == (stats.accepted, 0)


# ---------------------------------------------------------------- every wait of closing is bounded


def _a_disk_taking(seconds: float) -> Callable[..., Awaitable[Any]]:
    """A stand-in for the thread hop whose every call takes ``seconds`` of virtual time."""

    async def slow(fn: Callable[[], Any], **_: object) -> Any:
        await trio.sleep(seconds)
        return fn()

    return slow


async def test_cancelling_the_users_nursery_is_bounded_while_a_write_hangs(
    db_path: Path, virtual_time: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = RetrievalFailureLogger(db_path, drain_timeout=2, flush_interval=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(failures.run)
        monkeypatch.setattr(SerialThread, "_to_thread", staticmethod(_a_disk_taking(1000)))
        failures.log(record())
        await trio.sleep(1)  # the write has begun, and hangs
        cancelled_at = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() - cancelled_at <= 2.001  # drain_timeout, not the disk's 1000 s
    stats = failures.statistics()
    assert (stats.accepted, stats.failed, stats.queued, stats.closed) == (1, 1, 0, True)


async def test_aclose_while_the_database_is_being_opened_is_bounded(
    db_path: Path, virtual_time: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SerialThread, "_to_thread", staticmethod(_a_disk_taking(1000)))
    failures = RetrievalFailureLogger(db_path, drain_timeout=2)
    failures.log(record())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(failures.run)
        await trio.sleep(1)  # opening: a server that does not answer
        closing_at = trio.current_time()
        await failures.aclose()
    assert trio.current_time() - closing_at <= 2.001
    stats = failures.statistics()
    assert (stats.accepted, stats.failed, stats.closed) == (1, 1, True)
    assert stats.last_error is not None
    assert "being opened" in stats.last_error


@pytest.mark.usefixtures("sigint_default")
def test_a_second_ctrl_c_stops_waiting_for_a_hung_close(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closes: list[float] = []

    def a_close_taking_1000_s(job: Callable[[], None], deliver: object, name: str) -> None:
        async def later() -> None:
            try:
                await trio.sleep(1000)
            finally:  # cancelled when the run ends: the connection is closed all the same
                job()
                closes.append(trio.current_time())

        trio.lowlevel.spawn_system_task(later)

    monkeypatch.setattr(SerialThread, "_start_thread", staticmethod(a_close_taking_1000_s))
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def interrupt_at(when: float) -> None:
        await trio.sleep_until(when)
        _press_ctrl_c()

    async def main() -> None:
        async with trio.open_nursery() as outer:
            outer.start_soon(interrupt_at, 10.0)
            async with open_failure_logger(db_path, drain_timeout=500) as failures:
                failures.log(record())
            pytest.fail("not reached: the Ctrl-C comes while the close hangs")

    with pytest.raises(BaseException) as info:  # noqa: PT011  # KI, maybe in a group
        trio.run(main, clock=clock)
    assert (
        info.group_contains(KeyboardInterrupt)
        if isinstance(info.value, BaseExceptionGroup)
        else isinstance(info.value, KeyboardInterrupt)
    )
    assert clock.current_time() < 11  # at the Ctrl-C, not the drain deadline (500 s)
    assert len(closes) == 1  # the close was left to finish on its own, and it did


# ---------------------------------------------------------------- the purge never holds up writing


def insert_aged(
    path: Path, count: int, created_at: str = "2001-01-01 00:00:00", *, text: str = "q"
) -> None:
    """``count`` rows of another writer created at ``created_at``, in one transaction."""
    conn = sqlite3.connect(path)
    try:
        with conn:  # one transaction
            conn.executemany(
                f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
                " VALUES ('no_hit', 'old', ?, ?)",
                [(text, created_at)] * count,
            )
    finally:
        conn.close()


async def test_a_large_backlog_is_purged_a_round_at_a_time_leaving_room_between_chunks(
    db_path: Path, virtual_time: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writing never waits for a whole backlog: a round of chunks at open, then a
    round after each batch. On SQLite, chunks after the first are sized by time
    (at most doubling), and every chunk, the round's first included, begins
    WRITER_GAP or more after the last one ended: time in which another
    process's writer waiting for the lock gets it (tests/test_purge.py shows
    the manual purge's same pause letting such a writer in)."""
    chunk = 100  # rows in a first chunk: the smallest sized by time, so the backlog is quick
    monkeypatch.setattr(writer_module, "PURGE_CHUNK", chunk)
    most = chunk * (2**PURGE_CHUNKS_PER_ROUND - 1)  # a first round's rows, were each chunk doubled
    backlog = most + 5
    async with open_failure_logger(db_path):
        pass
    insert_aged(db_path, backlog)
    grew_at: list[tuple[float, int]] = []  # (virtual time, purged) at each change

    async def watch(failures: RetrievalFailureLogger) -> None:
        while True:
            purged = failures.statistics().purged
            if not grew_at or grew_at[-1][1] != purged:
                grew_at.append((trio.current_time(), purged))
            await trio.sleep(0.001)

    async with (
        open_failure_logger(db_path, retention_days=30, purge_every=100) as failures,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(watch, failures)
        failures.log(record(0))
        await failures.flush()  # written after one round, not after the whole backlog
        assert chunk <= failures.statistics().purged <= most
        batches = 1
        while failures.statistics().purged < backlog:  # each batch is followed by a round
            failures.log(record(batches))
            await failures.flush()
            batches += 1
        nursery.cancel_scope.cancel()
    stats = failures.statistics()
    assert batches >= 2
    assert stats.purged == backlog
    assert (stats.written, count_rows(db_path)) == (batches, batches)
    chunk_ends = [moment for moment, purged in grew_at if purged]
    assert len(chunk_ends) > PURGE_CHUNKS_PER_ROUND  # two rounds or more, watched
    spacing = [later - earlier for earlier, later in itertools.pairwise(chunk_ends)]
    assert min(spacing) >= WRITER_GAP - 0.0011  # the watcher looks every 1 ms


def _file_size(path: Path) -> int:
    return path.stat().st_size


async def test_the_retention_purge_gives_the_space_back_in_a_file_the_library_made(
    db_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    async with open_failure_logger(db_path):  # made here: incremental auto_vacuum
        pass
    insert_aged(db_path, 3000, text="x" * 500)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        full = _file_size(db_path)
        async with open_failure_logger(db_path, retention_days=30) as failures:
            await failures.flush()  # the purge at open: three chunks of 1000 rows
            while failures.statistics().purged < 3000:
                failures.log(record(0))
                await failures.flush()  # (a round after each batch, were more left)
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    assert _file_size(db_path) < full / 4


class _PurgeRefused(SQLiteStore):
    def purge_chunk(self, older_than: float, limit: int) -> int:
        raise sqlite3.IntegrityError("a trigger of the application refuses deletes")


async def test_a_failing_purge_is_warned_about_at_most_once_a_minute(
    db_path: Path,
    virtual_time: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    lib_log: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(SQLiteStore, "purge_chunk", _PurgeRefused.purge_chunk)
    async with open_failure_logger(db_path, retention_days=30, purge_every=1) as failures:
        for i in range(20):
            failures.log(record(i))
            await failures.flush()
    warnings = [r for r in lib_log.records if "retention purge failed" in r.getMessage()]
    assert len(warnings) == 1
    stats = failures.statistics()
    assert stats.written == 20
    assert stats.last_error is not None
    assert "retention purge failed" in stats.last_error


async def test_a_busy_purge_is_put_off_not_waited_for(
    db_path: Path,
    virtual_time: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
    lib_log: pytest.LogCaptureFixture,
) -> None:
    async with open_failure_logger(db_path):
        pass
    insert_aged(db_path, 10)
    real_purge = SQLiteStore.purge_chunk
    tries: list[float] = []

    def busy(store: SQLiteStore, older_than: float, limit: int) -> int:
        tries.append(1.0)  # on the store's thread
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = 5  # SQLITE_BUSY
        raise error

    monkeypatch.setattr(SQLiteStore, "purge_chunk", busy)
    async with open_failure_logger(
        db_path, retention_days=30, purge_every=1, retry_timeout=1000
    ) as failures:
        await trio.sleep(1)  # virtual: the store's thread takes none of it
        assert len(tries) == 1  # the purge at open: tried once, put off, not retried
        monkeypatch.setattr(SQLiteStore, "purge_chunk", real_purge)
        failures.log(record())
        await failures.flush()  # the batch, then the next round
        await trio.sleep(1)  # virtual: the store's thread takes none of it
        assert failures.statistics().purged == 10
    assert not [r for r in lib_log.records if "purge failed" in r.getMessage()]
    assert failures.statistics().last_error is None


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


async def test_what_the_purge_at_open_deletes_is_said_once(
    db_path: Path, virtual_time: trio.testing.MockClock, lib_log: pytest.LogCaptureFixture
) -> None:
    """A file made elsewhere loses its old rows to the default retention when a
    logger opens it: said at INFO, once; the later rounds only at DEBUG."""
    async with open_failure_logger(db_path):
        pass
    insert_aged(db_path, 2500, "2001-01-01 00:00:00")
    async with open_failure_logger(db_path, retention_days=30, purge_every=1) as failures:
        failures.log(record())
        await failures.flush()
        insert_aged(db_path, 7, "2001-01-01 00:00:00")
        failures.log(record(1))
        await failures.flush()
        await trio.sleep(1)  # virtual: the round after the batch
    said = [
        (r.levelno, r.getMessage())
        for r in lib_log.records
        if "retention purge deleted" in r.getMessage()
    ]
    name = repr(str(db_path))
    assert said == [
        (
            logging.INFO,
            f"trio_failurelog: retention purge deleted 2500 row(s) older than 30 days from {name}",
        ),
        (
            logging.DEBUG,
            f"trio_failurelog: retention purge deleted 7 row(s) older than 30 days from {name}",
        ),
    ]
    assert failures.statistics().purged == 2507


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
