"""Figure 9: retention on PostgreSQL, the chunked DELETE against dropping partitions.

Runs only when asked (``python -m benchmarks --only partitions``), on the
server of ``--pg-url`` or a throw-away one (see ``postgres.py``), in one
database of its own with a schema per table (the library finds the table
through ``search_path``, set in each URL):

* ``plain``: the table as the library creates it, loaded with ``rows`` rows
  of figure 7's generator (``reading.rows_of``: spread over the 90 days
  before now, a realistic mix), then ``VACUUM ANALYZE``.
* ``parts``: the same rows in a table the library created with
  ``partition_interval="day"`` (its partitions for the past 90 days made by
  the library's own ``make_partitions``, as a logger makes them for rows
  that find none), copied in the server from ``plain``.

Then each is purged of the rows older than 60 days (a third) by
``purge_older_than``, the manual ``trio-failurelog purge``: on ``plain`` that
is the chunked DELETE (1,000 rows a transaction); on ``parts`` it drops the
30 day partitions wholly older than the cutoff and deletes the rest of the
boundary day's old rows. A purge runs once (it cannot be repeated on the
same rows); both must report the same number of rows, and leave the same.

Last, the writer: ``await logger.send(record)`` for ``writer_records``
records into a fresh plain table and into a fresh table partitioned by day
(made by the library, used by a logger with default settings), in rotated
order, median of ``repeats``: partitioned / plain, records per second.
"""

from __future__ import annotations

import contextlib
import statistics
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import trio

from trio_failurelog._database import PartitionInterval
from trio_failurelog._table import COLUMNS, TABLE

from ._common import make_records, rotated
from .postgres import _ours, _server_url
from .reading import rows_of

__all__ = ["PartitionParams", "run", "table"]

_DAY: Final = 86400.0
_DAYS: Final = 90  # the generator's span
_KEEP_DAYS: Final = 60  # the purge removes the oldest 30 of the 90 days: a third
_INTERVAL: Final[PartitionInterval] = "day"
_GOAL: Final = 20.0  # the target: DELETE / partition drop


@dataclass(frozen=True)
class PartitionParams:
    rows: int
    writer_records: int
    repeats: int

    @classmethod
    def full(cls, rows: int | None = None) -> PartitionParams:
        return cls(rows=rows or 1_000_000, writer_records=100_000, repeats=3)

    @classmethod
    def smoke_sized(cls) -> PartitionParams:
        return cls(rows=3_000, writer_records=1_000, repeats=1)


def _in_schema(url: str, schema: str) -> str:
    """``url`` with ``search_path`` set to ``schema`` (libpq's ``options``)."""
    options = urllib.parse.quote(f"-csearch_path={schema}", safe="")
    return url + ("&" if "?" in url else "?") + f"options={options}"


def _fresh_schema(url: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    return _in_schema(url, schema)


def _open_close(url: str, partitioned: bool) -> None:
    """Create the table as the library does (partitioned by day, or plain)."""
    from trio_failurelog._backends import open_store
    from trio_failurelog._database import StoreOptions

    interval = _INTERVAL if partitioned else None
    open_store(url, StoreOptions(partition_interval=interval)).close()


def _load(url: str, rows: int, now: float) -> tuple[str, str]:
    """The two tables of the same rows; returns their URLs (plain, parts)."""
    import psycopg

    from trio_failurelog._postgres._partitions import make_partitions

    plain = _fresh_schema(url, "plain")
    parts = _fresh_schema(url, "parts")
    _open_close(plain, partitioned=False)
    _open_close(parts, partitioned=True)
    with psycopg.connect(parts, autocommit=True) as conn:
        make_partitions(conn, _INTERVAL, [(now - (_DAYS + 1) * _DAY, now)], lock_timeout_ms=60_000)
    columns = ", ".join(COLUMNS)
    with psycopg.connect(plain) as conn:
        conn.execute("SET TIME ZONE 'UTC'")  # the generator's created_at is UTC text
        with conn.cursor() as cur, cur.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for row in rows_of(rows, now):
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO parts.{TABLE} ({columns}) SELECT {columns} FROM plain.{TABLE} ORDER BY id"
        )
        for schema in ("plain", "parts"):
            conn.execute(f"VACUUM ANALYZE {schema}.{TABLE}")
    return plain, parts


