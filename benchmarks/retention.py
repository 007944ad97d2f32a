"""Figure 8: retention of a big SQLite table, with a logger writing into the same file.

Generates the realistic table of figure 7 (``reading.generate``: rows spread
over 90 days) as the reference application makes files (auto_vacuum NONE:
"existing"), and copies its rows into a file the library created first
(incremental auto_vacuum: "new"). Then, each on a fresh copy, in one run, a
purge of the oldest third (``--older-than`` 60 days) in a process of its own
while a logger in this process writes 2,000 records/s into the same file:

* ``before``: the purge as it was, emulated here (``old`` below): chunks of
  1000 rows committed back to back, no pause, no vacuum; existing file;
* ``existing``: ``trio-failurelog purge`` (chunks sized by time, a pause
  between them); existing file, which keeps its size; then ``purge --vacuum``
  (``vacuum`` below) with the logger still writing: its time, the most
  temporary disk it took, and what the logger went through;
* ``new``: ``trio-failurelog purge`` on the new file, which shrinks as it goes;
* ``logger before`` and ``logger after``: the same third purged by another
  process's logger through its own retention (``retention_days`` 60, logging
  200 records/s, so a round of up to ten chunks after each batch), on the new
  file: before, its chunks of 1000 rows back to back (emulated: the store's
  ``purge_gap`` set to 0); after, as it is now (chunks sized by time, a gap
  before each). Its time: until the logger has purged the rows it had to.

The logger: the library's defaults but ``flush_interval`` 20 ms (about 40
records a transaction, 50 commits a second: more commits to hold up, and to
count, than with 512-record batches) and no retention of its own. A commit's
latency is the time from the first ``write_batch`` call that tried a batch to
the one that committed it: waiting for the lock, and the logger's retries
after each ``busy_timeout`` (0.1 s), included (the harness wraps the call, in
this process only); each kind of purge runs on
``repeats`` fresh copies (3 at 1M rows, 1 at 10M), their commits pooled.
``idle`` is the same logger for 10 s with no purge. A purge's time is the
purging process's own (its start-up left out), the median of the repeats.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from unittest import mock

import trio

from trio_failurelog import RetrievalFailureRecord, open_failure_logger
from trio_failurelog._database import BatchOutcome, QueuedRecord
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._sqlite._schema import DELETE_BEFORE_SQL
from trio_failurelog._table import TABLE, utc_second_text
from trio_failurelog._timetext import format_created_at

from ._common import make_records, median, percentile, prepare_database
from .latency import _pace
from .reading import copy_since, generate

__all__ = ["RetentionParams", "run", "table"]

_ROOT: Final = Path(__file__).resolve().parent.parent
_PURGED_DAYS: Final = 30  # of reading's 90: the oldest third
_OLD_CHUNK: Final = 1000
_FLUSH_INTERVAL: Final = 0.02
_SAMPLE_EVERY: Final = 0.02


@dataclass(frozen=True)
class RetentionParams:
    rows: int
    rate: int
    idle_seconds: float
    #: Purges of each kind, on fresh copies, their commits pooled: a purge of
    #: 1M rows lasts seconds, a hundred commits or so.
    repeats: int

    @classmethod
    def full(cls, rows: int | None = None) -> RetentionParams:
        rows = rows or 1_000_000
        return cls(rows=rows, rate=2_000, idle_seconds=10.0, repeats=3 if rows <= 2_000_000 else 1)

    @classmethod
    def smoke_sized(cls) -> RetentionParams:
        return cls(rows=3_000, rate=200, idle_seconds=0.3, repeats=1)


# ---------------------------------------------------------------------- children


def _old_purge(database: str, cutoff: str) -> None:
    """The purge loop as it was before figure 8: 1000-row chunks back to back."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=5.0)
    try:
        while True:
            conn.execute("BEGIN IMMEDIATE")
            deleted = conn.execute(DELETE_BEFORE_SQL, (cutoff, _OLD_CHUNK)).rowcount
            conn.execute("COMMIT")
            if deleted < _OLD_CHUNK:
                return
    finally:
        conn.close()


def _disk_used(paths: Sequence[str]) -> int:
    """Bytes used on the file systems of ``paths`` (each counted once)."""
    seen: dict[int, int] = {}
    for path in paths:
        seen.setdefault(os.stat(path).st_dev, shutil.disk_usage(path).used)
    return sum(seen.values())


