"""The HTML report as headless Chromium lays it out, at 1280 and 480 px wide and on an
empty database: no text on other text, no threshold line through a label, no clipped
column, nothing wider than the window, chart text at a readable size.

The page is shown in an iframe of the width asked for (``srcdoc``: same origin as its
parent), because a headless window is never narrower than 500 px. A script in the
parent measures the laid-out frame (text line boxes through the DOM) and writes what it
finds into the parent's DOM, which ``--dump-dom`` prints. Without Chromium the test is
skipped, except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from trio_failurelog._html import render_html
from trio_failurelog._reader import FailureReader
from trio_failurelog._summary import FailureSummary

from ._failuredb import make_db, row
from .test_summary import ROWS

IN_CI = os.environ.get("CI", "").lower() == "true"

# Runs in the parent page once the frame has loaded; writes JSON into <pre id="out">.
MEASURE = r"""
function boxes(element) {
  const range = document.createRange();
  const found = [];
  for (const node of element.childNodes) {
    if (node.nodeType !== Node.TEXT_NODE || !node.textContent.trim()) continue;
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) found.push(r);
  }
  return found;
}
function overlap(a, b, slack) {
  return a.left + slack < b.right && b.left + slack < a.right &&
         a.top + slack < b.bottom && b.top + slack < a.bottom;
}
function name(e) {
  return e.tagName.toLowerCase() + (e.className && e.className.baseVal === undefined ?
    "." + e.className : "") + ":" + (e.textContent || "").trim().slice(0, 30);
}
function measure(frame) {
  const doc = frame.contentDocument, win = frame.contentWindow;
  const width = win.innerWidth, problems = [];
  if (doc.documentElement.scrollWidth > width + 1)
    problems.push("page wider than the window: " + doc.documentElement.scrollWidth);
  // Text line boxes of every element with text of its own, SVG text included.
  const texts = [];
  for (const e of doc.body.querySelectorAll("*")) {
    if (e.closest("title") || e.tagName === "title" || e.tagName === "style") continue;
    for (const r of boxes(e)) texts.push({e, r, svg: e.closest("svg")});
  }
  for (let i = 0; i < texts.length; i++) {
    const a = texts[i];
    const frameOf = a.e.closest(".chart-frame");
    const clip = frameOf ? frameOf.getBoundingClientRect() : null;
    if (!frameOf && (a.r.right > width + 1 || a.r.left < -1))
      problems.push("text outside the window: " + name(a.e));
    for (let j = i + 1; j < texts.length; j++) {
      const b = texts[j];
      if (a.e === b.e) continue;
      if (overlap(a.r, b.r, 0.5)) problems.push("text on text: " + name(a.e) + " / " + name(b.e));
    }
    if (a.svg) {
      const size = a.r.height;
      if (size < 9)
        problems.push("chart text too small (" + size.toFixed(1) + " px): " + name(a.e));
    } else {
      const size = parseFloat(win.getComputedStyle(a.e).fontSize);
      if (size < 11) problems.push("text too small (" + size + " px): " + name(a.e));
    }
  }
  // A threshold's dashed line must not cross any text but nothing else's label.
  for (const line of doc.querySelectorAll("line[data-threshold]")) {
    const l = line.getBoundingClientRect();
    const box = {left: l.left - 1, right: l.right + 1, top: l.top, bottom: l.bottom};
    for (const t of texts) {
      if (!t.svg || t.svg !== line.closest("svg")) continue;
      if (overlap(box, t.r, 0.5)) problems.push("threshold line through " + name(t.e));
    }
  }
  // Tables: no column clipped or pushed out of its section; no cell's text cut.
  for (const table of doc.querySelectorAll("table")) {
    const section = table.closest("section").getBoundingClientRect();
    const t = table.getBoundingClientRect();
    if (t.right > section.right + 0.5 || t.left < section.left - 0.5)
      problems.push("table wider than its section: " + name(table.closest("section")));
    for (const cell of table.querySelectorAll("th, td")) {
      const c = cell.getBoundingClientRect();
      if (c.right > section.right + 0.5) problems.push("column clipped: " + name(cell));
      if (cell.scrollWidth > cell.clientWidth + 1) problems.push("cell text cut: " + name(cell));
      // A heading or a number broken inside a word ("failu / res") reads wrong.
      if (cell.tagName === "TH" || cell.classList.contains("num")) {
        const words = cell.textContent.trim().split(/\s+/).length;
        if (boxes(cell).length > words) problems.push("word broken: " + name(cell));
      }
    }
  }
  // Cards and sections inside the window.
  for (const e of doc.querySelectorAll("section, .card, header, footer")) {
    const r = e.getBoundingClientRect();
    if (r.right > width + 1) problems.push("box wider than the window: " + name(e));
  }
  return {width, problems: [...new Set(problems)], texts: texts.length,
          svgTexts: texts.filter(t => t.svg).length,
          sections: doc.querySelectorAll("section").length};
}
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "out";
  try { out.textContent = JSON.stringify(measure(document.getElementById("page"))); }
  catch (error) { out.textContent = JSON.stringify({error: String(error)}); }
  document.body.appendChild(out);
});
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "headless Chromium is not installed (Debian: apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true, and the HTML layout test cannot run: {reason}", pytrace=False)
        pytest.skip(reason)
    return found


