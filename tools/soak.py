"""Soak: ten minutes at a steady rate with retention purges; RSS and file size.

``nox -s soak`` (or ``python tools/soak.py``) logs records at a steady rate into
a fresh database with a short retention window, so the purge deletes as fast
as the logger writes once the window is full. Every ``--sample`` seconds it
notes the process's resident memory (VmRSS), the database's size on disk (main
file plus ``-wal`` and ``-shm``) and the row count, and at the end prints the
figures the README quotes, plus a JSON line with everything.

It fails (exit status 1) when a record was dropped or failed, when RSS grew by
more than ``--rss-slack`` MiB between the end of the first retention window and
the end, or when the file outgrew ``--size-factor`` times its size at the end of
the first window (both measured once the retention window has filled).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from trio_failurelog import TABLE, RetrievalFailureRecord, open_failure_logger


@dataclass
class Sample:
    elapsed: float
    rss_kib: int
    file_bytes: int
    rows: int
    written: int
    purged: int


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def file_bytes(database: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            total += os.stat(f"{database}{suffix}").st_size
    return total


def rows(database: Path) -> int:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        count: int = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        return count
    finally:
        conn.close()


async def soak(args: argparse.Namespace, database: Path) -> tuple[list[Sample], dict[str, object]]:
    interval = 1.0 / args.rate
    samples: list[Sample] = []
    async with open_failure_logger(
        database,
        retention_days=args.retention / 86400,
        purge_every=args.purge_every,
        flush_interval=0.25,
    ) as logger:
        start = trio.current_time()
        next_sample = start
        number = 0
        while (now := trio.current_time()) - start < args.duration:
            # Catch up to the schedule: a steady average rate, whatever the jitter.
            due = int((now - start) / interval) + 1
            while number < due:
                logger.log(
                    RetrievalFailureRecord(
                        "low_confidence",
                        "hybrid",
                        f"soak query {number} " + "lorem ipsum " * (number % 20),
                        conversation_id=number // 10,
                        turn_index=number % 10,
                        top_score=0.42,
                        confidence_threshold=0.6,
                        result_count=3,
                        latency_ms=number % 250,
                        edge_types=("mentions",),
                    )
                )
                number += 1
            if now >= next_sample:
                stats = logger.statistics()
                samples.append(
                    Sample(
                        round(now - start, 1),
                        rss_kib(),
                        file_bytes(database),
                        await trio.to_thread.run_sync(rows, database),
                        stats.written,
                        stats.purged,
                    )
                )
                next_sample += args.sample
            await trio.sleep(min(interval * 50, 0.05))
        await logger.flush()
        final = logger.statistics()
    return samples, asdict(final)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--rate", type=float, default=2000.0, help="records per second")
    parser.add_argument("--retention", type=float, default=60.0, help="window, seconds")
    parser.add_argument("--purge-every", type=int, default=20, help="batches between purges")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rss-slack", type=float, default=8.0, help="MiB of RSS growth allowed")
    parser.add_argument("--size-factor", type=float, default=1.5, help="file growth allowed")
    parser.add_argument("--database", type=Path, help="default: a temporary file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as directory:
        database = args.database or Path(directory) / "soak.db"
        samples, final = trio.run(soak, args, database)

    # Steady state: from the first sample after one retention window (plus a
    # purge interval) has passed.
    settled = [s for s in samples if s.elapsed >= args.retention + 10] or samples[-1:]
    first, last = settled[0], samples[-1]
    rss_max = max(s.rss_kib for s in samples)
    size_max = max(s.file_bytes for s in settled)
    rows_max = max(s.rows for s in settled)
    figures = {
        "duration_s": args.duration,
        "rate_per_s": args.rate,
        "retention_s": args.retention,
        "accepted": final["accepted"],
        "written": final["written"],
        "failed": final["failed"],
        "dropped": final["dropped_full"] + final["dropped_closed"],  # type: ignore[operator]
        "purged": final["purged"],
        "rss_start_mib": round(samples[0].rss_kib / 1024, 1),
        "rss_settled_mib": round(first.rss_kib / 1024, 1),
        "rss_end_mib": round(last.rss_kib / 1024, 1),
        "rss_max_mib": round(rss_max / 1024, 1),
        "file_settled_mib": round(first.file_bytes / 2**20, 2),
        "file_end_mib": round(last.file_bytes / 2**20, 2),
        "file_max_mib": round(size_max / 2**20, 2),
        "rows_expected_in_window": int(args.rate * args.retention),
        "rows_max": rows_max,
        "rows_end": last.rows,
    }
    print(
        f"{'elapsed s':>9} {'RSS MiB':>8} {'file MiB':>9} {'rows':>8} {'written':>9} {'purged':>9}"
    )
    for s in samples:
        print(
            f"{s.elapsed:9.1f} {s.rss_kib / 1024:8.1f} {s.file_bytes / 2**20:9.2f} "
            f"{s.rows:8d} {s.written:9d} {s.purged:9d}"
        )
    print(json.dumps(figures))

    problems = []
    if figures["failed"] or figures["dropped"]:
        problems.append("records were lost")
    if (last.rss_kib - first.rss_kib) / 1024 > args.rss_slack:
        problems.append(f"RSS grew by more than {args.rss_slack} MiB after settling")
    if size_max > args.size_factor * first.file_bytes:
        problems.append(f"the file grew past {args.size_factor} x its settled size")
    for problem in problems:
        print(f"soak: FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
