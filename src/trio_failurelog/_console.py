"""Terminal output for the command line: plain text always works, rich when it may.

Plain mode writes text only: no colour codes, no cursor movement, so piped
output is clean. Rich mode (the ``cli`` extra: see :data:`INSTALL_HINT`) is used on
a terminal when rich is importable: coloured tables and bars. A live status
line (``\\r`` rewriting) is shown only when the stream is a terminal.
"""

from __future__ import annotations

import logging
import os
import unicodedata
import weakref
from collections.abc import Sequence
from typing import Any, Final, TextIO

from ._extras import install_hint
from ._html import TYPE_COLOURS
from ._record import RetrievalFailureRecord
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
from ._summary import FailureSummary

__all__ = [
    "INSTALL_HINT",
    "Console",
    "StatusAwareLogHandler",
    "clear_all_status",
    "colour_wanted",
    "rich_available",
]

INSTALL_HINT: Final = f"the 'cli' extra: {install_hint('cli')}"
_BAR_WIDTH: Final = 40
_MAX_CELL: Final = 60
_TYPE_MARKS: Final = {"no_hit": "n", "low_confidence": "l", "timeout": "t", "error": "e"}
#: Unicode categories written as escapes: controls (ESC, BEL, CSI...), format
#: characters (bidi overrides), line and paragraph separators, surrogates.
_UNSHOWN: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def rich_available() -> bool:
    """Whether rich can be imported (the ``cli`` extra is installed)."""
    try:
        import rich  # noqa: F401
    except ImportError:
        return False
    return True


def _visible(text: str) -> str:
    """``text`` with every control or format character written as its escape
    (``\\x1b``, ``\\u202e``): what users typed reaches the terminal as text,
    never as an escape sequence that moves the cursor, clears the screen or
    sets the window title, nor as a bidi override that reorders what is shown.
    Idempotent; plain text comes back as it is."""
    if text.isprintable():  # the usual case, at C speed
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii")
        if unicodedata.category(char) in _UNSHOWN
        else char
        for char in text
    )


def _clip(text: str, width: int | None = _MAX_CELL) -> str:
    """``text`` as one visible line, cut to ``width`` (``None``: whole)."""
    text = _visible(" ".join(text.split()))  # no newlines or tabs inside a table cell
    return text if width is None or len(text) <= width else text[: width - 3] + "..."


#: The consoles whose live status line is on screen now: log output ends them first.
_SHOWING: Final[weakref.WeakSet[Console]] = weakref.WeakSet()


class Console:
    """Where the command line writes: a text stream, in plain or rich mode.

    ``force_colour`` (``--color always``) styles the output even when it is
    not a terminal, and even with ``NO_COLOR`` set: the flag is the later,
    more specific word. The live status line still needs a terminal.
    """

    def __init__(self, stream: TextIO, *, use_rich: bool, force_colour: bool = False) -> None:
        self.stream = stream
        self.is_terminal = stream.isatty()
        self._status_width = 0
        self._rich: Any = None
        if use_rich:
            from rich.console import Console as RichConsole

            options: dict[str, Any] = {}
            if force_colour:
                # rich turns colour off by itself when the stream is no terminal
                # (or NO_COLOR is set); --color always means colour regardless.
                options = {"force_terminal": True, "no_color": False}
            self._rich = RichConsole(file=stream, highlight=False, soft_wrap=False, **options)
            if force_colour and self._rich.color_system is None:  # TERM=dumb, say
                self._rich = RichConsole(
                    file=stream,
                    highlight=False,
                    soft_wrap=False,
                    color_system="standard",
                    **options,
                )

    @property
    def rich(self) -> bool:
        """Whether output is styled by rich."""
        return self._rich is not None

    # ------------------------------------------------------------------ basics

    def line(self, text: str = "", style: str | None = None) -> None:
        """One line of text (``style`` is a rich style, ignored in plain mode)."""
        self.clear_status()
        text = _visible(text)
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
        text = _visible(text)
        padding = " " * max(0, self._status_width - len(text))
        self.stream.write("\r" + text + padding)
        self.stream.flush()
        self._status_width = len(text)
        _SHOWING.add(self)

    def clear_status(self) -> None:
        """Erase the live status line, if one is shown."""
        if self._status_width:
            self.stream.write("\r" + " " * self._status_width + "\r")
            self.stream.flush()
            self._status_width = 0
        _SHOWING.discard(self)

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        numeric: set[int] | None = None,
        whole: set[int] | None = None,
    ) -> None:
        """A table; columns in ``numeric`` are right-aligned. Long cells are clipped,
        but in the columns of ``whole`` (text of ours, bounded, worth reading whole)."""
        if numeric is None:
            numeric = set(range(1, len(headers)))
        whole = whole or set()
        cells = [
            [_clip(cell, None if index in whole else _MAX_CELL) for index, cell in enumerate(row)]
            for row in rows
        ]
        if not cells:
            self.line("(none)")
            return
        if self._rich is not None:
            from rich import box
            from rich.table import Table
            from rich.text import Text

            table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for index, header in enumerate(headers):
                table.add_column(header, justify="right" if index in numeric else "left")
            for row in cells:
                # Text, not str: rich would read "[red]" in a stored text as markup.
                table.add_row(*(Text(cell) for cell in row))
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

    def report(
        self, summary: FailureSummary, database: str, *, repeated_queries: bool = True
    ) -> None:
        """The summary as headed tables and a text bar chart; the repeated queries'
        section only with ``repeated_queries`` (``--top 0`` asks for none)."""
        self.line(f"Retrieval failures in {database}", style="bold")
        self.line(range_text(summary))
        only = filters_text(summary)
        if only is not None:
            self.line(f"only {only}")
        self.line(total_text(summary))
        if not summary.total:
            return
        self.heading("By strategy and type")
        self.table(*type_strategy_rows(summary))
        self.heading(f"Over time (UTC, {duration_text(summary.bucket_seconds)} per line)")
        self._timeline(summary)
        self.heading("Latency per strategy (ms, nearest-rank percentiles)")
        self.table(*latency_rows(summary))
        if summary.low_confidence:
            self.heading("Low confidence: top score against threshold, and what-ifs")
            # The what-ifs whole: the step that recovers most is the last one.
            self.table(*threshold_rows(summary), numeric={1, 2, 4}, whole={5})
        if repeated_queries:
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
            # At least one mark for any failure: a bucket of 1 beside one of
            # thousands is still drawn (its count follows the bar).
            segments = [
                (name, max(1, round(count / peak * _BAR_WIDTH)))
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
        parts = [_visible(part) for part in parts]  # each text as it was stored
        if self._rich is not None:
            from rich.text import Text

            text = Text("  ".join(parts))
            start = len(parts[0]) + 2
            text.stylize(TYPE_COLOURS.get(failure_type, ""), start, start + len(failure_type))
            self.clear_status()
            self._rich.print(text)
        else:
            self.line("  ".join(parts))


def clear_all_status() -> None:
    """Erase every live status line shown now (before other output reaches the terminal)."""
    for console in list(_SHOWING):
        console.clear_status()


class StatusAwareLogHandler(logging.StreamHandler[TextIO]):
    """A log handler for the command line: before a record is written, any live
    status line is erased, so the message starts at the beginning of a line and
    the next status update is drawn below it, not on top of it."""

    def emit(self, record: logging.LogRecord) -> None:
        clear_all_status()
        super().emit(record)


def colour_wanted(choice: str, stream: TextIO) -> bool:
    """Whether ``--color`` (``auto``/``always``/``never``) asks for rich output."""
    if choice == "always":
        return True
    if choice == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty() and rich_available()