def _vacuum(database: str) -> dict[str, Any]:
    """``purge --vacuum``'s VACUUM, timed, with the most disk it took meanwhile."""
    from trio_failurelog._backends import vacuum_database

    places = [os.path.dirname(os.path.abspath(database)), tempfile.gettempdir()]
    start_used = _disk_used(places)
    peak = [start_used]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(_SAMPLE_EVERY):
            peak[0] = max(peak[0], _disk_used(places))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    outcome = vacuum_database(database)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "seconds": seconds,
        "bytes_before": outcome.bytes_before,
        "bytes_after": outcome.bytes_after,
        "auto_vacuum_before": outcome.auto_vacuum_before,
        "auto_vacuum_after": outcome.auto_vacuum_after,
        "peak_extra_disk_bytes": peak[0] - start_used,
    }


def _child_main(argv: list[str]) -> None:
    """Run one purge (``old``, ``cli``: ``trio-failurelog purge``) or ``vacuum``;
    print its time (and the vacuum's figures) as the last line, JSON."""
    what, database = argv[0], argv[1]
    started = time.perf_counter()
    if what == "old":
        _old_purge(database, argv[2])
    elif what == "cli":
        from trio_failurelog._cli import main

        if main(["purge", database, "--older-than", argv[2]]) != 0:
            raise SystemExit("the purge failed")
    elif what == "vacuum":
        print(json.dumps(_vacuum(database)))
        return
    elif what in ("logger", "logger-old"):
        if what == "logger-old":  # the retention purge as it was: 1000-row chunks back to back
            SQLiteStore.purge_gap = 0.0
        days = float(argv[2])
        written = trio.run(_retention_logger, database, days, _older_than(database, days))
        print(json.dumps({"seconds": time.perf_counter() - started, "child_written": written}))
        return
    else:
        raise SystemExit(f"unknown child {what!r}")
    print(json.dumps({"seconds": time.perf_counter() - started}))


def _older_than(database: str, days: float) -> int:
    """How many rows are older than ``days`` days now."""
    conn = sqlite3.connect(database)
    try:
        cutoff = utc_second_text(time.time() - days * 86400)
        due = conn.execute(f"SELECT count(*) FROM {TABLE} WHERE created_at < ?", (cutoff,))
        return int(due.fetchone()[0])
    finally:
        conn.close()


async def _retention_logger(database: str, days: float, expected: int) -> int:
    """A logger with ``retention_days`` ``days``, logging 200 records/s until its
    retention purge has deleted ``expected`` rows; how many records it wrote."""
    records = make_records(200)
    async with open_failure_logger(database, retention_days=days) as logger:
        for record in itertools.cycle(records):
            if logger.statistics().purged >= expected:
                break
            logger.log(record)
            await trio.sleep(1 / 200)
    return logger.statistics().written


# ---------------------------------------------------------------------- the logger


@contextmanager
def _commit_seconds(sink: list[float], ends: list[float]) -> Iterator[None]:
    """Note, for each batch committed, the seconds from the first ``write_batch``
    call that tried it to the one that committed it (the logger retries a batch
    whose call found the lock taken for ``busy_timeout``), and when it committed."""
    write_batch = SQLiteStore.write_batch
    first_try: list[float] = []  # of the batch being retried, if any

    def timed(self: SQLiteStore, items: Sequence[QueuedRecord], **kwargs: Any) -> BatchOutcome:
        started = first_try.pop() if first_try else time.perf_counter()
        try:
            outcome = write_batch(self, items, **kwargs)
        except BaseException:
            first_try.append(started)  # the same batch comes back next
            raise
        ends.append(time.perf_counter())
        sink.append(ends[-1] - started)
        return outcome

    with mock.patch.object(SQLiteStore, "write_batch", timed):
        yield


def _on_disk(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


async def _with_logger(
    path: Path,
    records: list[RetrievalFailureRecord],
    rate: int,
    command: list[str] | None,
    idle_seconds: float,
) -> dict[str, Any]:
    """Log ``rate`` records/s into ``path`` while ``command`` runs (or for ``idle_seconds``)."""
    commits: list[float] = []
    ends: list[float] = []
    offered = 0
    result: dict[str, Any] = {}

    async with open_failure_logger(
        path, flush_interval=_FLUSH_INTERVAL, retention_days=None
    ) as logger:

        def log(record: RetrievalFailureRecord) -> None:
            nonlocal offered
            offered += 1
            logger.log(record)

        await trio.sleep(2 * _FLUSH_INTERVAL)  # opened, settled: commits from here on count
        with _commit_seconds(commits, ends):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_pace, log, records, rate, 1e9)
                started = time.perf_counter()
                if command is None:
                    await trio.sleep(idle_seconds)
                else:
                    done = await trio.run_process(command, capture_stdout=True, cwd=_ROOT)
                    result.update(json.loads(done.stdout.decode().splitlines()[-1]))
                result["wall_seconds"] = time.perf_counter() - started
                nursery.cancel_scope.cancel()
            await logger.flush()  # the last commit counts too: a quick purge has a few
    stats = logger.statistics()
    if stats.accepted + stats.dropped_full != offered or stats.written != stats.accepted:
        raise RuntimeError(f"retention: the logger lost records: {stats}")
    result.update(
        commit_seconds=commits,
        # The longest the logger went without a commit.
        longest_gap_ms=max(
            (later - earlier for earlier, later in itertools.pairwise(ends)), default=math.nan
        )
        * 1e3,
        offered=offered,
        written=stats.written,
        dropped=stats.dropped_full,
        failed=stats.failed,
        retries=stats.retries,
    )
    return result


