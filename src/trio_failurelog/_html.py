"""The HTML report: one self-contained file, charts drawn as inline SVG.

No script, no web font, no external stylesheet or image: the page renders the
same offline. Every piece of data that reaches the page (strategy names, query
texts, the database path) goes through :func:`html.escape`. Rendering is pure
computation: it never blocks and has no side effects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Final

from ._report import (
    duration_text,
    filters_text,
    latency_rows,
    range_text,
    repeated_rows,
    threshold_rows,
    total_text,
    type_strategy_rows,
)
from ._summary import FailureSummary, ThresholdStats, nice_step

__all__ = ["render_html"]

TYPE_COLOURS: Final = {
    "no_hit": "#4e79a7",
    "low_confidence": "#f28e2b",
    "timeout": "#9c6ade",
    "error": "#e15759",
}
_OTHER_TYPE_COLOUR: Final = "#9d9d9d"
# Strategies get colours no failure type has (nor the threshold lines): a
# colour means one thing on the whole page.
STRATEGY_COLOURS: Final = (
    "#59a14f", "#edc948", "#76b7b2", "#9c755f", "#ff9da7", "#499894", "#b6992d", "#86bcb6",
)  # fmt: skip
#: The dashed lines marking confidence thresholds.
THRESHOLD_COLOUR: Final = "#323f4b"

# Chart geometry (SVG user units; the SVG scales to the page width).
_WIDTH: Final = 880
_HEIGHT: Final = 260
_LEFT: Final = 56
_RIGHT: Final = 16
_TOP: Final = 30  # room for the y axis's title above the plot
_LABEL_ROW: Final = 16  # one row of threshold labels
_BOTTOM: Final = 44

_STYLE: Final = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: #1f2933;
  font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: #52606d; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 20px 0 8px; }
.card { background: #fff; border-radius: 8px; padding: 12px 16px; min-width: 140px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
.card .n { font-size: 22px; font-weight: 600; }
.card .l { color: #52606d; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
section { background: #fff; border-radius: 8px; padding: 18px 20px; margin-top: 18px;
  box-shadow: 0 1px 2px rgba(0,0,0,.08); }
section h2 { margin: 0 0 4px; font-size: 17px; }
section p.note { margin: 0 0 12px; color: #52606d; }
/* Charts keep a readable size: below it, they scroll sideways in their frame
   instead of shrinking their text away. */
.chart-frame { overflow-x: auto; }
svg.chart { width: 100%; min-width: 720px; height: auto; display: block; margin: 6px 0 10px; }
svg text { font-size: 12px; fill: #52606d; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 2px 0 6px; font-size: 13px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin-right: 5px; vertical-align: -1px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #e4e7eb;
  overflow-wrap: break-word; }
th { color: #52606d; font-weight: 600; background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.q { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  word-break: break-word; }
.empty { color: #7b8794; font-style: italic; }
footer { margin-top: 22px; color: #7b8794; font-size: 12px; }
.legend .threshold { display: inline-block; width: 18px; border-top: 2px dashed #323f4b;
  margin-right: 5px; vertical-align: 3px; }
@media (max-width: 640px) {
  main { padding: 16px 10px 32px; }
  section { padding: 14px 12px; }
  th, td { padding: 5px 6px; }
  /* Text may break anywhere here, so that every column fits; numbers never. */
  td:not(.num) { overflow-wrap: anywhere; }
  table { font-size: 12px; }
  .card { min-width: 0; flex: 1 1 40%; }
}
"""


def type_colour(failure_type: str) -> str:
    """The colour of a failure type in every chart."""
    return TYPE_COLOURS.get(failure_type, _OTHER_TYPE_COLOUR)


def strategy_colours(summary: FailureSummary) -> dict[str, str]:
    """One colour per strategy, the same in every chart (most failures first)."""
    return {
        strategy: STRATEGY_COLOURS[index % len(STRATEGY_COLOURS)]
        for index, strategy in enumerate(summary.by_strategy)
    }


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"


