"""The HTML report: self-contained, escaped, and one chart per chart section with the data."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from trio_failurelog._html import STRATEGY_COLOURS, THRESHOLD_COLOUR, TYPE_COLOURS, render_html
from trio_failurelog._reader import FailureReader
from trio_failurelog._summary import FailureSummary

from ._failuredb import make_db, row
from .test_summary import ROWS, T0, T1

HOSTILE = '<script>alert("x")</script>'


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: str = ""

    def walk(self) -> list[Element]:
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def find_all(self, tag: str) -> list[Element]:
        return [e for e in self.walk() if e.tag == tag]


VOID = {"meta", "br", "img", "link", "input", "hr"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text += data


def parse(page: str) -> Element:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def text_of(element: Element) -> str:
    return "".join(e.text for e in element.walk())


@pytest.fixture
def summary(tmp_path: Path) -> FailureSummary:
    extra = [
        row("no_hit", HOSTILE, "q & <b>bold</b>", f"{T0[:10]} 00:45:00"),
        row("no_hit", HOSTILE, "Q & <B>bold</B>", f"{T0[:10]} 00:46:00"),
    ]
    with FailureReader(make_db(tmp_path / "h.db", [*ROWS, *extra])) as reader:
        return reader.summary(since=T0, until=T1)


@pytest.fixture
def page(summary: FailureSummary) -> Element:
    return parse(render_html(summary, database="/data/<db>&.db"))


def sections(page: Element) -> dict[str, Element]:
    return {e.attrs["data-section"]: e for e in page.find_all("section")}


def test_self_contained_no_script_no_network(summary: FailureSummary) -> None:
    html = render_html(summary, database="x.db")
    tree = parse(html)
    assert tree.find_all("script") == []
    assert tree.find_all("link") == []
    assert tree.find_all("img") == []
    for element in tree.walk():
        for name, value in element.attrs.items():
            if name in ("src", "href"):
                pytest.fail(f"external reference {name}={value!r}")  # pragma: no cover
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "@import" not in html
    assert "url(" not in html


def test_data_is_escaped(summary: FailureSummary) -> None:
    html = render_html(summary, database="/data/<db>&.db")
    assert HOSTILE not in html
    assert "<b>bold" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    tree = parse(html)
    assert "/data/<db>&.db" in text_of(tree.find_all("header")[0])
    queries = text_of(sections(tree)["queries"])
    assert "q & <b>bold</b>" in queries  # normalised, shown as text


def test_one_chart_per_chart_section(page: Element) -> None:
    found = sections(page)
    assert list(found) == ["overview", "timeline", "latency", "scores", "queries"]
    for key in ("timeline", "latency", "scores"):
        charts = found[key].find_all("svg")
        assert len(charts) == 1, key
        assert charts[0].attrs["data-chart"] == key
    for key in ("overview", "queries"):
        assert found[key].find_all("svg") == []
        assert len(found[key].find_all("table")) == 1


def test_timeline_chart_has_the_counts(page: Element, summary: FailureSummary) -> None:
    (chart,) = sections(page)["timeline"].find_all("svg")
    bars = {
        (r.attrs["data-bucket"], r.attrs["data-type"]): int(r.attrs["data-count"])
        for r in chart.find_all("rect")
    }
    expected = {
        (bucket.start, name): count
        for bucket in summary.timeline
        for name, count in bucket.counts.items()
        if count
    }
    assert bars == expected
    assert sum(bars.values()) == summary.total == 14
    assert bars[(f"{T0[:10]} 00:00:00", "low_confidence")] == 2


def test_latency_chart_has_each_strategys_histogram(page: Element, summary: FailureSummary) -> None:
    (chart,) = sections(page)["latency"].find_all("svg")
    bars: dict[str, list[tuple[int, int]]] = {}
    for rect in chart.find_all("rect"):
        bars.setdefault(rect.attrs["data-strategy"], []).append(
            (int(rect.attrs["data-le-ms"]), int(rect.attrs["data-count"]))
        )
    assert set(bars) == {"semantic", "keyword", "hybrid", HOSTILE}
    for stats in summary.latency:
        assert bars[stats.strategy] == list(
            zip(summary.latency_bounds, stats.histogram, strict=True)
        )
    assert dict(bars["semantic"])[1000] == 1
    table = sections(page)["latency"].find_all("tbody")[0]
    first_row = [text_of(td) for td in table.find_all("tr")[0].find_all("td")]
    assert first_row[:6] == ["semantic", "7", "40", "1,000", "1,000", "1,000"]


def test_score_chart_has_histogram_and_thresholds(page: Element, summary: FailureSummary) -> None:
    (chart,) = sections(page)["scores"].find_all("svg")
    bars = sorted(
        (r.attrs["data-strategy"], float(r.attrs["data-from"]), int(r.attrs["data-count"]))
        for r in chart.find_all("rect")
    )
    assert bars == [
        ("keyword", 0.34, 1),
        ("keyword", 0.44, 1),
        ("semantic", 0.4, 1),
        ("semantic", 0.52, 1),
        ("semantic", 0.62, 1),
        ("semantic", 0.66, 1),
    ]
    thresholds = sorted(
        float(line.attrs["data-threshold"])
        for line in chart.find_all("line")
        if "data-threshold" in line.attrs
    )
    assert thresholds == [0.45, 0.7]
    what_if = text_of(sections(page)["scores"].find_all("tbody")[0])
    assert "0.65: 1 (20%)" in what_if
    assert "0.35: 2 (100%)" in what_if


def test_an_empty_database_says_so_once(tmp_path: Path) -> None:
    with FailureReader(make_db(tmp_path / "e.db", [])) as reader:
        empty = reader.summary()
    page = render_html(empty, database="e.db")
    tree = parse(page)
    assert sections(tree) == {}  # no blank charts, no empty tables
    assert not [e for e in tree.walk() if e.attrs.get("class") == "cards"]
    assert text_of(tree).count("0 failures: the database holds no failures at all") == 1
    assert "No data" not in page
    assert "None in this range" not in page


def test_top_0_leaves_the_queries_section_out(summary: FailureSummary) -> None:
    assert "queries" not in sections(
        parse(render_html(summary, database="x", repeated_queries=False))
    )


def test_one_colour_means_one_thing_on_the_whole_page(
    page: Element, summary: FailureSummary
) -> None:
    found = sections(page)
    type_fills = {r.attrs["fill"] for r in found["timeline"].find_all("rect")}
    strategy_fills = {
        r.attrs["fill"] for key in ("latency", "scores") for r in found[key].find_all("rect")
    }
    assert type_fills <= set(TYPE_COLOURS.values())
    assert strategy_fills <= set(STRATEGY_COLOURS)
    assert not set(TYPE_COLOURS.values()) & set(STRATEGY_COLOURS)
    assert THRESHOLD_COLOUR not in {*TYPE_COLOURS.values(), *STRATEGY_COLOURS}
    # Each strategy has one colour in both charts that show strategies.
    per_strategy: dict[str, set[str]] = {}
    for key in ("latency", "scores"):
        for r in found[key].find_all("rect"):
            per_strategy.setdefault(r.attrs["data-strategy"], set()).add(r.attrs["fill"])
    assert all(len(colours) == 1 for colours in per_strategy.values())
    assert len({next(iter(c)) for c in per_strategy.values()}) == len(per_strategy)
    # ...and every chart has its legend, the thresholds' line included.
    for key in ("timeline", "latency", "scores"):
        assert [e for e in found[key].walk() if e.attrs.get("class") == "legend"], key
    assert "confidence threshold" in text_of(found["scores"])


def test_every_axis_says_its_unit(page: Element) -> None:
    found = sections(page)
    assert "time (UTC), one bar per" in text_of(found["timeline"])
    assert "latency (ms" in text_of(found["latency"])
    assert "share of the strategy's failures (%)" in text_of(found["latency"])
    assert "top_score" in text_of(found["scores"])
