"""Claim 5: cancellation storms.

Randomised cancellation of the ``async with`` block, of ``flush()`` and of
``send()``, and a KeyboardInterrupt arriving while the writer's thread writes.
Each run must end (no deadlock: a generous deadline guards it), leave no task
behind, keep ``accepted == written + failed + queued`` at every snapshot, and,
since the drain has time, lose nothing: every accepted record is in the file
exactly once, and a ``send()`` that was cancelled queued nothing.

Real threads do the writing, so these run on the real clock; they never sleep,
and cancellation points are counted in checkpoints, drawn from a seeded RNG.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_failurelog import (
    RetrievalFailureLogger,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._sqlite import SQLiteStore

from ._helpers import assert_accounting, assert_settled, column

# Only a deadlock would come near it.
DEADLOCK_GUARD = 60.0
CI_SEEDS = 12
STRESS_SEEDS = 300
# Records offered per storm.
BUDGET = 3000


def seeds(stress: bool) -> range:
    return range(STRESS_SEEDS if stress else CI_SEEDS)


def _record(number: int) -> RetrievalFailureRecord:
    return RetrievalFailureRecord("no_hit", "semantic", f"q{number}", conversation_id=number)


async def _checkpoints(count: int) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
    for _ in range(count):
        await trio.lowlevel.checkpoint()


class Storm:
    """Producers using log() and send(), flushers, and random cancellations."""

    def __init__(self, rng: random.Random, logger: RetrievalFailureLogger, budget: int = 0) -> None:
        self.rng = rng
        self.logger = logger
        self.budget = budget  # how many records the storm offers in all
        self.next_number = 0
        self.accepted: set[int] = set()  # numbers log()/send() said were accepted

    def _number(self) -> int:
        self.next_number += 1
        return self.next_number - 1

    def check(self) -> None:
        assert_accounting(self.logger.statistics())

    @property
    def going(self) -> bool:
        return self.next_number < self.budget

    async def log_forever(self) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
        while self.going:
            for _ in range(self.rng.randrange(1, 40)):
                number = self._number()
                if self.logger.log(_record(number)):
                    self.accepted.add(number)
            self.check()
            await _checkpoints(self.rng.randrange(1, 5))

    async def send_forever(self) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
        while self.going:
            number = self._number()
            with trio.CancelScope() as scope:
                self._cancel_later(scope)
                if await self.logger.send(_record(number)):
                    self.accepted.add(number)
            self.check()
            await trio.lowlevel.checkpoint()

    async def flush_forever(self) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
        while self.going:
            with trio.CancelScope() as scope:
                self._cancel_later(scope)
                await self.logger.flush()
            self.check()
            await _checkpoints(self.rng.randrange(1, 20))

    def _cancel_later(self, scope: trio.CancelScope) -> None:
        # Cancelled after a random number of checkpoints of the canceller, or at once.
        async def cancel() -> None:
            await _checkpoints(self.rng.randrange(0, 30))
            scope.cancel()

        self.nursery.start_soon(cancel)

    nursery: trio.Nursery

    async def run(self, what: Sequence[Callable[[], object]]) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            for task in what:
                nursery.start_soon(task)  # type: ignore[arg-type]


def _assert_nothing_lost(database: Path, storm: Storm, logger: RetrievalFailureLogger) -> None:
    stats = logger.statistics()
    assert_settled(stats)
    numbers = column(database, "conversation_id")
    assert len(numbers) == len(set(numbers)) == stats.written
    # Exactly the records log()/send() accepted: a cancelled send() queued nothing.
    assert set(numbers) == storm.accepted


async def _storm(database: Path, seed: int, capacity: int, cancel_block_after: int | None) -> None:
    rng = random.Random(seed)
    baseline = trio.lowlevel.current_statistics().tasks_living
    with trio.fail_after(DEADLOCK_GUARD):
        with trio.CancelScope() as block_scope:
            async with open_failure_logger(
                database,
                capacity=capacity,
                batch_size=rng.choice([3, 64, 512]),
                flush_interval=0.001,
                drain_timeout=DEADLOCK_GUARD,
            ) as logger:
                storm = Storm(rng, logger, budget=BUDGET)
                async with trio.open_nursery() as outer:
                    if cancel_block_after is not None:

                        async def cancel_block() -> None:
                            await _checkpoints(cancel_block_after)
                            block_scope.cancel()

                        outer.start_soon(cancel_block)
                    await storm.run([storm.log_forever, storm.send_forever, storm.flush_forever])
                    outer.cancel_scope.cancel()
                storm.check()
                if cancel_block_after is None:
                    await logger.flush()
                    stats = logger.statistics()
                    assert stats.written + stats.failed == stats.accepted, stats
        _assert_nothing_lost(database, storm, logger)
    # No task left behind: the writer and every helper have finished.
    assert trio.lowlevel.current_statistics().tasks_living == baseline


@pytest.mark.parametrize("capacity", [4, 8192])
async def test_cancelled_flush_and_send(db_path: Path, stress: bool, capacity: int) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
    for seed in seeds(stress):
        database = db_path.with_name(f"flush-send-{seed}.db")
        await _storm(database, seed, capacity, cancel_block_after=None)


async def test_cancelled_block(db_path: Path, stress: bool) -> None:  # noqa: ASYNC910  # a test step: the logger's cancel points are under test
    for seed in seeds(stress):
        database = db_path.with_name(f"block-{seed}.db")
        rng = random.Random(seed)
        await _storm(
            database,
            seed,
            rng.choice([4, 8192]),
            cancel_block_after=rng.randrange(0, 2000),
        )


def _interrupt_during_write(database: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    interrupt_at = rng.randrange(1, 6)
    calls = 0
    original = SQLiteStore.write_batch

    def write_batch(
        self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any
    ) -> BatchOutcome:
        nonlocal calls
        calls += 1
        if calls == interrupt_at:
            # Ctrl-C while this worker thread is inside the write.
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, items, **kwargs)

    loggers: list[RetrievalFailureLogger] = []
    storms: list[Storm] = []

    async def main() -> None:
        async with open_failure_logger(
            database, batch_size=50, drain_timeout=DEADLOCK_GUARD
        ) as logger:
            loggers.append(logger)
            storm = Storm(rng, logger)
            storms.append(storm)
            with trio.fail_after(DEADLOCK_GUARD):
                while True:
                    for _ in range(rng.randrange(1, 120)):
                        number = storm._number()
                        if logger.log(_record(number)):
                            storm.accepted.add(number)
                    await logger.flush()
                    storm.check()

    with monkeypatch.context() as patch:
        patch.setattr(SQLiteStore, "write_batch", write_batch)
        with pytest.raises(KeyboardInterrupt):
            trio.run(main)
    assert calls >= interrupt_at
    _assert_nothing_lost(database, storms[0], loggers[0])


def test_keyboard_interrupt_during_a_write(
    db_path: Path, stress: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Started in the background (`pytest &`), the suite inherits SIGINT ignored,
    # and trio only turns SIGINT into KeyboardInterrupt over the default handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for seed in seeds(stress):
            _interrupt_during_write(db_path.with_name(f"ki-{seed}.db"), seed, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)