def _axis_ticks(top: float) -> list[float]:
    """Nice y-axis ticks from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    step = nice_step(top / 4)
    return [step * i for i in range(math.ceil(top / step - 1e-9) + 1)]


def _y_axis(ticks: Sequence[float], scale: float, suffix: str = "") -> list[str]:
    parts: list[str] = []
    for tick in ticks:
        y = _HEIGHT - _BOTTOM - tick * scale
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#e4e7eb"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(tick))}{suffix}</text>"
        )
    return parts


def _svg(name: str, label: str, body: Sequence[str], height: int = _HEIGHT) -> str:
    return (
        f'<div class="chart-frame"><svg class="chart" data-chart="{name}" '
        f'viewBox="0 0 {_WIDTH} {height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg></div>"
    )


def _y_title(text: str, top: int = _TOP) -> str:
    """The y axis's title, above its tick labels."""
    return f'<text x="4" y="{top - 12}" text-anchor="start">{escape(text)}</text>'


def _no_data(name: str, label: str) -> str:
    return _svg(
        name,
        label,
        [
            f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" text-anchor="middle" '
            f'class="empty">No data in this range</text>'
        ],
    )


def _legend(items: Sequence[tuple[str, str]], thresholds: bool = False) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><span class="swatch" style="background:{colour}"></span>{escape(label)}</span>'
            for label, colour in items
        )
        + ('<span><span class="threshold"></span>confidence threshold</span>' if thresholds else "")
        + "</div>"
    )


def _bucket_label(start: str, bucket_seconds: int, span_days: bool) -> str:
    if bucket_seconds >= 86400:
        return start[:10]
    if span_days:
        return start[5:16]
    return start[11:19] if bucket_seconds < 60 else start[11:16]


def _timeline_chart(summary: FailureSummary) -> str:
    label = "Failures over time, stacked by failure type"
    buckets = summary.timeline
    if not buckets or summary.total == 0:
        return _no_data("timeline", label)
    types = list(buckets[0].counts)
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM
    ticks = _axis_ticks(max(bucket.total for bucket in buckets))
    scale = plot_height / ticks[-1]
    slot = plot_width / len(buckets)
    bar = max(1.0, slot * 0.8)
    parts = _y_axis(ticks, scale)
    span_days = buckets[0].start[:10] != buckets[-1].start[:10]
    label_every = max(1, math.ceil(len(buckets) / 8))
    for index, bucket in enumerate(buckets):
        x = _LEFT + index * slot + (slot - bar) / 2
        y: float = _HEIGHT - _BOTTOM
        for failure_type in types:
            count = bucket.counts[failure_type]
            if not count:
                continue
            height = count * scale
            y -= height
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{type_colour(failure_type)}" data-bucket="{escape(bucket.start)}" '
                f'data-type="{escape(failure_type)}" data-count="{count}">'
                f"<title>{escape(bucket.start)} UTC: {count} {escape(failure_type)}</title>"
                "</rect>"
            )
        if index % label_every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{_HEIGHT - _BOTTOM + 20}" '
                f'text-anchor="middle">'
                f"{escape(_bucket_label(bucket.start, summary.bucket_seconds, span_days))}"
                "</text>"
            )
    parts.append(
        f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 6}" text-anchor="end">'
        f"time (UTC), one bar per {escape(duration_text(summary.bucket_seconds))}</text>"
    )
    parts.append(_y_title("failures"))
    return _svg("timeline", label, parts) + _legend([(name, type_colour(name)) for name in types])


def _latency_chart(summary: FailureSummary) -> str:
    label = "Latency distribution per strategy (share of each strategy's failures)"
    stats = summary.latency
    bounds = summary.latency_bounds
    if not stats:
        return _no_data("latency", label)
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM
    shares = [[count / item.count * 100 for count in item.histogram] for item in stats]
    ticks = _axis_ticks(max(max(row) for row in shares))
    scale = plot_height / ticks[-1]
    slot = plot_width / len(bounds)
    bar = slot * 0.84 / len(stats)
    colours = strategy_colours(summary)
    parts = _y_axis(ticks, scale, "%")
    for bin_index, upper in enumerate(bounds):
        group_x = _LEFT + bin_index * slot + slot * 0.08
        for row, item in enumerate(stats):
            count = item.histogram[bin_index]
            height = shares[row][bin_index] * scale
            x = group_x + row * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{_HEIGHT - _BOTTOM - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colours[item.strategy]}" '
                f'data-strategy="{escape(item.strategy)}" data-le-ms="{upper}" '
                f'data-count="{count}"><title>{escape(item.strategy)}: {count} failure(s) '
                f"at or under {upper:,} ms</title></rect>"
            )
        parts.append(
            f'<text x="{_LEFT + bin_index * slot + slot / 2:.1f}" '
            f'y="{_HEIGHT - _BOTTOM + 20}" text-anchor="middle">≤{upper:,}</text>'
        )
    parts.append(
        f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 6}" text-anchor="end">'
        "latency (ms, each bar: at or under its bound)</text>"
    )
    parts.append(_y_title("share of the strategy's failures (%)"))
    return _svg("latency", label, parts) + _legend(
        [(item.strategy, colours[item.strategy]) for item in stats]
    )


