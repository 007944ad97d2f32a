"""Figures 2 and 3: sustained throughput to a database file, and event-loop lateness.

Every contender writes the same ``throughput_records`` prebuilt records (the
same rows, built by the library's own row conversion) to a fresh database file
that the library created beforehand (same table, indexes, WAL), with the
library's ``synchronous`` setting. The clock starts once the contender's
connection is open and stops when every row is committed and the connection is
closed (closing checkpoints the WAL, for every contender alike). Row counts are
checked afterwards, untimed. The prebuilt records are frozen out of the garbage
collector's sight (``gc.freeze()``) so that no contender pays for traversing the
harness's own data; the collector still runs on what the contenders allocate.
Each repeat runs every contender once, in rotated order; the figure is the
median over repeats, in records per second.

Contenders:

* ``raw``: the limit. sqlite3 ``executemany`` of rows prebuilt as tuples, in
  batches of the library's ``batch_size``, one ``BEGIN IMMEDIATE``/``COMMIT``
  per batch; no trio, no records, no row building.
* ``ours``: ``await logger.send(record)`` for every record inside
  ``open_failure_logger(path)`` with the library's defaults, timed until the
  ``async with`` block has exited.
* ``ours_on_loop``: the same logger and writer, except that its SQLite calls
  (row building, ``executemany``, ``COMMIT``) run on the event loop's thread
  instead of a worker thread: the benchmark replaces ``SerialThread._to_thread``
  (the library's one hop to a worker thread) with a direct call, in its own run
  only. It is there to show what the thread hop buys in figure 3.
* ``ours_redacted``: ``ours`` with ``redact=mask_emails_and_digits`` (two
  regular expressions over every ``query_text`` and ``error_context``, on the
  writer's thread): what redaction costs the writer.
* ``peer_a``: stdlib ``logging``: ``logger.info(..., extra={"failure": record})``
  through a ``QueueHandler`` (unbounded ``queue.Queue``) to a ``QueueListener``
  whose handler inserts each record in autocommit mode, as typical SQLite log
  handlers do.
* ``peer_b``: the naive trio way: one ``trio.to_thread.run_sync`` per record,
  inserting and committing it (autocommit).
* ``peer_c``: aiosqlite under asyncio: records go through an ``asyncio.Queue`` of
  the library's capacity to a writer task that takes what is waiting (up to
  ``batch_size``) and does ``executemany`` + ``commit``.

Peers A and B write the first ``throughput_slow_records`` records only (50,000
in a full run): at their rates all of them would take minutes per repeat. Their
database stays smaller, which if anything flatters them.

Figure 3: in ``ours`` and ``ours_on_loop`` a probe task sleeps ``probe_interval``
in a loop and records how late it wakes (``trio.current_time()`` after the sleep
minus the deadline). p50, p99 and max are taken per repeat and their medians
reported, with the worst max of any repeat beside them (one stall of the shared
machine shows there). ``idle`` is the same probe with nothing else running: the
floor that the OS timer and trio's epoll timeout rounding give.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.handlers
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from unittest import mock

import aiosqlite
import trio

from trio_failurelog import RetrievalFailureRecord, mask_emails_and_digits, open_failure_logger
from trio_failurelog._threads import SerialThread, run_inline

from ._common import (
    DEFAULTS,
    INSERT_SQL,
    Params,
    connect,
    count_rows,
    frozen_heap,
    make_records,
    median,
    percentile,
    prepare_database,
    remove_database,
    rotated,
    row_builder,
)

__all__ = ["CONTENDERS", "run"]


#: Contenders in the order of the table.
CONTENDERS: Final = ("raw", "ours", "ours_on_loop", "ours_redacted", "peer_a", "peer_b", "peer_c")
#: Those that write only ``throughput_slow_records`` (they take minutes for all).
_SLOW: Final = ("peer_a", "peer_b")
#: Those whose event loop is probed (figure 3).
PROBED: Final = ("ours", "ours_on_loop")


@dataclass
class _Outcome:
    seconds: float
    lateness: list[float] = field(default_factory=list)


def run(params: Params, directory: Path) -> dict[str, Any]:
    """Run figures 2 and 3; databases go to ``directory`` (removed after each run)."""
    records = make_records(params.throughput_records)
    row = row_builder()
    base = time.time()
    # The raw limit's rows, stamped as if logged 10 µs apart.
    rows = [row((record, base + i * 1e-5)) for i, record in enumerate(records)]
    batch_size: int = DEFAULTS["batch_size"]
    batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    del rows
    with frozen_heap():
        return _run(params, directory, records, batches)


def _run(
    params: Params,
    directory: Path,
    records: list[RetrievalFailureRecord],
    batches: list[list[tuple[object, ...]]],
) -> dict[str, Any]:
    batch_size: int = DEFAULTS["batch_size"]

    slow = records[: params.throughput_slow_records]
    runners: dict[str, Callable[[Path], _Outcome]] = {
        "raw": lambda path: _raw(path, batches),
        "ours": lambda path: trio.run(_ours, path, records, False, params.probe_interval),
        "ours_on_loop": lambda path: trio.run(_ours, path, records, True, params.probe_interval),
        "ours_redacted": lambda path: trio.run(
            _ours, path, records, False, params.probe_interval, mask_emails_and_digits
        ),
        "peer_a": lambda path: _peer_a(path, slow),
        "peer_b": lambda path: trio.run(_peer_b, path, slow),
        "peer_c": lambda path: asyncio.run(_peer_c(path, records)),
    }
    counts = {name: len(slow) if name in _SLOW else len(records) for name in CONTENDERS}
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    lateness: dict[str, list[list[float]]] = {name: [] for name in PROBED}
    for repeat in range(params.throughput_repeats):
        for name in rotated(CONTENDERS, repeat):
            path = directory / f"throughput-{name}-{repeat}.db"
            prepare_database(path)
            outcome = runners[name](path)
            written = count_rows(path)
            remove_database(path)
            if written != counts[name]:
                raise RuntimeError(f"throughput: {name} wrote {written} of {counts[name]} rows")
            seconds[name].append(outcome.seconds)
            if name in lateness:
                lateness[name].append(outcome.lateness)
    idle = trio.run(_idle_probe, params.idle_probe_seconds, params.probe_interval)

    rates = {name: counts[name] / median(values) for name, values in seconds.items()}
    return {
        "throughput": {
            "unit": "records per second (median over repeats)",
            "records": counts,
            "repeats": params.throughput_repeats,
            "batch_size": batch_size,
            "capacity": DEFAULTS["capacity"],
            "records_per_second": rates,
            "seconds": seconds,
            "ratios": {
                "ours_vs_raw": rates["ours"] / rates["raw"],
                "ours_vs_peer_a": rates["ours"] / rates["peer_a"],
                "ours_vs_peer_b": rates["ours"] / rates["peer_b"],
                "ours_vs_peer_c": rates["ours"] / rates["peer_c"],
                "ours_on_loop_vs_raw": rates["ours_on_loop"] / rates["raw"],
                "ours_redacted_vs_ours": rates["ours_redacted"] / rates["ours"],
            },
        },
        "responsiveness": {
            "unit": "seconds late (probe sleeping probe_interval in a loop)",
            "probe_interval": params.probe_interval,
            **{name: _lateness_summary(runs) for name, runs in lateness.items()},
            "idle": _lateness_summary([idle]),
        },
    }


def _lateness_summary(runs: list[list[float]]) -> dict[str, Any]:
    """p50/p99/max per repeat, their medians, and the worst over all repeats."""
    per_run = [
        {"p50": percentile(r, 0.50), "p99": percentile(r, 0.99), "max": max(r), "samples": len(r)}
        for r in runs
    ]
    return {
        "p50": median([r["p50"] for r in per_run]),
        "p99": median([r["p99"] for r in per_run]),
        "max": median([r["max"] for r in per_run]),
        "worst_max": max(r["max"] for r in per_run),
        "per_repeat": per_run,
    }


# ---------------------------------------------------------------------- the limit


def _raw(path: Path, batches: list[list[tuple[object, ...]]]) -> _Outcome:
    conn = connect(path)
    start = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT_SQL, batch)
        conn.execute("COMMIT")
    conn.close()
    return _Outcome(time.perf_counter() - start)


# ---------------------------------------------------------------------- ours


async def _probe(samples: list[float], interval: float) -> None:
    while True:
        deadline = trio.current_time() + interval
        await trio.sleep_until(deadline)
        samples.append(trio.current_time() - deadline)


async def _ours(
    path: Path,
    records: list[RetrievalFailureRecord],
    on_loop: bool,
    interval: float,
    redact: Callable[[str], str] | None = None,
) -> _Outcome:
    lateness: list[float] = []
    # The on-loop variant: the same logger and writer, with the one place where
    # blocking work leaves the loop's thread made a direct call (as the test
    # suite's virtual clock does).
    hop = (
        mock.patch.object(SerialThread, "_to_thread", staticmethod(run_inline))
        if on_loop
        else contextlib.nullcontext()
    )
    with hop:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_probe, lateness, interval)
            async with open_failure_logger(path, redact=redact) as logger:
                start = time.perf_counter()
                for record in records:
                    await logger.send(record)
            seconds = time.perf_counter() - start
            nursery.cancel_scope.cancel()
    stats = logger.statistics()
    if stats.written != len(records) or stats.failed:
        raise RuntimeError(f"throughput: the logger wrote {stats.written}, failed {stats.failed}")
    return _Outcome(seconds, lateness)


async def _idle_probe(seconds: float, interval: float) -> list[float]:
    lateness: list[float] = []
    with trio.move_on_after(seconds):
        await _probe(lateness, interval)
    return lateness


# ---------------------------------------------------------------------- peer A


class _SQLiteHandler(logging.Handler):
    """A typical SQLite log handler: one autocommit INSERT per log record."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._conn = connect(path)
        self._row = row_builder()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._conn.execute(INSERT_SQL, self._row((record.__dict__["failure"], record.created)))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self._conn.close()
        super().close()


