"""The accounting invariant under random interleavings of log/send/flush/cancel/close.

``accepted == written + failed + queued`` must hold whenever the logging task
looks, whatever happened before; once closed, nothing is queued, and the
database holds exactly ``written`` rows. Hypothesis chooses the program.
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import TABLE, RetrievalFailureLogger, open_failure_logger
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._sqlite import SQLiteStore

from ._helpers import assert_accounted, count_rows, record

Op = tuple[str, int]

ops = st.lists(
    st.one_of(
        st.tuples(st.just("log"), st.integers(1, 40)),
        st.tuples(st.just("send"), st.integers(1, 40)),
        st.tuples(st.just("flush"), st.just(0)),
        st.tuples(st.just("cancelled_flush"), st.just(0)),
        st.tuples(st.just("cancelled_send"), st.integers(1, 40)),
        st.tuples(st.just("sleep"), st.integers(0, 3000)),  # milliseconds
        st.tuples(st.just("checkpoint"), st.just(0)),
        st.tuples(st.just("fail_next_write"), st.just(0)),
        st.tuples(st.just("thread_log"), st.integers(1, 20)),
    ),
    max_size=25,
)


class FlakyStore(SQLiteStore):
    """Fails the writes it is told to, like a disk with passing trouble.

    It also says at once that each batch is on its way (``sent``), as the
    PostgreSQL store does, so that the writer takes the next batch while this
    one is written, fails, or is retried.
    """

    failures_planned = 0

    def write_batch(
        self, items: Sequence[QueuedRecord], *, sent: Callable[[], object] | None = None
    ) -> BatchOutcome:
        if sent is not None:
            sent()
        if FlakyStore.failures_planned:
            FlakyStore.failures_planned -= 1
            raise sqlite3.OperationalError("disk I/O error (planned)")
        return super().write_batch(items)


async def play(failures: RetrievalFailureLogger, program: list[Op], most_queued: int) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
    n = 0
    for op, arg in program:
        if op == "log":
            for _ in range(arg):
                failures.log(record(n))
                n += 1
        elif op == "send":
            for _ in range(arg):
                await failures.send(record(n))
                n += 1
        elif op == "cancelled_send":
            with trio.move_on_after(0.001):  # noqa: ASYNC912  # a test step: the logger's cancel points are under test
                for _ in range(arg):
                    await failures.send(record(n))
                    n += 1
        elif op == "flush":
            before = failures.statistics().accepted
            await failures.flush()
            after = failures.statistics()
            assert after.written + after.failed >= before  # all it waited for is settled
        elif op == "cancelled_flush":
            with trio.CancelScope() as scope:
                scope.cancel()
                await failures.flush()
        elif op == "sleep":
            await trio.sleep(arg / 1000)
        elif op == "checkpoint":
            await trio.lowlevel.checkpoint()
        elif op == "fail_next_write":
            FlakyStore.failures_planned += 1
        elif op == "thread_log":

            def from_thread(start: int, count: int) -> None:
                for i in range(start, start + count):
                    failures.log_threadsafe(record(i))

            await trio.to_thread.run_sync(from_thread, n, arg)
            n += arg
        stats = failures.statistics()
        assert_accounted(stats)
        assert stats.queued <= most_queued, (stats.queued, most_queued)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    program=ops,
    capacity=st.integers(1, 64),
    batch_size=st.integers(1, 32),
    cancel_block=st.booleans(),
)
def test_accounting_holds_under_any_interleaving(
    program: list[Op], capacity: int, batch_size: int, cancel_block: bool
) -> None:
    original = SQLiteStore.open
    FlakyStore.failures_planned = 0

    def open_flaky(*args: object, **kwargs: object) -> SQLiteStore:
        store = original(*args, **kwargs)  # type: ignore[arg-type]
        store.__class__ = FlakyStore
        return store

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "failures.db"
        holder: list[RetrievalFailureLogger] = []

        async def main() -> None:
            with trio.CancelScope() as scope:
                async with open_failure_logger(
                    path,
                    capacity=capacity,
                    batch_size=batch_size,
                    flush_interval=1,
                    drain_timeout=math.inf,  # nothing abandoned: rows == written exactly
                ) as failures:
                    holder.append(failures)
                    if cancel_block:
                        scope.deadline = trio.current_time() + 1.5
                    await play(failures, program, capacity + 2 * batch_size)

        SQLiteStore.open = open_flaky  # type: ignore[method-assign]
        try:
            trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        finally:
            SQLiteStore.open = original  # type: ignore[method-assign]
        stats = holder[0].statistics()
        assert stats.closed
        assert stats.queued == 0
        assert stats.accepted == stats.written + stats.failed
        assert count_rows(path) == stats.written
        distinct = sqlite3.connect(path)
        try:
            rows = distinct.execute(f"SELECT count(DISTINCT query_text) FROM {TABLE}").fetchone()
        finally:
            distinct.close()
        assert rows[0] == stats.written  # nothing written twice
