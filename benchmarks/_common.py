"""What every benchmark shares: sizes, records, rows, databases and statistics."""

from __future__ import annotations

import gc
import inspect
import math
import sqlite3
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Final, TypeVar

from trio_failurelog import FailureTypeName, RetrievalFailureLogger, RetrievalFailureRecord
from trio_failurelog._database import QueuedRecord
from trio_failurelog._sqlite import SQLiteStore
from trio_failurelog._sqlite._schema import INSERT_SQL
from trio_failurelog._table import TABLE

T = TypeVar("T")

__all__ = [
    "DEFAULTS",
    "INSERT_SQL",
    "Arguments",
    "Params",
    "connect",
    "construct_each",
    "count_rows",
    "frozen_heap",
    "make_arguments",
    "make_records",
    "median",
    "percentile",
    "prepare_database",
    "rotated",
    "row_builder",
]


def _library_defaults() -> dict[str, Any]:
    """The logger's keyword defaults, read from its signature so they never drift."""
    parameters = inspect.signature(RetrievalFailureLogger).parameters
    return {
        name: parameters[name].default
        for name in ("capacity", "batch_size", "flush_interval", "synchronous")
    }


#: The library's defaults: ``capacity``, ``batch_size``, ``flush_interval``, ``synchronous``.
DEFAULTS: Final = _library_defaults()


@dataclass(frozen=True)
class Params:
    """Every size of a run. :meth:`full` is ``nox -s bench``; :meth:`smoke` is the test."""

    smoke: bool
    # Figure 1: calls timed per measurement, and measurements per contender.
    hot_calls: int
    hot_repeats: int
    # Figures 2 and 3.
    throughput_records: int
    throughput_repeats: int
    throughput_slow_records: int  # for peers A and B
    probe_interval: float
    idle_probe_seconds: float
    # Figure 4.
    memory_attempts: int
    memory_capacity: int
    memory_yield_every: int
    # Figure 5.
    latency_batch_sizes: tuple[int, ...]
    latency_flush_intervals: tuple[float, ...]
    latency_rates: tuple[int, ...]
    latency_seconds: float
    latency_repeats: int
    # The library's defaults, used wherever a figure does not vary them.
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))

    @classmethod
    def full(cls) -> Params:
        return cls(
            smoke=False,
            hot_calls=100_000,
            hot_repeats=9,
            throughput_records=200_000,
            throughput_repeats=5,
            throughput_slow_records=50_000,
            probe_interval=0.001,
            idle_probe_seconds=2.0,
            memory_attempts=1_000_000,
            memory_capacity=1024,
            memory_yield_every=100,
            latency_batch_sizes=(64, 512, 4096),
            latency_flush_intervals=(0.05, 0.2, 0.5),
            latency_rates=(1_000, 10_000, 50_000),
            latency_seconds=2.0,
            latency_repeats=3,
        )

    @classmethod
    def smoke_sized(cls) -> Params:
        """Tiny sizes: every code path runs, in a few seconds; no figure means anything."""
        return replace(
            cls.full(),
            smoke=True,
            hot_calls=2_000,
            hot_repeats=2,
            throughput_records=2_000,
            throughput_repeats=1,
            throughput_slow_records=500,
            idle_probe_seconds=0.1,
            memory_attempts=20_000,
            latency_batch_sizes=(64, 512),
            latency_flush_intervals=(0.05,),
            latency_rates=(1_000, 10_000),
            latency_seconds=0.1,
            latency_repeats=1,
        )

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- records

#: The arguments of one record, in the order the timed loops unpack them.
Arguments = tuple[
    FailureTypeName,
    str,
    str,
    int,
    int,
    float | None,
    float | None,
    int,
    int,
    tuple[str, ...] | None,
    str | None,
]

_STRATEGIES: Final = ("semantic", "keyword", "graph", "hybrid")
_FAILURE_TYPE_NAMES: Final[tuple[FailureTypeName, ...]] = (
    "no_hit",
    "low_confidence",
    "timeout",
    "error",
)


