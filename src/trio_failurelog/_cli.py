"""The ``trio-failurelog`` command: report, tail, export, purge, demo.

Usage errors exit with 2, database and file errors with 1, each as one line on
stderr without a traceback; Ctrl-C exits with 130. Output that is piped is plain
text; colour (with rich, the ``cli`` extra) and live progress only on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from ._console import INSTALL_HINT, Console, colour_wanted, rich_available
from ._duration import parse_duration
from ._errors import DatabaseSetupError
from ._export import record_to_dict, write_csv, write_jsonl
from ._reader import FailureReader
from ._readsql import TimeBound
from ._summary import FailureSummary

__all__ = ["main"]

PROG = "trio-failurelog"
DEFAULT_DEMO_DB = "trio-failurelog-demo.db"

#: What ``tail`` sleeps with between polls; tests replace it.
sleep: Callable[[float], object] = time.sleep


class CommandError(Exception):
    """A problem to report as one line on stderr, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _time_bound(text: str) -> TimeBound:
    """``--since``/``--until``/``--older-than``: a duration ago, or a UTC time."""
    try:
        return parse_duration(text)
    except ValueError as duration_error:
        if not text[:1].isdigit() or "-" not in text:
            raise argparse.ArgumentTypeError(str(duration_error)) from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use a duration such as 24h or a UTC time such as "
            "2024-05-01T12:00"
        ) from None
    return moment


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid thresholds {text!r}: use numbers separated by commas, as in 0.6,0.5"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole command (for ``--help`` and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Look at the retrieval failures a trio-failurelog logger (or the reference "
        "application) recorded in SQLite, or run the demo.",
        epilog=f"Coloured output and live progress on a terminal need rich: {INSTALL_HINT}. "
        "Times are UTC; durations look like 30s, 15m, 24h, 30d, 2w.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour and rich tables: auto (on a terminal, when rich is installed), always, "
        "never (default: auto; NO_COLOR also turns it off)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def database(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("database", metavar="DB", help="the SQLite file (opened read-only)")

    def time_range(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--since",
            type=_time_bound,
            metavar="WHEN",
            help="only failures from then on: a duration ago (24h, 7d) or a UTC time",
        )
        sub.add_argument(
            "--until", type=_time_bound, metavar="WHEN", help="only failures before then"
        )

    def choices(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--type",
            dest="failure_type",
            action="append",
            metavar="TYPE",
            help="only this failure type (no_hit, low_confidence, timeout, error); repeatable",
        )
        sub.add_argument(
            "--strategy", action="append", metavar="NAME", help="only this strategy; repeatable"
        )

    report = commands.add_parser(
        "report",
        help="summarise failures: counts, timeline, latency, thresholds, repeated queries",
        description="Summarise the failures of a time range as tables (or JSON), optionally "
        "as a self-contained HTML page with charts.",
    )
    database(report)
    time_range(report)
    choices(report)
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument("--html", metavar="FILE", help="also write the HTML report to FILE")
    report.add_argument(
        "--thresholds",
        type=_thresholds,
        metavar="T1,T2",
        help="candidate confidence thresholds for the what-if (default: 4 steps of 0.05 "
        "below each strategy's threshold)",
    )
    report.add_argument(
        "--top", type=int, default=10, metavar="N", help="repeated queries to list (default 10)"
    )
    report.set_defaults(run=_report)

    tail = commands.add_parser(
        "tail",
        help="follow new failures live, like tail -f",
        description="Print the last failures, then new ones as they are written, until Ctrl-C.",
    )
    database(tail)
    choices(tail)
    tail.add_argument(
        "-n", "--lines", type=int, default=10, metavar="N", help="show the last N first (10)"
    )
    tail.add_argument(
        "--interval",
        type=_positive(float),
        default=1.0,
        metavar="SECONDS",
        help="how often to look for new rows (default 1)",
    )
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(run=_tail)

    export = commands.add_parser(
        "export",
        help="stream failures as JSON Lines or CSV",
        description="Write failures oldest first as JSON Lines (exact) or CSV (NULL as an "
        "empty field), streaming in constant memory.",
    )
    database(export)
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    time_range(export)
    choices(export)
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(run=_export)

    purge = commands.add_parser(
        "purge",
        help="delete old failures in chunks",
        description="Delete failures older than a duration (or a UTC time), 1000 rows per "
        "transaction so that a logger writing to the file is not held up.",
    )
    database(purge)
    purge.add_argument(
        "--older-than", type=_time_bound, required=True, metavar="WHEN", help="e.g. 30d"
    )
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    purge.set_defaults(run=_purge)

    demo = commands.add_parser(
        "demo",
        help="run a simulated retrieval service that logs its failures, then report",
        description="Run a trio program with many concurrent recall tasks against an "
        "in-memory corpus; every failed recall goes through the library. Shows logged, "
        "written and dropped records per second, then the report and the HTML page.",
    )
    demo.add_argument(
        "--db", default=DEFAULT_DEMO_DB, metavar="PATH", help=f"default ./{DEFAULT_DEMO_DB}"
    )
    demo.add_argument(
        "--duration",
        type=_positive(float),
        default=10.0,
        metavar="SECONDS",
        help="how long to run (default 10)",
    )
    demo.add_argument(
        "--rate", type=_positive(float), default=300.0, metavar="N", help="requests/s (300)"
    )
    demo.add_argument(
        "--concurrency",
        type=_positive(int),
        default=64,
        metavar="N",
        help="requests in flight at most (64)",
    )
    demo.add_argument(
        "--capacity",
        type=_positive(int),
        default=8192,
        metavar="N",
        help="the logger's buffer; make it small with a high --rate to see drops (8192)",
    )
    demo.add_argument("--seed", type=int, metavar="N", help="make the queries repeatable")
    demo.add_argument(
        "--html", metavar="FILE", help="where to write the HTML report (default: next to --db)"
    )
    demo.set_defaults(run=_demo)
    return parser