def _latencies(commits: list[float]) -> dict[str, Any]:
    return {
        "commits": len(commits),
        "commit_p50_ms": percentile(commits, 0.50) * 1e3,
        "commit_p99_ms": percentile(commits, 0.99) * 1e3,
        "commit_max_ms": max(commits, default=math.nan) * 1e3,
    }


# ---------------------------------------------------------------------- the figure


def _purge(
    label: str,
    fresh: Callable[[], Path],
    command: list[str],
    params: RetentionParams,
    records: list[RetrievalFailureRecord],
) -> dict[str, Any]:
    """``command`` on ``params.repeats`` fresh copies, the logger's commits pooled."""
    runs = []
    commits: list[float] = []
    for _ in range(params.repeats):
        path = fresh()
        before = _on_disk(path)
        rows_before = _count(path)
        entry = trio.run(_with_logger, path, records, params.rate, command, 0.0)
        commits += entry.pop("commit_seconds")
        entry.update(
            bytes_before=before,
            bytes_after=_on_disk(path),
            rows_before=rows_before,
            rows_after=_count(path),
        )
        # Rows written meanwhile: the logger's here, and a purging logger's own.
        entry["added"] = entry["written"] + entry.get("child_written", 0)
        if entry["rows_before"] + entry["added"] - entry["rows_after"] <= 0:
            raise RuntimeError(f"retention: {label} purged nothing")
        runs.append(entry)
    return {
        "label": label,
        "purge_seconds": median([run["seconds"] for run in runs]),
        "longest_gap_ms": max(run["longest_gap_ms"] for run in runs),
        "bytes_before": runs[-1]["bytes_before"],
        "bytes_after": runs[-1]["bytes_after"],
        "rows_purged": runs[-1]["rows_before"] + runs[-1]["added"] - runs[-1]["rows_after"],
        **_latencies(commits),
        "runs": runs,
    }


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM memory_retrieval_failures").fetchone()[0])
    finally:
        conn.close()


def run(params: RetentionParams, directory: Path) -> dict[str, Any]:
    """Figure 8."""
    now = time.time()
    existing = directory / "retention-existing.db"
    new = directory / "retention-new.db"
    started = time.perf_counter()
    generate(existing, params.rows, now)
    prepare_database(new)  # the library's file: incremental auto_vacuum
    if copy_since(existing, new, "") != params.rows:  # the same rows, ids and all
        raise RuntimeError("retention: the copy of the table is short")
    generated = time.perf_counter() - started
    cutoff = format_created_at(
        datetime.fromtimestamp(now - (90 - _PURGED_DAYS) * 86400, UTC).replace(
            tzinfo=None, microsecond=0
        )
    )
    bound = cutoff.replace(" ", "T")  # the CLI's UTC time
    records = make_records(2_000)
    python = sys.executable

    def child(what: str, path: Path, *more: str) -> list[str]:
        return [python, "-m", "benchmarks.retention", what, str(path), *more]

    work = directory / "retention-work.db"

    def fresh(source: Path) -> Path:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(source, work)
        return work

    idle = trio.run(_with_logger, fresh(new), records, params.rate, None, params.idle_seconds)
    idle.update(_latencies(idle.pop("commit_seconds")))
    before = _purge("before", lambda: fresh(existing), child("old", work, cutoff), params, records)
    after_new = _purge("new", lambda: fresh(new), child("cli", work, bound), params, records)
    days = str(90 - _PURGED_DAYS)
    logger_before = _purge(
        "logger before", lambda: fresh(new), child("logger-old", work, days), params, records
    )
    logger_after = _purge(
        "logger after", lambda: fresh(new), child("logger", work, days), params, records
    )
    after_existing = _purge(
        "existing", lambda: fresh(existing), child("cli", work, bound), params, records
    )
    # The last copy of the existing file, purged: now --vacuum, the logger still writing.
    vacuum = trio.run(_with_logger, work, records, params.rate, child("vacuum", work), 0.0)
    vacuum.update(_latencies(vacuum.pop("commit_seconds")))
    return {
        "rows": params.rows,
        "rate": params.rate,
        "cutoff": cutoff,
        "generate_seconds": generated,
        "idle": idle,
        "before": before,
        "existing": after_existing,
        "vacuum": vacuum,
        "new": after_new,
        "logger_before": logger_before,
        "logger_after": logger_after,
        "ratios": {
            "p99_after_vs_before": after_new["commit_p99_ms"] / before["commit_p99_ms"],
            "logger_p99_after_vs_before": logger_after["commit_p99_ms"]
            / logger_before["commit_p99_ms"],
            "p99_after_vs_idle": after_new["commit_p99_ms"] / idle["commit_p99_ms"],
            "purge_seconds_after_vs_before": after_new["purge_seconds"] / before["purge_seconds"],
            "new_file_after_vs_before": after_new["bytes_after"] / after_new["bytes_before"],
            "vacuumed_vs_before": vacuum["bytes_after"] / after_existing["bytes_before"],
        },
    }