def make_arguments(count: int) -> list[Arguments]:
    """Deterministic, varied arguments: the four failure types, with and without
    scores, edge types and error text, and now and then a non-ASCII query."""
    arguments: list[Arguments] = []
    for i in range(count):
        kind = i % 4
        strategy = _STRATEGIES[(i // 4) % 4]
        topic = "café menu" if i % 16 == 0 else f"project {i % 997}"
        query = f"what did the user decide about {topic} in the meeting of week {i % 52}?"
        arguments.append(
            (
                _FAILURE_TYPE_NAMES[kind],
                strategy,
                query,
                i // 10,  # conversation_id
                i % 10,  # turn_index
                0.31 + (i % 7) / 100 if kind == 1 else None,  # top_score
                0.5 if kind == 1 else None,  # confidence_threshold
                5 if kind == 1 else 0,  # result_count
                2000 if kind == 2 else 12 + i % 50,  # latency_ms
                ("cites", "mentions") if strategy == "graph" else None,
                "ConnectionError: vector store unavailable" if kind == 3 else None,
            )
        )
    return arguments


def construct_each(
    arguments: Iterable[Arguments], sink: Callable[[RetrievalFailureRecord], object]
) -> None:
    """Build a validated record from each of ``arguments`` and hand it to ``sink``.

    The loop that figure 1 times: the keyword call a recall path would write.
    """
    for (
        failure_type,
        strategy,
        query,
        conversation_id,
        turn_index,
        top_score,
        threshold,
        result_count,
        latency_ms,
        edge_types,
        error_context,
    ) in arguments:
        sink(
            RetrievalFailureRecord(
                failure_type,
                strategy,
                query,
                conversation_id=conversation_id,
                turn_index=turn_index,
                top_score=top_score,
                confidence_threshold=threshold,
                result_count=result_count,
                latency_ms=latency_ms,
                edge_types=edge_types,
                error_context=error_context,
            )
        )


def make_records(count: int) -> list[RetrievalFailureRecord]:
    """``count`` validated records built from :func:`make_arguments`."""
    records: list[RetrievalFailureRecord] = []
    construct_each(make_arguments(count), records.append)
    return records


def row_builder() -> Callable[[QueuedRecord], tuple[object, ...]]:
    """The library's own conversion of ``(record, time.time())`` into a row.

    The raw limit and the peers use it, so that every contender writes the same
    bytes, built as cheaply as the library builds them.
    """
    conn = sqlite3.connect(":memory:")
    store = SQLiteStore(conn, "rows")  # only for its row conversion, which needs no connection
    conn.close()
    return store._row


# ---------------------------------------------------------------------- databases


def prepare_database(path: Path) -> None:
    """Create ``path`` exactly as the library does: its table, indexes and WAL."""
    SQLiteStore.open(path, busy_timeout=1.0, synchronous=DEFAULTS["synchronous"]).close()


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a prepared database with the library's pragmas, in autocommit
    mode: each statement is its own transaction unless ``BEGIN`` is issued."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    check_pragmas(conn)
    return conn


def check_pragmas(conn: sqlite3.Connection) -> None:
    """Set the library's ``synchronous`` and make sure WAL is on (it persists in the file)."""
    conn.execute(f"PRAGMA synchronous = {DEFAULTS['synchronous']}")
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        raise RuntimeError(f"benchmark database is not in WAL mode but {mode!r}")


def count_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
    finally:
        conn.close()


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep what exists now (the harness's prebuilt records and rows) out of the
    garbage collector's sight, so that no contender pays for traversing it again
    and again; the collector still runs on what the contenders allocate."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def rotated(items: Sequence[T], repeat: int) -> Iterator[T]:
    """``items`` starting at ``repeat`` (mod len): each contender runs first in turn,
    so that slow drift of a noisy machine does not always favour the same one."""
    start = repeat % len(items)
    yield from items[start:]
    yield from items[:start]
