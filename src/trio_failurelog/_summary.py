"""What the failures say, in numbers: the summary behind ``report`` and the HTML page.

The reference design records failures for closed-loop tuning of recall
parameters; this module computes what that tuning needs: where and when
recalls fail, how slow they are, how far under the confidence threshold the
near misses scored and what a lower threshold would have recovered, and which
queries keep failing. All of it is aggregate SQL, so memory does not grow with
the number of rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from ._protocols import Dialect, Execute
from ._readsql import Filters, where_clause
from ._record import RetrievalFailureType
from ._sqlite import SQLITE  # the default dialect of summarise()
from ._table import TABLE
from ._timetext import epoch_seconds, text_at

__all__ = [
    "FailureSummary",
    "LatencyStats",
    "RepeatedQuery",
    "ThresholdStats",
    "TimeBucket",
    "TypeStrategyCount",
    "WhatIf",
    "summarise",
]

#: Bucket sizes (seconds) the timeline chooses from, smallest first.
_BUCKET_SIZES: Final = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000,
)  # fmt: skip
_TYPE_ORDER: Final = tuple(member.value for member in RetrievalFailureType)
_LOW_CONFIDENCE: Final = RetrievalFailureType.LOW_CONFIDENCE.value
#: Histogram bins of the low-confidence scores, about.
_SCORE_BINS: Final = 20
#: Candidate thresholds tried below each strategy's usual one, by default: at
#: least this many, and as many as reach its lowest score, up to _MAX_CANDIDATES.
_DEFAULT_CANDIDATES: Final = 4
_MAX_CANDIDATES: Final = 10
# Added before truncating a score's bin index, so that a score on an edge lands
# in the bin above it despite the rounding of (score - start) / width.
_EDGE_EPSILON: Final = 1e-9
#: The most what-if thresholds counted by one statement (SQLite returns at most
#: 2,000 columns; distinct thresholds are few unless strategies are many).
_MAX_SUMS: Final = 500


@dataclass(frozen=True, slots=True)
class TypeStrategyCount:
    """How many failures of one type one strategy had."""

    failure_type: str
    strategy: str
    count: int


@dataclass(frozen=True, slots=True)
class TimeBucket:
    """Failures in ``[start, start + bucket_seconds)``, by failure type (zeros included)."""

    start: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        """All failures in the bucket."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """The latency of one strategy's failed recalls, in milliseconds.

    Percentiles are nearest-rank: ``p95_ms`` is the smallest latency that at
    least 95 % of the failures did not exceed. ``histogram[i]`` counts the
    latencies in ``(latency_bounds[i-1], latency_bounds[i]]`` of the summary
    (the first bin starts at 0).
    """

    strategy: str
    count: int
    mean_ms: float
    p50_ms: int
    p95_ms: int
    p99_ms: int
    max_ms: int
    histogram: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Had the threshold been ``threshold``, ``recovered`` low-confidence failures
    (``share`` of them) would have scored at or above it and counted as hits."""

    threshold: float
    recovered: int
    share: float


@dataclass(frozen=True, slots=True)
class ThresholdStats:
    """One strategy's ``low_confidence`` failures: their scores against the threshold.

    ``threshold`` is the strategy's most common ``confidence_threshold``;
    ``thresholds`` lists the distinct ones seen (most common first, at most
    five). ``mean_gap`` is the mean of ``confidence_threshold - top_score``.
    ``histogram[i]`` counts the scores in ``[score_edges[i], score_edges[i+1])``
    of the summary (the last bin includes its upper edge). ``scored`` is how
    many had a ``top_score`` at all.
    """

    strategy: str
    failures: int
    scored: int
    threshold: float | None
    thresholds: tuple[float, ...]
    score_min: float | None
    score_mean: float | None
    score_max: float | None
    mean_gap: float | None
    histogram: tuple[int, ...]
    what_if: tuple[WhatIf, ...]