def _state(url: str) -> tuple[int, int]:
    """Rows in the table, and partitions (0 for a plain table)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT (SELECT count(*) FROM {TABLE}),"
            f" (SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('{TABLE}'))"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _boundary_rows(url: str, cutoff: datetime) -> int:
    """Rows older than ``cutoff`` in its own day: what a purge by day partitions deletes."""
    import psycopg

    day = cutoff.replace(hour=0, minute=0, second=0, microsecond=0)
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {TABLE} WHERE created_at >= %s AND created_at < %s",
            (day, cutoff),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _purge(url: str, cutoff: datetime) -> dict[str, Any]:
    from trio_failurelog._purge import purge_older_than

    rows_before, partitions_before = _state(url)
    started = time.perf_counter()
    deleted = purge_older_than(url, cutoff)
    elapsed = time.perf_counter() - started
    rows_after, partitions_after = _state(url)
    if rows_before - rows_after != deleted:
        removed = rows_before - rows_after
        raise RuntimeError(f"partitions: the purge reported {deleted}, removed {removed}")
    return {
        "seconds": elapsed,
        "deleted": deleted,
        "rows_after": rows_after,
        "partitions_dropped": partitions_before - partitions_after,
    }


def _writer(url: str, params: PartitionParams) -> dict[str, Any]:
    records = make_records(params.writer_records)
    seconds: dict[str, list[float]] = {"plain": [], "partitioned": []}
    for repeat in range(params.repeats):
        for name in rotated(tuple(seconds), repeat):
            target = _fresh_schema(url, f"w_{name}")
            _open_close(target, partitioned=name == "partitioned")
            elapsed, stats = trio.run(_ours, target, records)
            if stats.written != len(records) or stats.failed:
                raise RuntimeError(
                    f"partitions: {name} wrote {stats.written}, failed {stats.failed}"
                )
            seconds[name].append(elapsed)
    rates = {name: len(records) / statistics.median(values) for name, values in seconds.items()}
    return {
        "records": len(records),
        "repeats": params.repeats,
        "seconds": seconds,
        "records_per_second": rates,
        "partitioned_vs_plain": rates["partitioned"] / rates["plain"],
    }


def run(params: PartitionParams, pg_url: str | None) -> dict[str, Any]:
    """Figure 9. Raises ``postgres.Unavailable`` when there is no server to run against."""
    with _server_url(pg_url) as url:
        now = time.time()
        started = time.perf_counter()
        plain, parts = _load(url, params.rows, now)
        load_seconds = time.perf_counter() - started
        cutoff = datetime.fromtimestamp(now - _KEEP_DAYS * _DAY, UTC)
        boundary = _boundary_rows(parts, cutoff)
        delete = _purge(plain, cutoff)
        drop = _purge(parts, cutoff)
        if (delete["deleted"], delete["rows_after"]) != (drop["deleted"], drop["rows_after"]):
            raise RuntimeError(f"partitions: DELETE purge {delete}, partition purge {drop}")
        writer = _writer(url, params)
        with contextlib.suppress(Exception):  # the database is dropped anyway
            _fresh_schema(url, "plain")
    ratio = delete["seconds"] / drop["seconds"]
    return {
        "rows": params.rows,
        "interval": _INTERVAL,
        "keep_days": _KEEP_DAYS,
        "load_seconds": load_seconds,
        "delete_purge": delete,
        "partition_purge": {**drop, "deleted_in_boundary_partition": boundary},
        "ratios": {"delete_vs_partition_drop": ratio},
        "goal": {"delete_vs_partition_drop": _GOAL, "held": ratio >= _GOAL},
        "writer": writer,
    }


def table(results: dict[str, Any]) -> str:
    """Figure 9 as lines of text."""
    delete, drop, writer = results["delete_purge"], results["partition_purge"], results["writer"]
    rates = writer["records_per_second"]
    ratio = results["ratios"]["delete_vs_partition_drop"]
    return "\n".join(
        [
            f"Figure 9: PostgreSQL retention, {results['rows']:,} rows over 90 days;"
            f" the {delete['deleted']:,} older than {results['keep_days']} days purged",
            f"  DELETE purge, plain table                 {delete['seconds']:8.2f} s",
            f"  partition purge, partitioned by {results['interval']:<9} {drop['seconds']:8.2f} s"
            f"   ({drop['partitions_dropped']} partitions dropped,"
            f" {drop['deleted_in_boundary_partition']:,} rows deleted in the boundary one)",
            f"  DELETE / partition purge: {ratio:.1f}x (goal >= {_GOAL:g}x:"
            f" {'held' if results['goal']['held'] else 'missed'})",
            f"  writer, {writer['records']:,} records: partitioned {rates['partitioned']:,.0f}/s,"
            f" plain {rates['plain']:,.0f}/s: {writer['partitioned_vs_plain']:.2f}x"
            f" (median of {writer['repeats']})",
        ]
    )
