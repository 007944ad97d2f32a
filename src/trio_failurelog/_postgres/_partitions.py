"""Time partitions of the PostgreSQL table: read from the catalog, made ahead, old ones dropped.

A table partitioned by range of ``created_at`` may come from the library
(``partition_interval``), from the user or from pg_partman: everything here
reads the partitions from the catalog and never assumes who made them. Needs
the ``postgres`` extra; every function taking a connection blocks, runs its
own transactions (the connection must be in autocommit mode) and raises
psycopg's errors unless it says otherwise.

Retention drops a partition whole when all of it is older than the cutoff:
``DETACH PARTITION`` (plain, not ``CONCURRENTLY``) and ``DROP TABLE`` in one
short transaction per partition, under the purge's advisory lock and a short
``lock_timeout``; rows of the boundary partition (and of a default partition)
are left to the chunked ``DELETE``. Why not ``CONCURRENTLY``: it cannot run in
a transaction block (so detaching and dropping are no longer one atomic
step, and an interrupted detach leaves the partition "pending" until someone
runs ``FINALIZE``), PostgreSQL refuses it while the table has a default
partition, and it waits, on the purging connection (a logger's writer
thread), for every transaction that can see the partition, long reports
included. The plain ``DETACH`` takes ``ACCESS EXCLUSIVE`` on the table for
the few milliseconds of the catalog change; while it waits for that lock,
writers queue behind it, so it gives up after ``lock_timeout`` and the rows
go by ``DELETE`` that round (docs/fleets.md).
"""

from __future__ import annotations

import calendar
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg
import psycopg.errors
from psycopg import sql

from .._database import PartitionInterval
from .._table import TABLE
from ._schema import ADVISORY_CLASS, PURGE_LOCK, SCHEMA_LOCK

__all__ = [
    "AHEAD",
    "DROPS_PER_TRANSACTION",
    "Layout",
    "Partition",
    "ahead_span",
    "drop_old_partitions",
    "make_partitions",
    "missing_ranges",
    "read_layout",
    "slot",
]

log = logging.getLogger("trio_failurelog")

#: How many intervals past the current one are made ahead: about a week or more.
AHEAD: Final[dict[PartitionInterval, int]] = {"day": 7, "week": 2, "month": 1}

#: How long a manual purge waits for another purger's advisory lock.
_PURGE_LOCK_WAIT: Final = "30s"
#: The most partitions dropped in one transaction. Its COMMIT must reach the
#: disk (a transaction that drops files is always committed synchronously:
#: about 20 ms here, ten times the detach and drop of a partition), while the
#: table stays locked from the first detach until then: a backlog goes in a
#: few such transactions, none holding writers up for long.
DROPS_PER_TRANSACTION: Final = 16

# Every partition of the table with its bounds as POSIX seconds. The bounds
# are read out of pg_get_expr's text ("FOR VALUES FROM ('...') TO ('...')",
# each value with its UTC offset, so the cast does not depend on the session's
# time zone); MINVALUE or MAXVALUE leave NULL, DEFAULT marks the default
# partition. A partition pending a detach (an interrupted DETACH CONCURRENTLY)
# takes no new rows and is left to whoever started that detach.
_PARTITIONS_QUERY: Final = r"""
SELECT c.oid::regclass::text, b.bound = 'DEFAULT',
       extract(epoch FROM substring(b.bound FROM $$FROM \('([^']*)'\)$$)::timestamptz),
       extract(epoch FROM substring(b.bound FROM $$TO \('([^']*)'\)$$)::timestamptz)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid,
     LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
WHERE i.inhparent = to_regclass(%s::text) AND NOT i.inhdetachpending
"""