def table(results: dict[str, Any]) -> str:
    """Figure 8 as lines of text."""

    def mb(size: float) -> str:
        return f"{size / 1e6:,.0f} MB"

    lines = [
        f"Figure 8: purging the oldest third of {results['rows']:,} rows while a logger writes"
        f" {results['rate']:,}/s (commit: a batch's first try to its commit, ms; no commit:"
        " the longest time between two, ms; goal: p99 < 100 ms)",
        f"  {'':<40} {'p50':>7} {'p99':>7} {'max':>7} {'no commit':>10} {'purge':>8}"
        f" {'file before':>12} {'after':>9}",
    ]
    idle = results["idle"]
    lines.append(
        f"  {'no purge':<40} {idle['commit_p50_ms']:7.1f} {idle['commit_p99_ms']:7.1f}"
        f" {idle['commit_max_ms']:7.1f} {idle['longest_gap_ms']:10.1f}"
    )
    for key, what in (
        ("before", "before: back to back (existing file)"),
        ("existing", "after: existing file (auto_vacuum off)"),
        ("new", "after: new file (incremental)"),
        ("logger_before", "a logger's retention, before (new file)"),
        ("logger_after", "a logger's retention, after (new file)"),
    ):
        if key not in results:  # results from before the logger's rows were measured
            continue
        entry = results[key]
        lines.append(
            f"  {what:<40} {entry['commit_p50_ms']:7.1f} {entry['commit_p99_ms']:7.1f}"
            f" {entry['commit_max_ms']:7.1f} {entry['longest_gap_ms']:10.1f}"
            f" {entry['purge_seconds']:7.2f}s"
            f" {mb(entry['bytes_before']):>12} {mb(entry['bytes_after']):>9}"
        )
    vacuum = results["vacuum"]
    lines.append(
        f"  {'purge --vacuum (existing file)':<40} {vacuum['commit_p50_ms']:7.1f}"
        f" {vacuum['commit_p99_ms']:7.1f} {vacuum['commit_max_ms']:7.1f}"
        f" {vacuum['longest_gap_ms']:10.1f} {vacuum['seconds']:7.2f}s"
        f" {mb(vacuum['bytes_before']):>12} {mb(vacuum['bytes_after']):>9}"
    )
    lines.append(
        f"  VACUUM took {mb(vacuum['peak_extra_disk_bytes'])} of extra disk at its peak; the"
        f" logger meanwhile: {vacuum['retries']} retries, {vacuum['dropped']} dropped,"
        f" {vacuum['failed']} failed"
    )
    ratios = results["ratios"]
    lines.append(
        f"  p99 after/before: {ratios['p99_after_vs_before']:.2f}x; after/no purge:"
        f" {ratios['p99_after_vs_idle']:.2f}x; purge time after/before:"
        f" {ratios['purge_seconds_after_vs_before']:.2f}x; new file after/before purge:"
        f" {ratios['new_file_after_vs_before']:.2f}x"
    )
    if "logger_p99_after_vs_before" in ratios:
        lines.append(
            f"  a logger's retention purge, p99 after/before:"
            f" {ratios['logger_p99_after_vs_before']:.2f}x"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    _child_main(sys.argv[1:])