@dataclass(frozen=True, slots=True)
class RepeatedQuery:
    """A failing query seen ``count`` times (compared case-folded, spaces collapsed)."""

    query: str
    count: int
    last_at: str
    failure_types: tuple[str, ...]
    strategies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FailureSummary:
    """The failures of a time range, summarised for tuning retrieval.

    Attributes:
      since, until: The range asked for, as ``created_at`` text (``None``: open).
      failure_types, strategies, conversation_id: The other filters asked for
        (``None``: not filtered).
      first_at, last_at: The first and last failure in it (``None`` when empty).
      total: How many failures matched.
      table_total: How many failures the table holds, matching or not (equal
        to ``total`` without filters): a filter that matches nothing is not an
        empty database.
      counts: Failures per (type, strategy), largest first.
      bucket_seconds: The width of a timeline bucket.
      timeline: Failures per bucket and type, every bucket from the first
        failure's to the last one's, in order.
      latency_bounds: Upper bounds (ms) of the latency histogram's bins.
      latency: Latency per strategy, most failures first.
      score_edges: Edges of the low-confidence score histogram's bins.
      low_confidence: Scores against threshold and what-ifs, per strategy.
      repeated_queries: The failing queries seen most often (at least twice).

    Plain data: :meth:`to_dict` gives its JSON form.
    """

    since: str | None
    until: str | None
    failure_types: tuple[str, ...] | None
    strategies: tuple[str, ...] | None
    conversation_id: int | None
    first_at: str | None
    last_at: str | None
    total: int
    table_total: int
    counts: tuple[TypeStrategyCount, ...]
    bucket_seconds: int
    timeline: tuple[TimeBucket, ...]
    latency_bounds: tuple[int, ...]
    latency: tuple[LatencyStats, ...]
    score_edges: tuple[float, ...]
    low_confidence: tuple[ThresholdStats, ...]
    repeated_queries: tuple[RepeatedQuery, ...]

    @property
    def by_type(self) -> dict[str, int]:
        """Failures per type, in the order of :class:`RetrievalFailureType`."""
        totals: dict[str, int] = {}
        for item in self.counts:
            totals[item.failure_type] = totals.get(item.failure_type, 0) + item.count
        return {name: totals[name] for name in _ordered_types(totals)}

    @property
    def by_strategy(self) -> dict[str, int]:
        """Failures per strategy, most first."""
        totals: dict[str, int] = {}
        for item in self.counts:
            totals[item.strategy] = totals.get(item.strategy, 0) + item.count
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready dicts, lists, strings and numbers."""
        data = asdict(self)
        data["by_type"] = self.by_type
        data["by_strategy"] = self.by_strategy
        return data


def _ordered_types(types: Sequence[str] | dict[str, int]) -> list[str]:
    known = [name for name in _TYPE_ORDER if name in types]
    return known + sorted(name for name in types if name not in _TYPE_ORDER)


def nice_step(raw: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is at least ``raw`` (> 0)."""
    exponent = math.floor(math.log10(raw))
    base = 10.0**exponent
    for factor in (1, 2, 5, 10):
        if raw <= factor * base * (1 + 1e-12):
            return round(factor * base, 12)
    return round(10 * base, 12)  # pragma: no cover - the loop always returns


def percentile(histogram: Sequence[tuple[int, int]], total: int, percent: float) -> int:
    """Nearest-rank percentile from sorted ``(value, count)`` pairs totalling ``total``."""
    rank = max(1, math.ceil(percent / 100 * total))
    seen = 0
    for value, count in histogram:
        seen += count
        if seen >= rank:
            return value
    return histogram[-1][0]