# Is the table partitioned by range of created_at (and nothing else)?
_RANGE_BY_CREATED_AT: Final = """
SELECT p.partstrat = 'r' AND p.partnatts = 1 AND a.attname IS NOT DISTINCT FROM 'created_at'
FROM pg_partitioned_table p
LEFT JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
WHERE p.partrelid = to_regclass(%s::text)
"""


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: its name (as ``regclass`` text) and ``[lower, upper)`` in POSIX seconds."""

    name: str
    lower: float  # -inf: MINVALUE
    upper: float  # inf: MAXVALUE


@dataclass(frozen=True, slots=True)
class Layout:
    """The partitions of a table partitioned by range of ``created_at``."""

    partitions: tuple[Partition, ...]  # by lower bound
    default: str | None  # the default partition's name, if any

    def covering(self, moment: float) -> Partition | None:
        """The partition whose range holds ``moment``, if any (the default is not counted)."""
        for partition in self.partitions:
            if partition.lower <= moment < partition.upper:
                return partition
        return None


def read_layout(conn: psycopg.Connection[Any]) -> Layout | None:
    """The table's partitions, or ``None`` when it is not partitioned by range of
    ``created_at`` alone (a plain table, one partitioned otherwise, or none)."""
    row = conn.execute(_RANGE_BY_CREATED_AT, (TABLE,)).fetchone()
    if row is None or not row[0]:
        return None
    partitions: list[Partition] = []
    default: str | None = None
    for name, is_default, lower, upper in conn.execute(_PARTITIONS_QUERY, (TABLE,)):
        if is_default:
            default = name
            continue
        partitions.append(
            Partition(
                name,
                -math.inf if lower is None else float(lower),
                math.inf if upper is None else float(upper),
            )
        )
    partitions.sort(key=lambda partition: partition.lower)
    return Layout(tuple(partitions), default)


# ---------------------------------------------------------------- making partitions


def _utc(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def slot(moment: float, interval: PartitionInterval) -> tuple[float, float]:
    """The interval holding ``moment`` as ``[lower, upper)`` in POSIX seconds, in UTC:
    a day from midnight, an ISO week from Monday, a calendar month. Pure computation."""
    # The whole second, floored: every interval starts on one, and the
    # datetime of a float rounds to the microsecond (up, across midnight, for
    # 23:59:59.9999995).
    at = _utc(math.floor(moment))
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "day":
        lower, days = day, 1
    elif interval == "week":
        lower, days = day - timedelta(days=day.weekday()), 7
    else:
        lower = day.replace(day=1)
        days = calendar.monthrange(lower.year, lower.month)[1]
    try:
        upper = (lower + timedelta(days=days)).timestamp()
    except OverflowError:  # the last interval of year 9999
        upper = math.inf
    return lower.timestamp(), upper


def ahead_span(now: float, interval: PartitionInterval) -> tuple[float, float]:
    """What is made ahead at ``now``: from the start of ``now``'s interval to the
    end of the :data:`AHEAD`-th interval after it. Pure computation."""
    start, upper = slot(now, interval)
    for _ in range(AHEAD[interval]):
        if math.isinf(upper):
            break
        upper = slot(upper, interval)[1]
    return start, upper


def missing_ranges(
    layout: Layout, interval: PartitionInterval, spans: Iterable[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The partitions to make so that every moment of ``spans`` (each ``[start,
    end)``, or the one moment ``start`` when ``end <= start``) finds one.

    Each range lies within one interval (:func:`slot`) and fills only what no
    partition covers, so that it never overlaps a partition made by someone
    else (pg_partman's monthly ones under a logger's ``"day"``). Moments the
    default partition takes count as missing: a partition of their own keeps
    the default empty. Pure computation.
    """
    taken = [(partition.lower, partition.upper) for partition in layout.partitions]
    made: list[tuple[float, float]] = []
    for start, end in spans:
        moment = start
        while True:
            holder = next(((lo, hi) for lo, hi in taken if lo <= moment < hi), None)
            if holder is None:
                lower, upper = slot(moment, interval)
                lower = max([lower, *(hi for _lo, hi in taken if hi <= moment)])
                upper = min([upper, *(lo for lo, _hi in taken if lo > moment)])
                taken.append((lower, upper))
                made.append((lower, upper))
                holder = (lower, upper)
            moment = holder[1]
            if moment >= end:
                break
    return sorted(made)


def _bound(moment: float) -> sql.Composable:
    return sql.Literal("infinity" if math.isinf(moment) else _utc(moment).isoformat())


def _partition_name(lower: float) -> str:
    at = _utc(lower)
    whole_day = at == at.replace(hour=0, minute=0, second=0, microsecond=0)
    return f"{TABLE}_p{at:%Y%m%d}" + ("" if whole_day else f"_{at:%H%M%S}")