def _peer_a(path: Path, records: list[RetrievalFailureRecord]) -> _Outcome:
    log_queue: queue.Queue[logging.LogRecord] = queue.Queue()
    handler = _SQLiteHandler(path)
    listener = logging.handlers.QueueListener(log_queue, handler)
    logger = logging.getLogger("benchmarks.peer_a")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    queue_handler = logging.handlers.QueueHandler(log_queue)
    logger.addHandler(queue_handler)
    listener.start()
    try:
        start = time.perf_counter()
        for record in records:
            logger.info("retrieval failure", extra={"failure": record})
        listener.stop()  # returns once the listener has handled everything queued
        handler.close()
        return _Outcome(time.perf_counter() - start)
    finally:
        logger.removeHandler(queue_handler)


# ---------------------------------------------------------------------- peer B


async def _peer_b(path: Path, records: list[RetrievalFailureRecord]) -> _Outcome:
    conn = connect(path)  # autocommit: each INSERT is committed on its own
    row = row_builder()

    def insert(record: RetrievalFailureRecord, stamp: float) -> None:
        conn.execute(INSERT_SQL, row((record, stamp)))

    start = time.perf_counter()
    for record in records:
        await trio.to_thread.run_sync(insert, record, time.time())
    await trio.to_thread.run_sync(conn.close)
    return _Outcome(time.perf_counter() - start)


