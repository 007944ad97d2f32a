"""Figure 7: reading months of failures back (``report``) from a big table.

Generates a realistic table, then measures in one run:

* ``report --since 24h`` on the big table against the same report on a table
  holding only that day's rows (the same rows, copied): the report should
  follow the window, not the table;
* ``report --since 7d`` and ``report --since 90d`` (every row) on the big table,
  against one plain scan of it (``count(*), sum(latency_ms)``);
* ``export --format csv`` of every row (the CLI, into a file) against a plain
  loop from an ``sqlite3`` cursor into ``csv.writer`` over the same rows into a
  file, and ``export`` as JSON Lines: rows per second and peak memory of each;
* on PostgreSQL (when a server can be had, or ``--pg-url``): ``report --since
  90d`` of the same rows, its time and peak memory.

Each report is :meth:`FailureReader.summary` (what ``report`` prints), and
each export a run of the CLI, in a child process of its own; its peak RSS is
the kernel's mark (``VmHWM``), reset once the reader is open (an export's:
once the library is imported) through ``/proc/self/clear_refs``, and the RSS
then is reported too, as the baseline. Timings are the best of ``repeats``
(warm cache: the generator has just read the file).

The generator: ``rows`` rows spread evenly (with jitter) over the 90 days
before now, in time order as a logger appends them; failure types no_hit 50%,
low_confidence 30%, timeout 12%, error 8%; six strategies of uneven weight,
each with its usual confidence threshold; 30% of the queries drawn from a
pool of 2,000 repeated ones (Zipf-like, in varying case and spacing, a few
non-ASCII), the rest unique. 1M rows by default, ``--reading-rows`` for more
(10M for the issue's figure).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import trio_failurelog
from trio_failurelog._sqlite._schema import INSERT_SQL, ensure_schema
from trio_failurelog._table import TABLE
from trio_failurelog._timetext import format_created_at

__all__ = ["ReadingParams", "generate", "run"]

_ROOT: Final = Path(__file__).resolve().parent.parent
_DAYS: Final = 90
_TYPES: Final = (("no_hit", 50), ("low_confidence", 30), ("timeout", 12), ("error", 8))
#: (strategy, weight, usual confidence threshold)
_STRATEGIES: Final = (
    ("semantic", 35, 0.7),
    ("hybrid", 25, 0.6),
    ("keyword", 15, 0.45),
    ("graph", 12, 0.55),
    ("episodic", 8, 0.65),
    ("recency", 5, 0.5),
)
_REPEATED_SHARE: Final = 0.30
_POOL: Final = 2_000
_CHUNK: Final = 50_000
_TOPICS: Final = (
    "refund policy", "order status", "the Q3 roadmap", "café opening hours", "VPN setup",
    "password reset", "the Berlin offsite", "invoice 2024-117", "naïve Bayes notes",
    "shipping to Zürich", "the onboarding doc", "API rate limits", "team lunch",
)  # fmt: skip


@dataclass(frozen=True)
class ReadingParams:
    rows: int
    repeats: int

    @classmethod
    def full(cls, rows: int | None = None) -> ReadingParams:
        rows = rows or 1_000_000
        return cls(rows=rows, repeats=2 if rows <= 2_000_000 else 1)  # 10M: minutes each

    @classmethod
    def smoke_sized(cls) -> ReadingParams:
        return cls(rows=3_000, repeats=1)


def _pool(rng: random.Random) -> list[str]:
    queries = []
    for i in range(_POOL):
        topic = _TOPICS[i % len(_TOPICS)]
        queries.append(f"what did we decide about {topic} in thread {i}")
    return queries


def _variant(query: str, rng: random.Random) -> str:
    """The same query as a user might type it again: case and spacing vary."""
    pick = rng.random()
    if pick < 0.6:
        return query
    if pick < 0.75:
        return query.capitalize()
    if pick < 0.85:
        return query.upper()
    if pick < 0.95:
        return query.replace(" ", "  ", 1)
    return f" {query}\t"


def rows_of(count: int, now: float, seed: int = 7) -> Iterator[tuple[object, ...]]:
    """``count`` rows in :data:`INSERT_SQL`'s column order, oldest first, ending at ``now``."""
    rng = random.Random(seed)
    pool = _pool(rng)
    weights = [1 / (rank + 1) for rank in range(_POOL)]  # Zipf-like: a few very common
    types = [name for name, _ in _TYPES]
    type_weights = [weight for _, weight in _TYPES]
    strategies = [s for s, _, _ in _STRATEGIES]
    strategy_weights = [w for _, w, _ in _STRATEGIES]
    thresholds = {s: t for s, _, t in _STRATEGIES}
    span = _DAYS * 86400.0
    start = now - span
    step = span / max(count, 1)
    epoch = datetime(1970, 1, 1)
    repeated = itertools.cycle(rng.choices(pool, weights, k=max(1, int(count * _REPEATED_SHARE))))
    for i in range(count):
        moment = start + (i + rng.random()) * step
        created_at = format_created_at(epoch + timedelta(milliseconds=round(moment * 1000)))
        failure_type = rng.choices(types, type_weights)[0]
        strategy = rng.choices(strategies, strategy_weights)[0]
        if rng.random() < _REPEATED_SHARE:
            query = _variant(next(repeated), rng)
        else:
            query = f"question {i} about {_TOPICS[i % len(_TOPICS)]} from user {i % 9973}"
        top_score = threshold = None
        result_count = 0
        latency = int(rng.lognormvariate(4.0, 0.8))
        error_context = None
        if failure_type == "low_confidence":
            threshold = thresholds[strategy] if rng.random() < 0.95 else 0.5
            top_score = round(max(0.0, threshold - rng.betavariate(2, 8)), 4)
            result_count = rng.randint(1, 10)
        elif failure_type == "timeout":
            latency = 2000 + int(rng.expovariate(1 / 300))
        elif failure_type == "error":
            error_context = "ConnectionError: vector store unavailable"
        yield (
            i // 8,  # conversation_id
            i % 8,  # turn_index
            failure_type,
            strategy,
            query,
            len(query),
            top_score,
            threshold,
            result_count,
            latency,
            '["mentions"]' if strategy == "graph" else None,
            error_context,
            created_at,
        )