def make_partitions(
    conn: psycopg.Connection[Any],
    interval: PartitionInterval,
    spans: Iterable[tuple[float, float]],
    *,
    lock_timeout_ms: int,
) -> int:
    """Make the partitions :func:`missing_ranges` names; return how many were made.

    One transaction under the schema's advisory lock (processes of a fleet
    take turns, and each reads the partitions the others made; waited for
    without a limit, as in ``ensure_schema``). Each is
    created apart and then attached: ``ATTACH PARTITION`` takes only
    ``SHARE UPDATE EXCLUSIVE`` on the table, so writers and readers go on,
    where ``CREATE TABLE ... PARTITION OF`` would take ``ACCESS EXCLUSIVE``.
    Nothing is made when the table is not partitioned by ``created_at``, nor
    where a default partition already holds rows of the range (warned
    about; those rows stay there). Raises psycopg's errors: a lock held past
    ``lock_timeout_ms``, a missing privilege.
    """
    spans = list(spans)
    with conn.transaction():
        # Waited for as ensure_schema waits: another process holds it for
        # its own few catalog changes, each bounded by its lock_timeout.
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, SCHEMA_LOCK))
        conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        layout = read_layout(conn)
        if layout is None:
            return 0
        made = 0
        for lower, upper in missing_ranges(layout, interval, spans):
            name = sql.Identifier(_partition_name(lower))
            like = "CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            try:
                with conn.transaction():  # a savepoint: a refusal costs that partition only
                    conn.execute(sql.SQL(like).format(name, sql.Identifier(TABLE)))
                    conn.execute(
                        sql.SQL(
                            "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
                        ).format(sql.Identifier(TABLE), name, _bound(lower), _bound(upper))
                    )
            except psycopg.errors.CheckViolation:
                # The default partition holds rows of that range: they stay there.
                log.warning(
                    "trio_failurelog: partition %s not made: the default partition of %s"
                    " holds rows of its range",
                    _partition_name(lower),
                    TABLE,
                )
                continue
            made += 1
    if made:
        log.info("trio_failurelog: made %d partition(s) of %s", made, TABLE)
    return made


# ---------------------------------------------------------------- dropping old ones


def drop_old_partitions(
    conn: psycopg.Connection[Any], cutoff: float, *, wait: bool, lock_timeout_ms: int
) -> int:
    """Detach and drop every partition wholly older than ``cutoff`` (POSIX seconds);
    return how many rows they held.

    Up to :data:`DROPS_PER_TRANSACTION` partitions a transaction, under the
    purge's advisory lock: ``wait`` waits for another purger up to 30 s (the
    manual purge), otherwise a purger finding the lock taken drops nothing
    (a logger: the other one is purging). Inside: the old partitions are
    locked ``SHARE`` (only writers into those old partitions wait) and their
    rows counted, then each is detached and dropped; the ``ACCESS
    EXCLUSIVE`` lock that a detach takes on the table is waited for at most
    ``lock_timeout_ms``. When it is not had in time (a long report is
    reading), this stops and the caller's chunked ``DELETE`` does the
    round's work. The boundary partition and a default partition are never
    dropped: their old rows go by ``DELETE``. Raises psycopg's errors other
    than a lock timeout.
    """
    dropped = 0
    while True:
        try:
            with conn.transaction():
                if wait:
                    conn.execute(f"SET LOCAL lock_timeout = '{_PURGE_LOCK_WAIT}'")
                    conn.execute(
                        "SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK)
                    )
                else:
                    row = conn.execute(
                        "SELECT pg_try_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK)
                    ).fetchone()
                    if row is None or not row[0]:
                        return dropped
                layout = read_layout(conn)
                old = [] if layout is None else [p for p in layout.partitions if p.upper <= cutoff]
                old = old[:DROPS_PER_TRANSACTION]
                if not old:
                    return dropped
                conn.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                # regclass text: quoted and qualified as needed
                names = [sql.SQL(partition.name) for partition in old]
                rows = 0
                for name in names:  # counted before the table is locked
                    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(name))
                    counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(name))
                    row = counted.fetchone()
                    assert row is not None
                    rows += int(row[0])
                for name in names:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                            sql.Identifier(TABLE), name
                        )
                    )
                    conn.execute(sql.SQL("DROP TABLE {}").format(name))
        except psycopg.errors.LockNotAvailable:
            log.debug("trio_failurelog: a partition drop waited too long; DELETE this round")
            return dropped
        dropped += rows
        log.info("trio_failurelog: dropped %d partition(s) of %s (%d rows)", len(old), TABLE, rows)
        if len(old) < DROPS_PER_TRANSACTION:
            return dropped