# --------------------------------------------------------------------------- commands


def _write_html(path: str, summary: FailureSummary, database: str) -> Path:
    from ._html import render_html

    target = Path(path)
    try:
        target.write_text(render_html(summary, database=database), encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    return target


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The reader's filter arguments from ``--since/--until/--type/--strategy``."""
    return {
        "since": args.since,
        "until": args.until,
        "failure_type": args.failure_type,
        "strategy": args.strategy,
    }


def _report(args: argparse.Namespace, out: Console) -> int:
    if args.top < 0:
        raise CommandError("--top must not be negative")
    with FailureReader(args.database) as reader:
        summary = reader.summary(**_filters(args), thresholds=args.thresholds, top_queries=args.top)
    if args.html:
        target = _write_html(args.html, summary, args.database)
    if args.json:
        out.stream.write(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.report(summary, args.database)
    if args.html:
        (sys.stderr if args.json else out.stream).write(f"HTML report: {target}\n")
    return 0


def _tail(args: argparse.Namespace, out: Console) -> int:
    if args.lines < 0:
        raise CommandError("--lines must not be negative")
    with FailureReader(args.database) as reader:
        records = reader.follow(
            failure_type=args.failure_type,
            strategy=args.strategy,
            backlog=args.lines,
            poll_interval=args.interval,
            sleep=lambda seconds: sleep(seconds),
        )
        for record in records:
            if args.json:
                out.stream.write(json.dumps(record_to_dict(record), ensure_ascii=False) + "\n")
                out.stream.flush()
            else:
                out.record(record)
    return 0  # pragma: no cover - follow() never ends; Ctrl-C ends tail


@contextlib.contextmanager
def _output_file(path: str | None, csv_mode: bool) -> Iterator[TextIO]:
    if path is None:
        if csv_mode:
            # csv wants newline="" so that it controls line endings itself.
            sys.stdout.reconfigure(newline="")  # type: ignore[union-attr]
        yield sys.stdout
        return
    try:
        stream = open(path, "w", encoding="utf-8", newline="" if csv_mode else None)  # noqa: SIM115
    except OSError as exc:
        raise CommandError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def _export(args: argparse.Namespace, out: Console) -> int:
    progress = Console(sys.stderr, use_rich=False) if args.output else None
    with FailureReader(args.database) as reader:
        total = reader.count(**_filters(args))
        records = reader.query(**_filters(args), oldest_first=True)

        def on_row(count: int) -> None:
            if progress is not None and (count % 1000 == 0 or count == total):
                progress.status(f"exported {count:,} of {total:,} rows")

        writer = write_csv if args.format == "csv" else write_jsonl
        with _output_file(args.output, args.format == "csv") as stream:
            count = writer(records, stream, on_row)
    if progress is not None:
        progress.clear_status()
        progress.line(f"exported {count:,} rows to {args.output}")
    return 0


def _purge(args: argparse.Namespace, out: Console) -> int:
    from ._purge import purge_older_than
    from ._readsql import created_at_text

    cutoff = created_at_text(args.older_than)
    progress = Console(sys.stderr, use_rich=False)
    deleted = purge_older_than(
        args.database,
        cutoff,
        dry_run=args.dry_run,
        on_progress=lambda n: progress.status(f"deleted {n:,} rows..."),
    )
    progress.clear_status()
    if args.dry_run:
        out.line(f"would delete {deleted:,} rows older than {cutoff} UTC (dry run)")
    else:
        out.line(f"deleted {deleted:,} rows older than {cutoff} UTC")
    return 0


def _demo(args: argparse.Namespace, out: Console) -> int:
    import trio

    from ._demo import DemoProgress, run_demo

    def on_progress(tick: DemoProgress) -> None:
        stats = tick.statistics
        text = (
            f"{tick.elapsed:5.1f} s  requests {tick.requests_per_s:6.0f}/s  "
            f"logged {tick.logged_per_s:5.0f}/s  written {tick.written_per_s:5.0f}/s  "
            f"dropped {tick.dropped_per_s:4.0f}/s  queued {stats.queued:,}"
        )
        if out.is_terminal:
            out.status(text)
        else:
            out.line(text)

    out.line(
        f"Simulating a retrieval service for {args.duration:g} s at {args.rate:g} requests/s; "
        f"failures go to {args.db}"
    )
    result = trio.run(
        lambda: run_demo(
            args.db,
            duration=args.duration,
            rate=args.rate,
            concurrency=int(args.concurrency),
            capacity=int(args.capacity),
            seed=args.seed,
            on_progress=on_progress,
        )
    )
    out.clear_status()
    stats = result.statistics
    dropped = stats.dropped_full + stats.dropped_closed
    out.line(
        f"{result.requests:,} requests in {result.seconds:.1f} s: {stats.accepted:,} failures "
        f"logged, {stats.written:,} written, {dropped:,} dropped, {stats.failed:,} failed"
    )
    out.line()
    with FailureReader(args.db) as reader:
        summary = reader.summary(since=result.started_at)
    out.report(summary, args.db)
    html_path = args.html or str(Path(args.db).with_suffix(".html"))
    target = _write_html(html_path, summary, args.db)
    out.line()
    out.line(f"Database:    {Path(args.db).resolve()}")
    out.line(f"HTML report: {target.resolve()}")
    # The command as the user's shell can run it: nox's demo session names
    # itself, because trio-failurelog is only on that session's PATH.
    prog = os.environ.get("TRIO_FAILURELOG_PROG", PROG)
    out.line(f"Next: {prog} report {args.db} --since 1h   |   {prog} tail {args.db}")
    return 0


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status.

    Blocks for as long as the command runs (``tail`` until interrupted).
    Never raises for bad input or unusable files: they print one line on
    stderr and return 1 (2 for usage errors, from argparse's ``SystemExit``,
    which does propagate, as does ``--help``'s exit 0).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(message)s")
    if args.color == "always" and not rich_available():
        print(f"{PROG}: error: --color always needs rich: {INSTALL_HINT}", file=sys.stderr)
        return 2
    out = Console(sys.stdout, use_rich=colour_wanted(args.color, sys.stdout))
    try:
        status: int = args.run(args, out)
        return status
    except (CommandError, DatabaseSetupError) as exc:
        out.clear_status()
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        out.clear_status()
        print(f"{PROG}: error: {args.command}: SQLite: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        out.clear_status()
        return 130
    except BrokenPipeError:
        # The reader of our output went away (``| head``): stop quietly, and keep
        # Python from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
