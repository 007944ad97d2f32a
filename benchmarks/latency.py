"""Figure 5: commit latency, drop rate and cost for batch sizes and flush intervals.

For every combination of ``batch_size`` x ``flush_interval`` x offered load, a
producer task calls ``log()`` at a steady rate for ``latency_seconds`` (paced by
a 1 ms tick: each tick logs as many records as are due by then) on a logger with
the library's other defaults, writing to a fresh database file. Measured:

* throughput: records written per second, from the first ``log()`` until the
  ``async with`` block has exited;
* drop rate: records dropped (buffer full) per record offered;
* p50/p99 time from ``log()`` to commit: the benchmark wraps the store's
  ``write_batch`` (in this process only) to note ``time.time()`` when each
  batch's ``COMMIT`` has returned, and subtracts each record's ``log()`` stamp;
* CPU time per record offered (``time.process_time()``, all threads, less
  what the same pacing loop costs with a ``log`` that does nothing), and the
  number of transactions: what a configuration costs the rest of the program.

Each repeat runs every combination once, in rotated order; figures are medians
over repeats.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import trio

from trio_failurelog import RetrievalFailureRecord, open_failure_logger
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._sqlite import SQLiteStore

from ._common import (
    Params,
    frozen_heap,
    make_records,
    median,
    percentile,
    prepare_database,
    remove_database,
    rotated,
)

__all__ = ["run"]

_TICK = 0.001
_POOL = 20_000


def run(params: Params, directory: Path) -> dict[str, Any]:
    """Run figure 5; one entry per combination, medians over repeats."""
    rates = params.latency_rates
    seconds = params.latency_seconds
    records = make_records(min(_POOL, int(max(rates) * seconds) + 1))
    configs = list(
        itertools.product(params.latency_batch_sizes, params.latency_flush_intervals, rates)
    )
    runs: dict[tuple[int, float, int], list[dict[str, float]]] = {c: [] for c in configs}
    pacing: dict[int, list[float]] = {rate: [] for rate in rates}
    path = directory / "latency.db"
    with frozen_heap():
        for repeat in range(params.latency_repeats):
            for rate in rates:
                pacing[rate].append(trio.run(_pace_only, records, rate, seconds))
            for batch_size, flush_interval, rate in rotated(configs, repeat):
                prepare_database(path)
                runs[batch_size, flush_interval, rate].append(
                    trio.run(_steady, path, records, batch_size, flush_interval, rate, seconds)
                )
                remove_database(path)
    results = []
    for config in configs:
        entry: dict[str, Any] = {
            "batch_size": config[0],
            "flush_interval": config[1],
            "offered_per_second": config[2],
        }
        entry.update({key: median([r[key] for r in runs[config]]) for key in runs[config][0]})
        # What the logger adds, net of the harness's own 1 ms pacing loop.
        pacing_cpu = median(pacing[config[2]])
        entry["cpu_us_per_record"] = (entry["cpu_seconds"] - pacing_cpu) / entry["offered"] * 1e6
        # With the pacing loop's own CPU: what the net figure is taken from. At
        # low rates the two are close and the net one drowns in the noise.
        entry["cpu_us_per_record_gross"] = entry["cpu_seconds"] / entry["offered"] * 1e6
        results.append(entry)
    return {
        "unit": "records/s; seconds from log() to commit; microseconds of CPU per record",
        "seconds_per_run": seconds,
        "repeats": params.latency_repeats,
        "pacing_cpu_seconds": {rate: median(values) for rate, values in pacing.items()},
        "results": results,
    }


@contextmanager
def _commit_latencies(sink: list[float]) -> Iterator[None]:
    """Note, for every record written, the seconds from its ``log()`` to its commit."""
    write_batch = SQLiteStore.write_batch

    def timed(self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any) -> BatchOutcome:
        outcome = write_batch(self, items, **kwargs)
        committed = time.time()
        sink.extend([committed - stamp for _record, stamp in items])
        return outcome

    with mock.patch.object(SQLiteStore, "write_batch", timed):
        yield


async def _pace(
    log: Callable[[RetrievalFailureRecord], object],
    records: list[RetrievalFailureRecord],
    rate: int,
    seconds: float,
) -> int:
    """Call ``log`` ``rate`` times a second for ``seconds``; return how many calls."""
    offered = max(1, int(rate * seconds))
    pool = len(records)
    start = trio.current_time()
    sent = 0
    tick = start
    while sent < offered:
        due = min(offered, int((trio.current_time() - start) * rate) + 1)
        for i in range(sent, due):
            log(records[i % pool])
        sent = due
        tick += _TICK
        await trio.sleep_until(tick)
    return offered  # noqa: ASYNC910  # a benchmark step


async def _pace_only(records: list[RetrievalFailureRecord], rate: int, seconds: float) -> float:
    """CPU seconds of the pacing loop alone, with a ``log`` that does nothing."""
    cpu = time.process_time()
    await _pace(_ignore, records, rate, seconds)
    return time.process_time() - cpu


def _ignore(_record: RetrievalFailureRecord) -> None:
    pass


async def _steady(
    path: Path,
    records: list[RetrievalFailureRecord],
    batch_size: int,
    flush_interval: float,
    rate: int,
    seconds: float,
) -> dict[str, float]:
    latencies: list[float] = []
    with _commit_latencies(latencies):
        async with open_failure_logger(
            path, batch_size=batch_size, flush_interval=flush_interval
        ) as logger:
            cpu = time.process_time()
            start = trio.current_time()
            offered = await _pace(logger.log, records, rate, seconds)
        elapsed = trio.current_time() - start
        cpu = time.process_time() - cpu
    stats = logger.statistics()
    if stats.accepted + stats.dropped_full != offered or stats.written != stats.accepted:
        raise RuntimeError(f"latency: accounting is off: {stats}")
    return {
        "throughput": stats.written / elapsed,
        "drop_rate": stats.dropped_full / offered,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "cpu_seconds": cpu,
        "transactions": stats.batches,
        "offered": offered,
        "written": stats.written,
    }
