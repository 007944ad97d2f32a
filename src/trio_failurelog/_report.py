"""The summary as tables of text cells, shared by the terminal report and the HTML page.

Pure computation: never blocks.
"""

from __future__ import annotations

from ._summary import FailureSummary

__all__ = [
    "duration_text",
    "filters_text",
    "latency_rows",
    "plural",
    "range_text",
    "repeated_rows",
    "threshold_rows",
    "total_text",
    "type_strategy_rows",
]

Table = tuple[list[str], list[list[str]]]


_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def duration_text(seconds: int) -> str:
    """A bucket width in the largest unit that divides it: ``21600`` is ``6 h``,
    ``90`` is ``90 s``, ``1209600`` is ``2 w``."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:,} {unit}"
    return f"{seconds:,} s"


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def type_strategy_rows(summary: FailureSummary) -> Table:
    """The "by type and strategy" table: headers and rows (strategies x types)."""
    types = list(summary.by_type)
    cells = {(item.strategy, item.failure_type): item.count for item in summary.counts}
    rows = [
        [strategy, *(f"{cells.get((strategy, t), 0):,}" for t in types), f"{total:,}"]
        for strategy, total in summary.by_strategy.items()
    ]
    if rows:
        rows.append(["all", *(f"{summary.by_type[t]:,}" for t in types), f"{summary.total:,}"])
    return ["strategy", *types, "total"], rows


def latency_rows(summary: FailureSummary) -> Table:
    """The latency table: headers and one row per strategy."""
    return ["strategy", "failures", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"], [
        [
            item.strategy,
            f"{item.count:,}",
            f"{item.p50_ms:,}",
            f"{item.p95_ms:,}",
            f"{item.p99_ms:,}",
            f"{item.max_ms:,}",
            f"{item.mean_ms:,.1f}",
        ]
        for item in summary.latency
    ]


def threshold_rows(summary: FailureSummary) -> Table:
    """The low-confidence table: scores against threshold and the what-ifs."""
    return [
        "strategy",
        "failures",
        "threshold",
        "score min / mean / max",
        "mean gap",
        "recovered at a lower threshold",
    ], [
        [
            item.strategy,
            f"{item.failures:,}",
            _score(item.threshold),
            f"{_score(item.score_min)} / {_score(item.score_mean)} / {_score(item.score_max)}",
            _score(item.mean_gap),
            "; ".join(f"{w.threshold:g}: {w.recovered:,} ({w.share:.0%})" for w in item.what_if)
            or "-",
        ]
        for item in summary.low_confidence
    ]


def repeated_rows(summary: FailureSummary) -> Table:
    """The repeated-queries table."""
    return ["query (normalised)", "failures", "types", "strategies", "last seen (UTC)"], [
        [
            item.query,
            f"{item.count:,}",
            ", ".join(item.failure_types),
            ", ".join(item.strategies),
            item.last_at,
        ]
        for item in summary.repeated_queries
    ]


def range_text(summary: FailureSummary) -> str:
    """The time range in words, for headings."""
    since = summary.since or summary.first_at
    until = summary.until or ("now" if summary.since else summary.last_at)
    if since is None and until is None:
        return "all time"
    if since is None:
        return f"everything before {until} UTC"
    return f"{since} to {until} UTC"


def filters_text(summary: FailureSummary) -> str | None:
    """The filters other than time in words (``None`` when there are none)."""
    parts: list[str] = []
    if summary.failure_types is not None:
        parts.append("type " + ", ".join(summary.failure_types))
    if summary.strategies is not None:
        parts.append("strategy " + ", ".join(repr(name) for name in summary.strategies))
    if summary.conversation_id is not None:
        parts.append(f"conversation {summary.conversation_id}")
    return "; ".join(parts) if parts else None


def plural(count: int, noun: str) -> str:
    """``1 failure``, ``2 failures``, ``1,000 rows``: a count and its noun."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def total_text(summary: FailureSummary) -> str:
    """How many failures matched, by type; when none did, whether the database is
    empty or the filters matched nothing (never the one for the other)."""
    if summary.total:
        by_type = ", ".join(f"{name} {count:,}" for name, count in summary.by_type.items())
        return f"{plural(summary.total, 'failure')} ({by_type})"
    if summary.table_total == 0:
        return "0 failures: the database holds no failures at all"
    return f"0 failures match (the database holds {summary.table_total:,} in all)"