# ---------------------------------------------------------------------- peer C


async def _peer_c(path: Path, records: list[RetrievalFailureRecord]) -> _Outcome:
    batch_size: int = DEFAULTS["batch_size"]
    items: asyncio.Queue[tuple[RetrievalFailureRecord, float] | None] = asyncio.Queue(
        DEFAULTS["capacity"]
    )
    db = await aiosqlite.connect(path)  # sqlite3's implicit transactions: commit() ends one
    await db.execute(f"PRAGMA synchronous = {DEFAULTS['synchronous']}")
    async with db.execute("PRAGMA journal_mode") as cursor:
        mode = await cursor.fetchone()
    if mode is None or mode[0] != "wal":
        raise RuntimeError(f"benchmark database is not in WAL mode but {mode!r}")

    async def writer() -> None:
        row = row_builder()
        while True:
            batch = [await items.get()]
            while len(batch) < batch_size and not items.empty():
                batch.append(items.get_nowait())
            done = batch[-1] is None
            await db.executemany(INSERT_SQL, [row(item) for item in batch if item is not None])
            await db.commit()
            if done:
                return

    start = time.perf_counter()
    task = asyncio.create_task(writer())
    for record in records:
        await items.put((record, time.time()))
    await items.put(None)
    await task
    await db.close()
    return _Outcome(time.perf_counter() - start)