def _score_chart(summary: FailureSummary) -> str:
    label = "Top score of low-confidence failures, with the confidence thresholds"
    edges = summary.score_edges
    stats = summary.low_confidence
    if len(edges) < 2 or not any(sum(item.histogram) for item in stats):
        return _no_data("scores", label)
    plot_width = _WIDTH - _LEFT - _RIGHT
    # The thresholds' labels get a band of rows above the plot.
    rows = len(_thresholds_marked(stats))
    plot_top = _TOP + (_LABEL_ROW * rows + 6 if rows else 0)
    plot_height = _HEIGHT - _BOTTOM - plot_top
    bins = len(edges) - 1
    totals = [sum(item.histogram[i] for item in stats) for i in range(bins)]
    ticks = _axis_ticks(max(totals))
    scale = plot_height / ticks[-1]
    low, high = edges[0], edges[-1]
    x_scale = plot_width / (high - low)
    colours = strategy_colours(summary)
    parts = _y_axis(ticks, scale)
    for i in range(bins):
        x = _LEFT + (edges[i] - low) * x_scale
        width = (edges[i + 1] - edges[i]) * x_scale
        y: float = _HEIGHT - _BOTTOM
        for item in stats:
            count = item.histogram[i]
            if not count:
                continue
            height = count * scale
            y -= height
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" '
                f'height="{height:.1f}" fill="{colours[item.strategy]}" '
                f'data-strategy="{escape(item.strategy)}" data-from="{edges[i]:g}" '
                f'data-to="{edges[i + 1]:g}" data-count="{count}">'
                f"<title>{escape(item.strategy)}: {count} with score in "
                f"[{edges[i]:g}, {edges[i + 1]:g})</title></rect>"
            )
    label_every = max(1, math.ceil(len(edges) / 11))
    for i in range(0, len(edges), label_every):
        x = _LEFT + (edges[i] - low) * x_scale
        parts.append(
            f'<text x="{x:.1f}" y="{_HEIGHT - _BOTTOM + 20}" text-anchor="middle">'
            f"{edges[i]:g}</text>"
        )
    parts.append(_y_title("failures"))
    parts.append(
        f'<text x="{_WIDTH - _RIGHT}" y="{_HEIGHT - 6}" text-anchor="end">top_score</text>'
    )
    parts.extend(_threshold_marks(stats, low, x_scale, plot_top))
    return _svg("scores", label, parts) + _legend(
        [(item.strategy, colours[item.strategy]) for item in stats], thresholds=True
    )


def _thresholds_marked(stats: Sequence[ThresholdStats]) -> list[tuple[float, str]]:
    """Each threshold once, with the strategies that use it, in order."""
    marked: dict[float, list[str]] = {}
    for item in stats:
        if item.threshold is not None:
            marked.setdefault(item.threshold, []).append(item.strategy)
    return [(threshold, ", ".join(names)) for threshold, names in sorted(marked.items())]


def _threshold_marks(
    stats: Sequence[ThresholdStats], low: float, x_scale: float, plot_top: float
) -> list[str]:
    """Dashed lines over the plot, and their labels each on a row of its own in the
    band above the plot, where no line crosses them: a label never sits on another
    threshold's line or on another label, however close the thresholds are."""
    parts: list[str] = []
    for row, (threshold, names) in enumerate(_thresholds_marked(stats)):
        x = _LEFT + (threshold - low) * x_scale
        text = f"threshold {threshold:g} ({_clip_label(names)})"
        # Beside its line, on the side with room (about 6.5 units a character).
        room_right = _WIDTH - _RIGHT - x
        anchor, text_x = ("start", x + 4) if room_right >= 6.5 * len(text) else ("end", x - 4)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{plot_top:.1f}" '
            f'y2="{_HEIGHT - _BOTTOM}" '
            f'stroke="{THRESHOLD_COLOUR}" stroke-width="1.5" stroke-dasharray="6 4" '
            f'data-threshold="{threshold:g}"><title>threshold {threshold:g} '
            f"({escape(names)})</title></line>"
            f'<text x="{text_x:.1f}" y="{_TOP + _LABEL_ROW * row + 12}" '
            f'text-anchor="{anchor}" data-threshold-label="{threshold:g}" '
            f'style="fill:{THRESHOLD_COLOUR}">{escape(text)}</text>'
        )
    return parts


