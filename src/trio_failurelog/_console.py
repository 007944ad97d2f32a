"""Terminal output for the command line: plain text always works, rich when it may.

Plain mode writes text only: no colour codes, no cursor movement, so piped
output is clean. Rich mode (``pip install 'trio-failurelog[cli]'``) is used on
a terminal when rich is importable: coloured tables and bars. A live status
line (``\\r`` rewriting) is shown only when the stream is a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final, TextIO

from ._html import TYPE_COLOURS
from ._record import RetrievalFailureRecord
from ._report import (
    latency_rows,
    range_text,
    repeated_rows,
    threshold_rows,
    type_strategy_rows,
)
from ._summary import FailureSummary

__all__ = ["INSTALL_HINT", "Console", "rich_available"]

INSTALL_HINT: Final = "pip install 'trio-failurelog[cli]'"
_BAR_WIDTH: Final = 40
_MAX_CELL: Final = 60
_TYPE_MARKS: Final = {"no_hit": "n", "low_confidence": "l", "timeout": "t", "error": "e"}


def rich_available() -> bool:
    """Whether rich can be imported (the ``cli`` extra is installed)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _clip(text: str, width: int = _MAX_CELL) -> str:
    text = " ".join(text.split())  # no newlines or tabs inside a table cell
    return text if len(text) <= width else text[: width - 3] + "..."


class Console:
    """Where the command line writes: a text stream, in plain or rich mode."""

    def __init__(self, stream: TextIO, *, use_rich: bool) -> None:
        self.stream = stream
        self.is_terminal = stream.isatty()
        self._status_width = 0
        self._rich: Any = None
        if use_rich:
            from rich.console import Console as RichConsole

            self._rich = RichConsole(file=stream, highlight=False, soft_wrap=False)

    @property
    def rich(self) -> bool:
        """Whether output is styled by rich."""
        return self._rich is not None

    # ------------------------------------------------------------------ basics

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text (``style`` is a rich style, ignored in plain mode)."""
        self.clear_status()
        if self._rich is not None:
            from rich.text import Text

            self._rich.print(Text(text, style=style or ""))
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def heading(self, text: str) -> None:
        """A section heading, after a blank line."""
        self.line()
        if self._rich is not None:
            self.line(text, style="bold")
        else:
            self.line(text)
            self.line("-" * len(text))

    def status(self, text: str) -> None:
        """Rewrite the live status line (terminal only; otherwise nothing)."""
        if not self.is_terminal:
            return
        padding = " " * max(0, self._status_width - len(text))
        self.stream.write("\r" + text + padding)
        self.stream.flush()
        self._status_width = len(text)

    def clear_status(self) -> None:
        """Erase the live status line, if one is shown."""
        if self._status_width:
            self.stream.write("\r" + " " * self._status_width + "\r")
            self.stream.flush()
            self._status_width = 0

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        numeric: set[int] | None = None,
    ) -> None:
        """A table; columns in ``numeric`` are right-aligned. Long cells are clipped."""
        if numeric is None:
            numeric = set(range(1, len(headers)))
        cells = [[_clip(cell) for cell in row] for row in rows]
        if not cells:
            self.line("(none)")
            return
        if self._rich is not None:
            from rich import box
            from rich.table import Table

            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for index, header in enumerate(headers):
                table.add_column(header, justify="right" if index in numeric else "left")
            for row in cells:
                table.add_row(*row)
            self.clear_status()
            self._rich.print(table)
            return
        widths = [
            max(len(headers[i]), *(len(row[i]) for row in cells)) for i in range(len(headers))
        ]

        def render(row: Sequence[str]) -> str:
            return "  ".join(
                cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                for i, cell in enumerate(row)
            ).rstrip()

        self.line(render(headers))
        self.line(render(["-" * width for width in widths]))
        for row in cells:
            self.line(render(row))

    # ------------------------------------------------------------------ the report

    def report(self, summary: FailureSummary, database: str) -> None:
        """The summary as headed tables and a text bar chart."""
        self.line(f"Retrieval failures in {database}", style="bold")
        self.line(range_text(summary))
        by_type = ", ".join(f"{name} {count:,}" for name, count in summary.by_type.items())
        self.line(f"{summary.total:,} failures" + (f" ({by_type})" if by_type else ""))
        if not summary.total:
            return
        self.heading("By strategy and type")
        self.table(*type_strategy_rows(summary))
        self.heading(f"Over time (UTC, {summary.bucket_seconds:,} s per line)")
        self._timeline(summary)
        self.heading("Latency per strategy (ms, nearest-rank percentiles)")
        self.table(*latency_rows(summary))
        if summary.low_confidence:
            self.heading("Low confidence: top score against threshold, and what-ifs")
            self.table(*threshold_rows(summary), numeric={1, 2, 4})
        self.heading("Most repeated failing queries (case and spaces folded)")
        self.table(*repeated_rows(summary), numeric={1})

    def _timeline(self, summary: FailureSummary) -> None:
        if not summary.timeline:  # no row had a created_at that reads as a time
            self.line("(no timeline: no row has a readable created_at)")
            return
        peak = max((bucket.total for bucket in summary.timeline), default=0) or 1
        same_day = summary.timeline[0].start[:10] == summary.timeline[-1].start[:10]
        for bucket in summary.timeline:
            label = bucket.start[11:] if same_day else bucket.start
            segments = [
                (name, round(count / peak * _BAR_WIDTH))
                for name, count in bucket.counts.items()
                if count
            ]
            if self._rich is not None:
                from rich.text import Text

                text = Text(f"{label}  ")
                for name, width in segments:
                    text.append("█" * width, style=TYPE_COLOURS.get(name, "grey50"))
                text.append(f" {bucket.total:,}")
                self.clear_status()
                self._rich.print(text)
            else:
                bar = "".join(_TYPE_MARKS.get(name, "?") * width for name, width in segments)
                self.line(f"{label}  {bar} {bucket.total:,}")
        if self._rich is None:
            self.line("(" + ", ".join(f"{m} = {name}" for name, m in _TYPE_MARKS.items()) + ")")

    def record(self, record: RetrievalFailureRecord) -> None:
        """One failure as one line, for ``tail``."""
        failure_type = str(record.failure_type)
        score = ""
        if record.top_score is not None:
            score = f"score {record.top_score:.3g}"
            if record.confidence_threshold is not None:
                score += f" < {record.confidence_threshold:.3g}"
        parts = [
            record.created_at or "",
            f"{failure_type:<14}",
            f"{record.retrieval_strategy:<10}",
            f"{record.latency_ms:>6} ms",
        ]
        if record.conversation_id is not None:
            parts.append(f"conv {record.conversation_id}/{record.turn_index}")
        if score:
            parts.append(score)
        parts.append(repr(_clip(record.query_text, 80)))
        if record.error_context:
            parts.append("| " + _clip(record.error_context, 80))
        if self._rich is not None:
            from rich.text import Text

            text = Text("  ".join(parts))
            start = len(parts[0]) + 2
            text.stylize(TYPE_COLOURS.get(failure_type, ""), start, start + len(failure_type))
            self.clear_status()
            self._rich.print(text)
        else:
            self.line("  ".join(parts))


def colour_wanted(choice: str, stream: TextIO) -> bool:
    """Whether ``--color`` (``auto``/``always``/``never``) asks for rich output."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and rich_available()