def generate(path: Path, count: int, now: float) -> None:
    """Write ``count`` rows of :func:`rows_of` into a new SQLite file with the
    library's table and indexes (created first: rows arrive as a logger's do)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = OFF")
        ensure_schema(conn)
        rows = rows_of(count, now)
        while chunk := [row for _, row in zip(range(_CHUNK), rows, strict=False)]:
            conn.execute("BEGIN")
            conn.executemany(INSERT_SQL, chunk)
            conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def copy_since(source: Path, target: Path, since: str) -> int:
    """A new file with the library's table holding the rows of ``source`` since ``since``."""
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        ensure_schema(conn)
        conn.execute("ATTACH DATABASE ? AS big", (str(source),))
        conn.execute("BEGIN")
        conn.execute(
            f"INSERT INTO main.{TABLE} SELECT * FROM big.{TABLE} WHERE created_at >= ?", (since,)
        )
        conn.execute("COMMIT")
        return int(conn.execute(f"SELECT count(*) FROM main.{TABLE}").fetchone()[0])
    finally:
        conn.close()


def _plain_scan(path: Path, clock: Any = time.perf_counter) -> float:
    """Seconds (of ``clock``) one plain scan of the table takes."""
    conn = sqlite3.connect(path)
    try:
        started = clock()
        conn.execute(f"SELECT count(*), sum(latency_ms) FROM {TABLE}").fetchone()
        return float(clock() - started)
    finally:
        conn.close()


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak_rss_mb() -> float:
    """The RSS now, with the kernel's peak mark reset to it where Linux allows
    (``ru_maxrss`` alone would start at the parent's RSS: it survives exec)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_rss_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child_main(database: str, since: str) -> None:
    """In the child: one summary, then its time and peak RSS as JSON on stdout.

    ``since``: ``created_at`` text (or, from older parents, seconds before now).
    """
    from trio_failurelog import FailureReader

    bound: str | timedelta = since
    with contextlib.suppress(ValueError):
        bound = timedelta(seconds=float(since))
    with FailureReader(database) as reader:
        baseline = _reset_peak_rss_mb()
        started = time.perf_counter()
        cpu_started = time.process_time()
        summary = reader.summary(since=bound)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        peak = _peak_rss_mb()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "total": summary.total,
                "repeated": len(summary.repeated_queries),
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak,
            }
        )
    )


def _export_child(kind: str, database: str, target: str) -> None:
    """In the child: one export of every row into ``target`` (``kind``: ``csv``
    or ``jsonl`` through the CLI, or ``plain-csv``: the plain sqlite3 cursor to
    csv.writer loop), then its time, rows and peak RSS as JSON on stdout."""
    import csv

    from trio_failurelog._cli import main
    from trio_failurelog._table import FIELDS

    baseline = _reset_peak_rss_mb()
    started = time.perf_counter()
    cpu_started = time.process_time()
    if kind == "plain-csv":
        conn = sqlite3.connect(database)
        try:
            with open(target, "w", encoding="utf-8", newline="") as stream:
                writer = csv.writer(stream)
                writer.writerow(FIELDS)
                for row in conn.execute(f"SELECT {', '.join(FIELDS)} FROM {TABLE}"):
                    writer.writerow(row)
        finally:
            conn.close()
    else:
        with open(os.devnull, "w", encoding="utf-8") as quiet, contextlib.redirect_stderr(quiet):
            code = main(["export", database, "--format", kind, "-o", target])
        if code != 0:
            raise RuntimeError(f"reading: export exited with {code}")
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    peak = _peak_rss_mb()
    with open(target, "rb") as written:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 20), b""))
    rows = lines - 1 if kind.endswith("csv") else lines  # CSV: the header
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "rows": rows,
                "rows_per_second": rows / seconds,
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak,
                "bytes": os.path.getsize(target),
            }
        )
    )


def _export(kind: str, database: Path, repeats: int) -> dict[str, Any]:
    """The best of ``repeats`` exports of every row, each in a fresh child process
    (the file written next to the database, removed after)."""
    target = database.with_name(f"reading-export-{kind}.out")
    try:
        return _child(["export", kind, str(database), str(target)], repeats)
    finally:
        target.unlink(missing_ok=True)


def _report(database: str, since: str, repeats: int) -> dict[str, Any]:
    """The best of ``repeats`` summaries, each in a fresh child process."""
    return _child(["report", database, since], repeats)


def _child(argv: list[str], repeats: int) -> dict[str, Any]:
    """The best of ``repeats`` runs of ``python -m benchmarks.reading *argv``."""
    runs = []
    # The package this process imported (src, or an installed wheel), and the benchmarks.
    package_dir = Path(trio_failurelog.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_dir), str(_ROOT)])}
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.reading", *argv],
            cwd=_ROOT,
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"reading: {argv[0]} failed: {done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout))
    best = min(runs, key=lambda entry: entry["seconds"])
    return {**best, "runs": [entry["seconds"] for entry in runs]}


def _pg_load(url: str, path: Path) -> None:
    import psycopg

    from trio_failurelog._backends import open_store
    from trio_failurelog._database import StoreOptions

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    open_store(url, StoreOptions()).close()  # the library's table and indexes
    columns = "conversation_id, turn_index, failure_type, retrieval_strategy, query_text,"
    columns += " query_len, top_score, confidence_threshold, result_count, latency_ms,"
    columns += " edge_types, error_context, created_at"
    lite = sqlite3.connect(path)
    try:
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
                for row in lite.execute(f"SELECT {columns} FROM {TABLE}"):
                    copy.write_row(row)
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"VACUUM ANALYZE {TABLE}")
    finally:
        lite.close()


def run(params: ReadingParams, directory: Path, pg_url: str | None = None) -> dict[str, Any]:
    """Figure 7. ``pg_url``: a database of our own for the PostgreSQL part (None: none)."""
    now = time.time()
    big = directory / "reading-big.db"
    day = directory / "reading-day.db"
    started = time.perf_counter()
    generate(big, params.rows, now)
    generated = time.perf_counter() - started

    def since(seconds: float) -> str:
        moment = datetime.fromtimestamp(now - seconds, UTC).replace(tzinfo=None, microsecond=0)
        return format_created_at(moment)

    # Every window is fixed text: the two 24 h reports read exactly the same rows.
    day_rows = copy_since(big, day, since(86400))
    scan = min(_plain_scan(big) for _ in range(max(params.repeats, 2)))
    # CPU time too: on a machine shared with other work, wall time moves with
    # its load, CPU time much less (SQLite's sorter threads count in it).
    scan_cpu = min(_plain_scan(big, time.process_time) for _ in range(max(params.repeats, 2)))
    report_day_big = _report(str(big), since(86400), params.repeats)
    report_day_only = _report(str(day), since(86400), params.repeats)
    report_week = _report(str(big), since(7 * 86400), params.repeats)
    report_all = _report(str(big), since(_DAYS * 86400 + 3600), params.repeats)
    if report_all["total"] != params.rows:
        raise RuntimeError(f"reading: 90d report counted {report_all['total']} of {params.rows}")
    exports = {kind: _export(kind, big, params.repeats) for kind in ("plain-csv", "csv", "jsonl")}
    for kind, entry in exports.items():
        if entry["rows"] != params.rows:
            raise RuntimeError(f"reading: {kind} export wrote {entry['rows']} of {params.rows}")
    results: dict[str, Any] = {
        "rows": params.rows,
        "day_rows": day_rows,
        "file_mb": big.stat().st_size / 2**20,
        "generate_seconds": generated,
        "plain_scan_seconds": scan,
        "plain_scan_cpu_seconds": scan_cpu,
        "report_24h_big": report_day_big,
        "report_24h_day_only": report_day_only,
        "report_7d": report_week,
        "report_90d": report_all,
        "plain_csv_loop": exports["plain-csv"],
        "export_csv": exports["csv"],
        "export_jsonl": exports["jsonl"],
        "ratios": {
            "report_24h_big_vs_day_only": report_day_big["seconds"] / report_day_only["seconds"],
            "report_90d_vs_plain_scan": report_all["seconds"] / scan,
            "report_90d_vs_plain_scan_cpu": report_all["cpu_seconds"] / max(scan_cpu, 1e-9),
            # Speed: the export's rows per second over the plain loop's.
            "export_csv_vs_plain_loop": exports["plain-csv"]["seconds"] / exports["csv"]["seconds"],
            "export_csv_vs_plain_loop_cpu": exports["plain-csv"]["cpu_seconds"]
            / max(exports["csv"]["cpu_seconds"], 1e-9),
        },
    }
    if pg_url is not None:
        started = time.perf_counter()
        _pg_load(pg_url, big)
        results["postgres_load_seconds"] = time.perf_counter() - started
        results["postgres_report_90d"] = _report(
            pg_url, since(_DAYS * 86400 + 3600), params.repeats
        )
    return results


def table(results: dict[str, Any]) -> str:
    """Figure 7 as lines of text."""
    lines = [
        f"Figure 7: reading {results['rows']:,} rows ({results['file_mb']:,.0f} MB;"
        f" {results['day_rows']:,} in the last 24 h)",
        f"  one plain scan (count, sum)          {results['plain_scan_seconds']:8.2f} s"
        f"   CPU {results.get('plain_scan_cpu_seconds', math.nan):6.2f} s",
    ]
    for key, what in (
        ("report_24h_day_only", "report --since 24h, day-only table"),
        ("report_24h_big", "report --since 24h, big table"),
        ("report_7d", "report --since 7d"),
        ("report_90d", "report --since 90d"),
        ("postgres_report_90d", "PostgreSQL report --since 90d"),
        ("plain_csv_loop", "plain sqlite3 -> csv.writer loop"),
        ("export_csv", "export --format csv"),
        ("export_jsonl", "export --format jsonl"),
    ):
        if key in results:
            entry = results[key]
            speed = entry.get("rows_per_second")
            lines.append(
                f"  {what:<36} {entry['seconds']:8.2f} s"
                f"   CPU {entry.get('cpu_seconds', math.nan):6.2f} s"
                f"   peak RSS {entry['peak_rss_mb']:7.0f} MB"
                f" (baseline {entry['baseline_rss_mb']:.0f} MB)"
                + ("" if speed is None else f"   {speed:,.0f} rows/s")
            )
    ratios = results["ratios"]
    lines.append(
        f"  24h big / day-only: {ratios['report_24h_big_vs_day_only']:.2f}x (goal <= 2x);"
        f" 90d / plain scan: {ratios['report_90d_vs_plain_scan']:.1f}x (goal <= 10x;"
        f" CPU time: {ratios.get('report_90d_vs_plain_scan_cpu', math.nan):.1f}x)"
    )
    if "export_csv_vs_plain_loop" in ratios:
        lines.append(
            f"  export csv speed / plain loop: {ratios['export_csv_vs_plain_loop']:.2f}x"
            f" (goal >= 0.5x; CPU time: {ratios['export_csv_vs_plain_loop_cpu']:.2f}x)"
        )
    if "postgres_report_90d" in results:
        peak = results["postgres_report_90d"]["peak_rss_mb"]
        lines.append(f"  PostgreSQL 90d peak RSS: {peak:.0f} MB (goal < 200 MB)")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1] == "export":
        _export_child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        _child_main(sys.argv[2], sys.argv[3])
