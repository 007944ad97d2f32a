"""Claim 1: a SIGKILL never costs a record acknowledged by a returned ``flush()``.

Each trial runs the child in ``crash`` mode, which logs at full speed, flushes
now and then, and writes each acknowledged count to a side file; it is killed
with SIGKILL at a random moment (during startup for some trials, mid-stream for
the others). Then the database must pass ``PRAGMA integrity_check``, hold every
acknowledged record exactly once, and open again with the logger.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import trio

from trio_failurelog import TABLE, RetrievalFailureRecord, open_failure_logger

from ._helpers import column, integrity, spawn_child

CI_TRIALS = 20
STRESS_TRIALS = 200
PARALLEL = 4
# The child must get this far (seconds) or the trial is broken, not the library.
STARTUP_LIMIT = 30.0


@dataclass
class Trial:
    number: int
    database: Path
    acked: int
    returncode: int
    stderr: str


def _acked(acks: Path) -> int:
    lines = acks.read_text().split() if acks.exists() else []
    return int(lines[-1]) if lines else 0


def _run_trial(number: int, directory: Path) -> Trial:
    rng = random.Random(number)
    directory.mkdir()
    database, acks = directory / "failures.db", directory / "acks"
    child = spawn_child("crash", str(database), str(acks), str(number))
    started = time.monotonic()
    if number % 10 == 1:
        # Kill the moment the file exists: before its table is committed.
        while not database.exists() and child.poll() is None:
            assert time.monotonic() - started < STARTUP_LIMIT, "the child never created the file"
            time.sleep(0.0002)
    elif number % 4 == 0:
        # Kill at any point of the start: before, during or after the schema is created.
        time.sleep(rng.uniform(0.0, 0.6))
    else:
        # Kill mid-stream: once a first flush has returned, after a random delay.
        while not _acked(acks) and child.poll() is None:
            assert time.monotonic() - started < STARTUP_LIMIT, "the child never flushed"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.4))
    child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate()
    return Trial(number, database, _acked(acks), child.returncode, stderr)


def _has_table(database: Path) -> bool:
    conn = sqlite3.connect(database)
    try:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return conn.execute(query, (TABLE,)).fetchone() is not None
    finally:
        conn.close()


async def _reopen_and_write(database: Path) -> None:
    async with open_failure_logger(database) as logger:
        logger.log(RetrievalFailureRecord("no_hit", "semantic", "after the crash"))
        await logger.flush()
        stats = logger.statistics()
    assert (stats.written, stats.failed) == (1, 0), stats


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path, stress: bool) -> None:
    trials = STRESS_TRIALS if stress else CI_TRIALS
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(lambda n: _run_trial(n, tmp_path / f"trial{n}"), range(trials)))
    killed_mid_stream = 0
    for trial in results:
        # Killed by our signal, not dead of an error of its own.
        assert trial.returncode == -signal.SIGKILL, (trial.number, trial.stderr)
        if not trial.database.exists():
            assert trial.acked == 0
            continue
        assert integrity(trial.database) == ["ok"], trial.number
        if not _has_table(trial.database):
            # Killed after the file was created, before the table was committed.
            assert trial.acked == 0
            trio.run(_reopen_and_write, trial.database)
            continue
        numbers = column(trial.database, "conversation_id")
        assert len(numbers) == len(set(numbers)), f"trial {trial.number}: duplicate rows"
        missing = set(range(trial.acked)) - set(numbers)
        assert not missing, f"trial {trial.number}: {len(missing)} acknowledged records lost"
        killed_mid_stream += trial.acked > 0
        trio.run(_reopen_and_write, trial.database)
    # The trials did exercise the claim: most were killed with records acknowledged.
    assert killed_mid_stream >= trials // 2