def _clip_label(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    if not rows:
        return '<p class="empty">None in this range.</p>'
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if i in numeric else f"<th>{escape(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(cell)}</td>' if i in numeric else f"<td>{escape(cell)}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(key: str, title: str, note: str, content: str) -> str:
    return (
        f'<section id="{key}" data-section="{key}"><h2>{escape(title)}</h2>'
        f'<p class="note">{escape(note)}</p>{content}</section>'
    )


def render_html(
    summary: FailureSummary,
    *,
    database: str,
    generated_at: datetime | None = None,
    repeated_queries: bool = True,
) -> str:
    """The report for ``summary`` as one self-contained HTML page.

    ``database`` is shown as the page's subject (escaped like all data).
    Charts: failures over time per type, latency distribution per strategy,
    low-confidence scores with the thresholds marked; one colour per failure
    type and per strategy on the whole page, each chart with its legend. The
    repeated queries' section only with ``repeated_queries``. When nothing
    matched, the page says so once, without empty charts. Pure; never blocks.
    """
    generated = (generated_at or datetime.now(UTC)).astimezone(UTC)
    filters = filters_text(summary)
    only = "" if filters is None else f" · only {escape(filters)}"
    cards = [("failures", f"{summary.total:,}", "#1f2933")] + [
        (name, f"{count:,}", type_colour(name)) for name, count in summary.by_type.items()
    ]
    card_html = "".join(
        f'<div class="card"><div class="n" style="color:{colour}">{escape(value)}</div>'
        f'<div class="l">{escape(name)}</div></div>'
        for name, value, colour in cards
    )
    numeric_from_1 = set(range(1, 20))
    headers, rows = type_strategy_rows(summary)
    overview = _table(headers, rows, numeric_from_1)
    headers, rows = latency_rows(summary)
    latency_table = _table(headers, rows, numeric_from_1)
    headers, rows = threshold_rows(summary)
    threshold_table = _table(headers, rows, {1, 2, 4})
    headers, rows = repeated_rows(summary)
    repeated_table = _table(headers, rows, {1})
    sections = (
        []
        if summary.total == 0
        else [
            _section(
                "overview",
                "Failures by strategy and type",
                "Where recall fails: each cell counts failures of one type for one strategy.",
                overview,
            ),
            _section(
                "timeline",
                "Failures over time",
                "Bursts point at incidents (timeouts, errors); a steady rise at drifting data.",
                _timeline_chart(summary),
            ),
            _section(
                "latency",
                "Latency per strategy",
                "How long failed recalls took. Timeouts pile up at the timeout budget.",
                _latency_chart(summary) + latency_table,
            ),
            _section(
                "scores",
                "Low-confidence scores against the threshold",
                "Near misses: results were found but scored under the confidence threshold. "
                "The what-if counts how many would have been hits at a lower threshold.",
                _score_chart(summary) + threshold_table,
            ),
        ]
    )
    if sections and repeated_queries:
        sections.append(
            _section(
                "queries",
                "Most repeated failing queries",
                "Compared with case folded and whitespace collapsed; candidates for new "
                "documents, synonyms or query rewriting.",
                repeated_table,
            )
        )
    if not sections:
        card_html = ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Retrieval failures - {escape(database)}</title>"
        f"<style>{_STYLE}</style></head><body><main>"
        f"<header><h1>Retrieval failures</h1><p>{escape(database)} · "
        f"{escape(range_text(summary))}{only}</p><p>{escape(total_text(summary))}</p></header>"
        + (f'<div class="cards">{card_html}</div>' if card_html else "")
        + "".join(sections)
        + f"<footer>Generated by trio-failurelog at {generated:%Y-%m-%d %H:%M:%S} UTC."
        "</footer></main></body></html>\n"
    )
