"""Figure 6: PostgreSQL. Throughput against raw COPY, and an 8-process fleet.

Runs only when asked (``python -m benchmarks --only postgres``), against the
server of ``--pg-url`` (a role that may CREATE DATABASE: one database is
created for the run and dropped after it) or, without one, a throw-away
server started from the local PostgreSQL installation like the tests' (with
fsync on: durable commits, as in production).

* ``raw``: the limit the library is held to. psycopg ``COPY ... FROM STDIN`` (text,
  psycopg's default) with ``write_row`` of rows prebuilt by the library's own
  row conversion, one transaction per batch of the library's ``batch_size``,
  from one process; no trio, no records. Timed after connecting.
* ``raw_binary``: the same in binary COPY (``FORMAT BINARY``, ``set_types``),
  rows prebuilt by the library's own binary conversion: a stricter limit,
  since the library sends binary COPY itself when the table allows it.
* ``ours``: ``await logger.send(record)`` for every record inside
  ``open_failure_logger(url)`` with the library's defaults, timed from inside
  the block (once connected, like raw) until the ``async with`` block has
  exited (everything written, the connection closed).

Each contender writes into a freshly created table. Each repeat runs both, in
rotated order; the figure is the median, in records per second.

The fleet: ``fleet_processes`` processes each log ``fleet_records`` records
(``ours``, as above) into one table at once. Each opens its logger, says it is
ready, and starts on a common signal; the figure is all rows over the time
from that signal until the last process has exited its block. Totals must be
exact: rows in the table = the processes' ``written`` summed = all records.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import trio

from trio_failurelog import RetrievalFailureRecord, open_failure_logger
from trio_failurelog._table import TABLE

from ._common import DEFAULTS, frozen_heap, make_records, rotated

__all__ = ["PgParams", "run"]

CONTENDERS: Final = ("raw", "raw_binary", "ours")
_ROOT: Final = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PgParams:
    records: int
    repeats: int
    fleet_processes: int
    fleet_records: int

    @classmethod
    def full(cls) -> PgParams:
        return cls(records=200_000, repeats=3, fleet_processes=8, fleet_records=25_000)

    @classmethod
    def smoke_sized(cls) -> PgParams:
        return cls(records=2_000, repeats=1, fleet_processes=3, fleet_records=500)


class Unavailable(Exception):
    """No PostgreSQL server to run against; the message says why."""


@contextlib.contextmanager
def _server_url(url: str | None) -> Iterator[str]:
    """A URL of a database of our own for the run, on ``url``'s server or a throw-away one."""
    import psycopg

    server: Any = None
    if url is None:
        try:
            from tests.postgres._server import PgServer, ServerUnavailable
        except ImportError as exc:  # run from outside a checkout
            raise Unavailable(
                f"no --pg-url and no tests/postgres to start a server: {exc}"
            ) from None
        try:
            server = PgServer.start_new(durable=True)
        except ServerUnavailable as exc:
            raise Unavailable(str(exc)) from None
        url = server.url("postgres")
    name = f"failurelog_bench_{int(time.time())}"
    try:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        base, _, query = url.partition("?")
        database_url = base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")
        try:
            yield database_url
        finally:
            with psycopg.connect(url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        if server is not None:
            server.destroy()


def _fresh_table(url: str) -> None:
    import psycopg

    from trio_failurelog._backends import open_store
    from trio_failurelog._database import StoreOptions

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    open_store(url, StoreOptions()).close()  # the library's table and indexes


def _count(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {TABLE}").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


Batches = list[list[tuple[object, ...]]]


def _raw(url: str, batches: Batches, *, binary: bool = False) -> float:
    import psycopg

    from trio_failurelog._postgres._copy import BINARY_TYPES
    from trio_failurelog._postgres._schema import COPY_BINARY_SQL, COPY_SQL

    conn = psycopg.connect(url, autocommit=True)
    sql = COPY_BINARY_SQL if binary else COPY_SQL
    try:
        started = time.perf_counter()
        for rows in batches:
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                if binary:
                    copy.set_types(BINARY_TYPES)
                for row in rows:
                    copy.write_row(row)
        return time.perf_counter() - started
    finally:
        conn.close()


async def _ours(url: str, records: list[RetrievalFailureRecord]) -> tuple[float, Any]:
    async with open_failure_logger(url) as failures:
        started = time.perf_counter()
        for record in records:
            await failures.send(record)
    return time.perf_counter() - started, failures.statistics()


def _prebuilt_rows(
    url: str, records: list[RetrievalFailureRecord]
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Rows built by the library's own conversions: text (``insert_row`` with an
    open store's timestamps) and binary (``binary_rows``)."""
    from trio_failurelog._database import StoreOptions
    from trio_failurelog._postgres import PostgresStore
    from trio_failurelog._postgres._copy import binary_rows, insert_row

    store = PostgresStore.open(url, StoreOptions())
    try:
        base = time.time()
        items = [(record, base + i * 1e-5) for i, record in enumerate(records)]
        binary = binary_rows(items)
        assert binary is not None, "the benchmark's records are all plain"
        return [insert_row(item, store._created_at) for item in items], binary
    finally:
        store.close()


def _throughput(url: str, params: PgParams) -> dict[str, Any]:
    records = make_records(params.records)
    text_rows, binary_rows = _prebuilt_rows(url, records)
    batch_size: int = DEFAULTS["batch_size"]

    def batched(rows: list[tuple[object, ...]]) -> Batches:
        return [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]

    batches = {"raw": batched(text_rows), "raw_binary": batched(binary_rows)}
    del text_rows, binary_rows
    with frozen_heap():
        return _measure(url, params, records, batches)


def _measure(
    url: str,
    params: PgParams,
    records: list[RetrievalFailureRecord],
    batches: dict[str, Batches],
) -> dict[str, Any]:
    batch_size: int = DEFAULTS["batch_size"]
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for repeat in range(params.repeats):
        for name in rotated(CONTENDERS, repeat):
            _fresh_table(url)
            if name != "ours":
                elapsed = _raw(url, batches[name], binary=name == "raw_binary")
            else:
                elapsed, stats = trio.run(_ours, url, records)
                if stats.written != len(records) or stats.failed:
                    raise RuntimeError(
                        f"postgres: ours wrote {stats.written}, failed {stats.failed}"
                    )
            rows_found, _ = _count(url)
            if rows_found != len(records):
                raise RuntimeError(f"postgres: {name} left {rows_found} of {len(records)} rows")
            seconds[name].append(elapsed)
    rates = {name: len(records) / statistics.median(values) for name, values in seconds.items()}
    return {
        "records": len(records),
        "repeats": params.repeats,
        "batch_size": batch_size,
        "seconds": seconds,
        "records_per_second": rates,
        "ratios": {
            "ours_vs_raw": rates["ours"] / rates["raw"],
            "ours_vs_raw_binary": rates["ours"] / rates["raw_binary"],
        },
    }


# ---------------------------------------------------------------------- the fleet


def _child(url: str, count: int, tag: str) -> None:
    """One process of the fleet: ready, wait for "go" on stdin, log, report JSON."""
    records = [
        RetrievalFailureRecord("no_hit", "fleet", f"{tag}-{i}", conversation_id=i)
        for i in range(count)
    ]

    async def main() -> None:
        async with open_failure_logger(url) as failures:
            print("ready", flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)
            for record in records:
                await failures.send(record)
        stats = failures.statistics()
        print(
            json.dumps(
                {"accepted": stats.accepted, "written": stats.written, "failed": stats.failed}
            ),
            flush=True,
        )

    trio.run(main)


def fleet(url: str, processes: int, records: int) -> dict[str, Any]:
    """Run ``processes`` children of :func:`_child` at once; totals and aggregate rate."""
    _fresh_table(url)
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.postgres", "--child", url, str(records), f"p{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=_ROOT,  # where the benchmarks package is
        )
        for n in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"fleet: a process did not start: {line!r}")
        started = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        reports = []
        for child in children:
            out, _ = child.communicate(timeout=600)
            if child.returncode != 0:
                raise RuntimeError(f"fleet: a process failed (exit {child.returncode})")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.perf_counter() - started
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    rows, distinct = _count(url)
    written = sum(report["written"] for report in reports)
    expected = processes * records
    return {
        "processes": processes,
        "records_per_process": records,
        "seconds": elapsed,
        "rows": rows,
        "written": written,
        "failed": sum(report["failed"] for report in reports),
        "exact": rows == distinct == written == expected,
        "records_per_second": rows / elapsed,
    }


def run(params: PgParams, url: str | None) -> dict[str, Any]:
    """Figure 6. Raises :exc:`Unavailable` when there is no server to run against."""
    with _server_url(url) as database:
        throughput = _throughput(database, params)
        flock = fleet(database, params.fleet_processes, params.fleet_records)
    flock["vs_one_process"] = flock["records_per_second"] / throughput["records_per_second"]["ours"]
    return {"throughput": throughput, "fleet": flock, "parameters": params.__dict__}


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("usage: python -m benchmarks.postgres --child URL RECORDS TAG")