def latency_bounds(max_ms: int) -> tuple[int, ...]:
    """Bin upper bounds 1, 2, 5, 10, 20, 50... ms, up to the first covering ``max_ms``."""
    bounds = [1]
    while bounds[-1] < max_ms:
        last = bounds[-1]
        bounds.append(last * 5 // 2 if str(last).startswith("2") else last * 2)
    return tuple(bounds)


def _bucket_size(span: float, max_buckets: int) -> int:
    for size in _BUCKET_SIZES:
        if math.floor(span / size) + 1 <= max_buckets:
            return size
    size = _BUCKET_SIZES[-1]
    while math.floor(span / size) + 1 > max_buckets:
        size *= 2
    return size


def summarise(
    execute: Execute,
    filters: Filters,
    *,
    candidates: tuple[float, ...] | None,
    top_queries: int,
    max_buckets: int,
    now: float,
    dialect: Dialect = SQLITE,
) -> FailureSummary:
    """Compute a :class:`FailureSummary` with ``execute`` (which blocks on the database).

    ``now`` (POSIX seconds) ends the timeline of a range with no ``until``.
    ``dialect`` writes what the database's SQL spells its own way. Text is
    ordered here, in Python (by code point, as SQLite's BINARY collation
    does), never by the database's collation, which differs between servers.
    """
    # A bounded window is read through the created_at index: the other indexed
    # columns are written +column (in the filters, the GROUP BYs and the
    # low-confidence conditions), or SQLite walks the failure_type or strategy
    # index over the whole table and checks created_at row by row.
    steer = dialect.index_hints
    plus = "+" if steer else ""
    conditions, params = filters.where(index_on_time=steer)
    where = where_clause(conditions)

    table_total: int | None = None
    if filters.narrowed:
        table_total = int(execute(f"SELECT count(*) FROM {TABLE}", ())[0][0])
    # Two statements, each one seek of the created_at index: together, SQLite
    # reads every row of the window for them (no min/max optimisation).
    first_at = execute(f"SELECT min(created_at) FROM {TABLE}{where}", params)[0][0]
    last_at = execute(f"SELECT max(created_at) FROM {TABLE}{where}", params)[0][0]
    # The timeline's statement gives the counts by type and strategy too (one
    # pass instead of two); without a timeline, they have a statement of their own.
    span = _range(filters, first_at, last_at, max_buckets, now)
    bucket_seconds = _BUCKET_SIZES[0] if span is None else span[2]
    by_cell = None if span is None else _timeline_counts(execute, where, params, span[2], dialect)
    if by_cell is None:
        pairs = execute(
            f"SELECT failure_type, retrieval_strategy, count(*) FROM {TABLE}{where} "
            f"GROUP BY {plus}failure_type, {plus}retrieval_strategy",
            params,
        )
        by_cell = [(None, failure_type, strategy, count) for failure_type, strategy, count in pairs]
    totals: dict[tuple[str, str], int] = {}
    for _bucket, failure_type, strategy, count in by_cell:
        key = (failure_type, strategy)
        totals[key] = totals.get(key, 0) + int(count)
    counts = tuple(
        sorted(
            (
                TypeStrategyCount(failure_type, strategy, count)
                for (failure_type, strategy), count in totals.items()
            ),
            key=lambda item: (-item.count, item.failure_type, item.strategy),
        )
    )
    total = sum(item.count for item in counts)
    if table_total is None:
        table_total = total
    types = _ordered_types({item.failure_type: 0 for item in counts})
    timeline = () if span is None else _timeline_buckets(by_cell, filters, span, types)
    bounds, latency = _latency(execute, where, params, plus)
    edges, low_confidence = _low_confidence(
        execute,
        [*conditions, f"{_type_plus(filters, counts, total, table_total, plus)}failure_type = ?"],
        params,
        candidates,
        dialect,
        plus,
    )
    return FailureSummary(
        since=filters.since,
        until=filters.until,
        failure_types=filters.failure_types,
        strategies=filters.strategies,
        conversation_id=filters.conversation_id,
        first_at=first_at,
        last_at=last_at,
        total=total,
        table_total=table_total,
        counts=counts,
        bucket_seconds=bucket_seconds,
        timeline=timeline,
        latency_bounds=bounds,
        latency=latency,
        score_edges=edges,
        low_confidence=low_confidence,
        repeated_queries=_repeated(execute, where, params, top_queries, dialect),
    )


def _range(
    filters: Filters, first_at: str | None, last_at: str | None, max_buckets: int, now: float
) -> tuple[float, float, int] | None:
    """The timeline's start, end and bucket width, or None when it has none."""
    first = None if first_at is None else epoch_seconds(first_at)
    last = None if last_at is None else epoch_seconds(last_at)
    # The timeline spans the failures found, not the range asked for: 10 s of
    # failures in a --since 24h report are ten 1 s lines, not 23 empty hourly
    # ones and a full one. The range asked for is what is read without rows.
    start = first
    end = last
    if first is None or last is None:
        start = epoch_seconds(filters.since) if filters.since is not None else None
        if filters.until is not None:
            end = epoch_seconds(filters.until)
        elif filters.since is not None:
            end = now
    if start is None or end is None or end < start:
        return None
    return start, end, _bucket_size(end - start, max_buckets)


#: One cell of the timeline's statement: bucket index (None: no time), type,
#: strategy, count.
_Cell = tuple[int | None, str, str, int]


def _timeline_counts(
    execute: Execute, where: str, params: list[object], size: int, dialect: Dialect
) -> list[_Cell]:
    """The failures per (bucket of ``size`` seconds, type, strategy): one pass."""
    plus = "+" if dialect.index_hints else ""
    rows = execute(
        f"SELECT {dialect.bucket_index_sql(size)} AS bucket, failure_type, retrieval_strategy, "
        f"count(*) FROM {TABLE}{where} GROUP BY 1, {plus}failure_type, {plus}retrieval_strategy",
        params,
    )
    return [
        (None if bucket is None else int(bucket), failure_type, strategy, int(count))
        for bucket, failure_type, strategy, count in rows
    ]


def _timeline_buckets(
    cells: list[_Cell], filters: Filters, span: tuple[float, float, int], types: list[str]
) -> tuple[TimeBucket, ...]:
    start, end, size = span
    by_bucket: dict[int, dict[str, int]] = {}
    for bucket, failure_type, _strategy, count in cells:
        if bucket is not None:
            counts = by_bucket.setdefault(bucket, {})
            counts[failure_type] = counts.get(failure_type, 0) + count
    first_index = int(start // size)
    last_index = int(end // size)
    if filters.until is not None and end == last_index * size and last_index > first_index:
        last_index -= 1  # ``until`` is exclusive: no empty bucket starting at it
    if by_bucket:
        first_index = min(first_index, min(by_bucket))
        last_index = max(last_index, max(by_bucket))
    return tuple(
        TimeBucket(
            start=text_at(index * size),
            counts={name: by_bucket.get(index, {}).get(name, 0) for name in types},
        )
        for index in range(first_index, last_index + 1)
    )


def _latency(
    execute: Execute, where: str, params: list[object], plus: str
) -> tuple[tuple[int, ...], tuple[LatencyStats, ...]]:
    per_strategy: dict[str, list[tuple[int, int]]] = {}
    for strategy, latency_ms, count in execute(
        f"SELECT retrieval_strategy, latency_ms, count(*) FROM {TABLE}{where} "
        f"GROUP BY {plus}retrieval_strategy, latency_ms ORDER BY 1, 2",
        params,
    ):
        if isinstance(latency_ms, int | float):
            per_strategy.setdefault(strategy, []).append((int(latency_ms), count))
    if not per_strategy:
        return (), ()
    bounds = latency_bounds(max(pairs[-1][0] for pairs in per_strategy.values()))
    stats: list[LatencyStats] = []
    for strategy, pairs in per_strategy.items():
        n = sum(count for _value, count in pairs)
        histogram = [0] * len(bounds)
        index = 0
        for value, count in pairs:
            while index < len(bounds) - 1 and value > bounds[index]:
                index += 1
            histogram[index] += count
        stats.append(
            LatencyStats(
                strategy=strategy,
                count=n,
                mean_ms=sum(value * count for value, count in pairs) / n,
                p50_ms=percentile(pairs, n, 50),
                p95_ms=percentile(pairs, n, 95),
                p99_ms=percentile(pairs, n, 99),
                max_ms=pairs[-1][0],
                histogram=tuple(histogram),
            )
        )
    stats.sort(key=lambda item: (-item.count, item.strategy))
    return bounds, tuple(stats)


def _score_edges(low: float, high: float) -> tuple[float, ...]:
    span = high - low
    step = nice_step(span / _SCORE_BINS if span > 0 else max(abs(low) / 10, 1e-3))
    start = math.floor(low / step + _EDGE_EPSILON) * step
    bins = max(1, math.ceil((high - start) / step - _EDGE_EPSILON))
    return tuple(round(start + i * step, 10) for i in range(bins + 1))


def _default_candidates(threshold: float, lowest: float | None) -> tuple[float, ...]:
    """Thresholds below ``threshold`` in even steps, reaching down to ``lowest`` (the
    lowest score seen), so that the last one recovers every scored failure: at
    least :data:`_DEFAULT_CANDIDATES`, at most :data:`_MAX_CANDIDATES` (the step
    grows to fit). Steps of 0.05 for a threshold in (0, 1]."""
    unit = 0.05 if 0 < threshold <= 1 else nice_step(max(abs(threshold), 1e-9) / 20)
    span = threshold - lowest if lowest is not None and lowest < threshold else 0.0
    step = unit if span <= unit * _MAX_CANDIDATES else nice_step(span / _MAX_CANDIDATES)
    count = min(_MAX_CANDIDATES, max(_DEFAULT_CANDIDATES, math.ceil(span / step - 1e-9)))
    values = (round(threshold - k * step, 10) for k in range(1, count + 1))
    return tuple(v for v in values if not (0 < threshold <= 1 and v < 0))


def _type_plus(
    filters: Filters,
    counts: tuple[TypeStrategyCount, ...],
    total: int,
    table_total: int,
    plus: str,
) -> str:
    """How to write the low-confidence statements' ``failure_type = ?``: ``+``
    (read the window through the created_at index) or plainly (read the
    table's low-confidence rows through the failure_type index), whichever
    reads fewer rows, the table's low-confidence rows estimated from the
    window's share of them (counting them would walk the index). Without a
    time bound, always plainly. The plan only: the answers are the same."""
    if not plus or (filters.since is None and filters.until is None):
        return ""
    in_window = sum(item.count for item in counts if item.failure_type == _LOW_CONFIDENCE)
    if not in_window:
        return plus  # nothing to read either way: the window is the shorter walk
    return "" if table_total * in_window < total * total else plus


def _low_confidence(
    execute: Execute,
    conditions: list[str],
    params: list[object],
    candidates: tuple[float, ...] | None,
    dialect: Dialect,
    plus: str,
) -> tuple[tuple[float, ...], tuple[ThresholdStats, ...]]:
    where = where_clause(conditions)  # the last one is on failure_type
    base = [*params, _LOW_CONFIDENCE]
    gap = f"{dialect.float_sql('confidence_threshold')} - {dialect.float_sql('top_score')}"
    rows = sorted(
        execute(
            "SELECT retrieval_strategy, count(*), count(top_score), min(top_score), "
            f"avg({dialect.float_sql('top_score')}), max(top_score), avg({gap}) "
            f"FROM {TABLE}{where} GROUP BY {plus}retrieval_strategy",
            base,
        ),
        key=lambda row: (-row[1], row[0]),
    )
    if not rows:
        return (), ()
    thresholds: dict[str, list[float]] = {}
    for strategy, threshold, _count in execute(
        f"SELECT retrieval_strategy, confidence_threshold, count(*) FROM {TABLE}{where} "
        f"AND confidence_threshold IS NOT NULL GROUP BY {plus}retrieval_strategy, 2 "
        "ORDER BY 1, 3 DESC, 2 DESC",
        base,
    ):
        thresholds.setdefault(strategy, []).append(float(threshold))
    tried_by_strategy: dict[str, tuple[float, ...]] = {}
    for strategy, _failures, n_scored, score_min, *_rest in rows:
        usual = thresholds.get(strategy, [])
        tried = candidates
        if tried is None:
            tried = () if not usual else _default_candidates(usual[0], score_min)
        tried = tuple(sorted(set(tried), reverse=True))
        if tried and n_scored:
            tried_by_strategy[strategy] = tried
    scored = [row for row in rows if row[2]]
    edges: tuple[float, ...] = ()
    histograms: dict[str, list[int]] = {}
    recovered: dict[str, tuple[int, ...]] = {}
    if scored:
        low = min(float(row[3]) for row in scored)
        high = max(
            [float(row[5]) for row in scored] + [values[0] for values in thresholds.values()]
        )
        edges = _score_edges(low, high)
        bins = len(edges) - 1
        # The what-ifs ride on the histogram's pass (a score at or above a
        # threshold is a scored row): per bin, then summed here, exactly.
        histogram_sql = (
            f"SELECT retrieval_strategy, {dialect.score_bin_sql()}, count(*){{sums}} "
            f"FROM {TABLE}{where} AND top_score IS NOT NULL GROUP BY {plus}retrieval_strategy, 2"
        )
        bin_params: list[object] = [edges[0], edges[1] - edges[0], _EDGE_EPSILON]

        def histogram_pass(sums: str, sum_params: list[object]) -> list[Any]:
            rows = execute(histogram_sql.format(sums=sums), [*bin_params, *sum_params, *base])
            for strategy, index, count, *_counts in rows:
                histogram = histograms.setdefault(strategy, [0] * bins)
                histogram[min(max(int(index), 0), bins - 1)] += count
            return [(strategy, *counts) for strategy, _index, _count, *counts in rows]

        recovered = _recovered(histogram_pass, execute, where, base, tried_by_strategy, plus)
    stats: list[ThresholdStats] = []
    for strategy, failures, n_scored, score_min, score_mean, score_max, gap in rows:
        usual = thresholds.get(strategy, [])
        threshold = usual[0] if usual else None
        what_if = tuple(
            WhatIf(value, count, count / failures)
            for value, count in zip(
                tried_by_strategy.get(strategy, ()), recovered.get(strategy, ()), strict=True
            )
        )
        stats.append(
            ThresholdStats(
                strategy=strategy,
                failures=failures,
                scored=n_scored,
                threshold=threshold,
                thresholds=tuple(usual[:5]),
                score_min=score_min,
                score_mean=score_mean,
                score_max=score_max,
                mean_gap=gap,
                histogram=tuple(histograms.get(strategy, [0] * (max(len(edges) - 1, 0)))),
                what_if=what_if,
            )
        )
    return edges, tuple(stats)


def _recovered(
    first_pass: Callable[[str, list[object]], list[Any]],
    execute: Execute,
    where: str,
    params: list[object],
    tried: dict[str, tuple[float, ...]],
    plus: str,
) -> dict[str, tuple[int, ...]]:
    """For each strategy, how many of its rows scored at or above each of its
    ``tried`` thresholds. The first :data:`_MAX_SUMS` distinct thresholds are
    counted by ``first_pass(sums, their_params)``, a statement grouped by
    strategy and more (the histogram's; its rows are ``(strategy, *counts)``,
    summed here); any further ones by one more statement each."""
    values = sorted({value for values in tried.values() for value in values}, reverse=True)
    found: dict[str, dict[float, int]] = {}
    for first in range(0, max(len(values), 1), _MAX_SUMS):
        chunk = values[first : first + _MAX_SUMS]
        # Compared as the column's type: REAL is float4 on PostgreSQL, where
        # 0.65 as a float8 is above the float4 0.65 stored (a no-op in SQLite).
        sums = "".join(", count(CASE WHEN top_score >= CAST(? AS REAL) THEN 1 END)" for _ in chunk)
        if first == 0:
            rows = first_pass(sums, list(chunk))
        else:
            rows = execute(
                f"SELECT retrieval_strategy{sums} FROM {TABLE}{where} "
                f"GROUP BY {plus}retrieval_strategy",
                [*chunk, *params],
            )
        for strategy, *counts in rows:
            totals = found.setdefault(strategy, {})
            for value, count in zip(chunk, counts, strict=True):
                totals[value] = totals.get(value, 0) + int(count)
    return {
        strategy: tuple(found.get(strategy, {}).get(value, 0) for value in values_tried)
        for strategy, values_tried in tried.items()
    }


def _repeated(
    execute: Execute, where: str, params: list[object], top: int, dialect: Dialect
) -> tuple[RepeatedQuery, ...]:
    if top == 0:
        return ()
    return tuple(
        RepeatedQuery(
            query=query,
            count=int(count),
            last_at=last_at,
            failure_types=tuple(_ordered_types(types)),
            strategies=tuple(sorted(strategies)),
        )
        for query, count, last_at, types, strategies in dialect.repeated_queries(
            execute, where, params, top
        )
    )