def laid_out(page: str, width: int, tmp_path: Path) -> dict[str, Any]:
    """What MEASURE finds in ``page`` laid out ``width`` px wide."""
    harness = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<style>body{margin:0} iframe{border:0;display:block}</style></head><body>"
        f'<iframe id="page" width="{width}" height="3000" srcdoc="{html.escape(page)}"></iframe>'
        f"<script>{MEASURE}</script></body></html>"
    )
    path = tmp_path / f"harness-{width}.html"
    path.write_text(harness, encoding="utf-8")
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,3100",
        "--virtual-time-budget=5000",
        "--dump-dom",
        path.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    start = done.stdout.find('<pre id="out">')
    assert start >= 0, (done.returncode, done.stdout[-500:], done.stderr[-2000:])
    end = done.stdout.index("</pre>", start)
    result: dict[str, Any] = json.loads(html.unescape(done.stdout[start + 14 : end]))
    assert "error" not in result, result
    return result


@pytest.fixture
def busy(tmp_path: Path) -> FailureSummary:
    """A day with every chart full: close thresholds, long names and queries, many bins."""
    rows = list(ROWS)
    for i in range(300):
        strategy = ["semantic", "keyword", "hybrid-reranked-with-a-long-name", "graph"][i % 4]
        rows.append(
            row(
                ["no_hit", "low_confidence", "timeout", "error"][i % 4 if i % 7 else 1],
                strategy,
                f"where is my order number {i % 13} " + "and a rather long query " * (i % 3),
                f"2024-01-01 {i // 60:02d}:{i % 60:02d}:00",
                top_score=0.3 + (i % 40) / 100,
                threshold=[0.7, 0.72, 0.45, 0.5][i % 4],
                latency_ms=(i * 37) % 2500,
                error_context="TimeoutError: " + "x" * (i % 90),
            )
        )
    with FailureReader(make_db(tmp_path / "busy.db", rows)) as reader:
        return reader.summary(since="2024-01-01", until="2024-01-02")


@pytest.mark.parametrize("width", [1280, 480])
def test_the_report_lays_out_cleanly(busy: FailureSummary, tmp_path: Path, width: int) -> None:
    page = render_html(busy, database="/var/lib/app/a-rather-long-path/failures.db")
    result = laid_out(page, width, tmp_path)
    assert result["width"] == width
    assert result["sections"] == 5
    assert result["svgTexts"] > 40  # the charts were measured, not skipped
    assert result["problems"] == []


def test_an_empty_database_lays_out_cleanly(tmp_path: Path) -> None:
    with FailureReader(make_db(tmp_path / "empty.db", [])) as reader:
        empty = reader.summary()
    for width in (1280, 480):
        result = laid_out(render_html(empty, database="empty.db"), width, tmp_path)
        assert (result["width"], result["sections"], result["problems"]) == (width, 0, [])
        assert result["texts"] >= 3
