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
import math
import os
import shlex
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NoReturn, TextIO

from ._conninfo import without_password
from ._console import INSTALL_HINT, Console, StatusAwareLogHandler, colour_wanted, rich_available
from ._database import check_database, database_label, is_postgres_url
from ._duration import parse_duration
from ._errors import DatabaseSetupError
from ._export import record_to_dict, write_csv, write_jsonl
from ._extras import install_hint
from ._outfile import private_text_file
from ._reader import FailureReader
from ._readsql import Filters, failure_type_name
from ._report import plural
from ._summary import FailureSummary
from ._timetext import TimeBound, created_at_text, epoch_seconds

__all__ = ["main"]

PROG = "trio-failurelog"
DEFAULT_DEMO_DB = "trio-failurelog-demo.db"
#: Where the demo writes its HTML report when its database is a URL.
DEFAULT_DEMO_HTML = "trio-failurelog-demo.html"

#: What ``tail`` sleeps with between polls; tests replace it.
sleep: Callable[[float], object] = time.sleep


class CommandError(Exception):
    """A problem to report as one line on stderr, exit status 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _time_bound(text: str) -> TimeBound:
    """``--since``/``--until``/``--older-than``: a duration ago, or a UTC time.

    A duration stays a timedelta (the reader counts back from the moment it
    runs); a time is checked here, so that a bad one is a usage error, and
    passed on as text. Durations too long for the calendar are clamped by the
    reader to its first day, which selects the same rows.
    """
    try:
        return parse_duration(text)
    except ValueError as duration_error:
        if not text.strip()[:1].isdigit() or "-" not in text:
            raise argparse.ArgumentTypeError(str(duration_error)) from None
    try:
        created_at_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use a duration such as 24h or a UTC time such as "
            "2024-05-01T12:00 (years 0001 to 9999)"
        ) from None
    return text


def _positive(kind: type[int] | type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
        return value

    return parse


def _count(text: str) -> int:
    """A number of rows: a whole number, zero or more (any size: "all")."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return value


def _failure_type(text: str) -> str:
    try:
        return failure_type_name(text, name="unknown")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("unknown: ")) from None


def _thresholds(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(value) for value in values):
        raise argparse.ArgumentTypeError(
            f"invalid thresholds {text!r}: use numbers separated by commas, as in 0.6,0.5"
        )
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the whole command (for ``--help`` and tests)."""
    parser = _Parser(
        prog=PROG,
        description="Look at the retrieval failures a trio-failurelog logger (or the reference "
        "application) recorded in SQLite or PostgreSQL, or run the demo. DB is an SQLite "
        "file or a postgresql:// URL (the 'postgres' extra).",
        epilog=f"Coloured output and live progress on a terminal need rich: {INSTALL_HINT}. "
        "Times are UTC; durations look like 30s, 15m, 24h, 30d, 2w.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    colour_help = (
        "colour and rich tables: auto (on a terminal, when rich is installed), always, "
        "never (default: auto; NO_COLOR also turns it off)"
    )
    parser.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help=colour_help
    )
    # --color after the command too (report DB --color never), as its --help says;
    # SUPPRESS: a command given none leaves the value given before it.
    colour = _Parser(add_help=False)
    colour.add_argument(
        "--color", choices=("auto", "always", "never"), default=argparse.SUPPRESS, help=colour_help
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    def database(
        sub: argparse.ArgumentParser,
        help: str = "the SQLite file, or a postgresql://user@host/dbname URL (read-only)",
    ) -> None:
        sub.add_argument("database", metavar="DB", help=help)

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
            type=_failure_type,
            metavar="TYPE",
            help="only this failure type (no_hit, low_confidence, timeout, error); repeatable",
        )
        sub.add_argument(
            "--strategy", action="append", metavar="NAME", help="only this strategy; repeatable"
        )

    report = commands.add_parser(
        "report",
        parents=[colour],
        help="summarise failures: counts, timeline, latency, thresholds, repeated queries",
        description="Summarise the failures of a time range as tables (or JSON), optionally "
        "as a self-contained HTML page with charts.",
    )
    database(report)
    time_range(report)
    choices(report)
    report.add_argument("--json", action="store_true", help="print the summary as JSON")
    report.add_argument(
        "--html",
        metavar="FILE",
        help="also write the HTML report to FILE (readable by you only; replaces FILE; "
        "never the database read; a link another user owns in a sticky directory such as "
        "/tmp is not followed)",
    )
    report.add_argument(
        "--thresholds",
        type=_thresholds,
        metavar="T1,T2",
        help="candidate confidence thresholds for the what-if, below the strategies' own "
        "(default: steps of 0.05 below each strategy's threshold down to its lowest score, "
        "4 to 10 of them)",
    )
    report.add_argument(
        "--top",
        type=_count,
        default=10,
        metavar="N",
        help="repeated queries to list (default 10; 0 leaves the section out)",
    )
    report.set_defaults(run=_report)

    tail = commands.add_parser(
        "tail",
        parents=[colour],
        help="follow new failures live, like tail -f",
        description="Print the last failures, then new ones as they are written, until Ctrl-C.",
    )
    database(tail)
    choices(tail)
    tail.add_argument(
        "-n", "--lines", type=_count, default=10, metavar="N", help="show the last N first (10)"
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
        parents=[colour],
        help="stream failures as JSON Lines or CSV",
        description="Write failures oldest first as JSON Lines (exact) or CSV (NULL as an "
        "empty field), streaming in constant memory.",
    )
    database(export)
    export.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        help="jsonl or csv (default: csv when -o FILE ends in .csv, else jsonl)",
    )
    export.add_argument(
        "--raw",
        action="store_true",
        help="CSV only: write text cells as stored, even those a spreadsheet would run as a "
        "formula (by default a cell beginning with = + - @ TAB or CR gets a ' in front)",
    )
    time_range(export)
    choices(export)
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write to FILE, readable by you only, replacing it when done (default: stdout); "
        "never the database read; a link another user owns in a sticky directory such as "
        "/tmp is not followed",
    )
    export.set_defaults(run=_export)

    purge = commands.add_parser(
        "purge",
        parents=[colour],
        help="delete old failures in chunks",
        description="Delete failures older than a duration (or a UTC time), in short "
        "transactions with a pause between them so that a logger writing to the file is not "
        "held up. A file the library created gives the space back as it goes; another "
        "(auto_vacuum off, as the reference application makes them) keeps it for new rows "
        "unless --vacuum is given.",
    )
    database(
        purge,
        "the SQLite file or postgresql:// URL (rows are deleted from it; --dry-run only "
        "reads); on PostgreSQL, one purge of the fleet runs at a time",
    )
    purge.add_argument(
        "--older-than", type=_time_bound, required=True, metavar="WHEN", help="e.g. 30d"
    )
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    purge.add_argument(
        "--vacuum",
        action="store_true",
        help="SQLite: then VACUUM the file, giving its free pages back to the OS and turning "
        "incremental auto_vacuum on, so that later purges give space back by themselves. "
        "It holds the write lock throughout (loggers wait, retrying for their retry_timeout) "
        "and needs free disk for about twice the data; see docs/production.md",
    )
    purge.set_defaults(run=_purge)

    demo = commands.add_parser(
        "demo",
        parents=[colour],
        help="run a simulated retrieval service that logs its failures, then report",
        description="Run a trio program with many concurrent recall tasks against an "
        "in-memory corpus; every failed recall goes through the library. Shows logged, "
        "written and dropped records per second, then the report and the HTML page.",
    )
    demo.add_argument(
        "--db",
        "--database",
        dest="db",
        default=DEFAULT_DEMO_DB,
        metavar="DB",
        help=f"an SQLite path or a postgresql:// URL (default ./{DEFAULT_DEMO_DB})",
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
        help="the logger's buffer (8192); the writer holds up to two batches besides, so "
        "records drop only when they come faster than the database takes them",
    )
    demo.add_argument("--seed", type=int, metavar="N", help="make the queries repeatable")
    demo.add_argument(
        "--html",
        metavar="FILE",
        help="where to write the HTML report, readable by you only (default: next to --db, "
        f"or ./{DEFAULT_DEMO_HTML} for a URL)",
    )
    demo.add_argument(
        "--metrics",
        action="store_true",
        help="instrument the logger with OpenTelemetry and print the metrics at the end "
        "(needs the otel extra and opentelemetry-sdk)",
    )
    demo.set_defaults(run=_demo)
    return parser


# --------------------------------------------------------------------------- commands


def _write_html(
    path: str, summary: FailureSummary, database: str, read: str, *, repeated: bool = True
) -> Path:
    from ._html import render_html

    page = render_html(summary, database=database, repeated_queries=repeated)
    with _output_file(path, csv_mode=False, read=read) as stream:
        stream.write(page)
    return Path(path)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The reader's filter arguments from ``--since/--until/--type/--strategy``."""
    return {
        "since": args.since,
        "until": args.until,
        "failure_type": args.failure_type,
        "strategy": args.strategy,
    }


def _check_range(args: argparse.Namespace) -> None:
    """Refuse a ``--since`` that is not before ``--until`` (usage: ValueError), as both
    read now: such a range holds nothing, which would read as "no failures"."""
    if args.since is None or args.until is None:
        return
    now = datetime.now(UTC).replace(microsecond=0)
    since = created_at_text(args.since, now=now)
    until = created_at_text(args.until, now=now)
    if (epoch_seconds(since) or 0.0) >= (epoch_seconds(until) or 0.0):
        raise ValueError(
            f"--since ({since} UTC) must be before --until ({until} UTC); "
            "a duration counts back from now, so --since 24h --until 1h is the day before the "
            "last hour"
        )


def _threshold_notes(summary: FailureSummary, thresholds: tuple[float, ...] | None) -> list[str]:
    """Lines for ``--thresholds`` values that cannot recover anything: at or above a
    strategy's own threshold (a what-if is about lowering it)."""
    if not thresholds:
        return []
    notes = []
    for item in summary.low_confidence:
        if item.threshold is None:
            continue
        high = sorted({t for t in thresholds if t >= item.threshold}, reverse=True)
        if high:
            shown = ", ".join(f"{t:g}" for t in high)
            notes.append(
                f"--thresholds {shown}: not below the threshold of {item.strategy!r} "
                f"({item.threshold:g}); a what-if lowers the threshold"
            )
    return notes


def _report(args: argparse.Namespace, out: Console) -> int:
    _check_range(args)
    with FailureReader(args.database) as reader:
        summary = reader.summary(**_filters(args), thresholds=args.thresholds, top_queries=args.top)
    for note in _threshold_notes(summary, args.thresholds):
        print(f"{PROG}: note: {note}", file=sys.stderr)
    if args.html:
        target = _write_html(
            args.html, summary, database_label(args.database), args.database, repeated=args.top > 0
        )
    if args.json:
        out.stream.write(json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.report(summary, database_label(args.database), repeated_queries=args.top > 0)
    if args.html:
        (sys.stderr if args.json else out.stream).write(f"HTML report: {target}\n")
    return 0


def _tail(args: argparse.Namespace, out: Console) -> int:
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
def _output_file(path: str | None, csv_mode: bool, read: str) -> Iterator[TextIO]:
    """``path`` (stdout when None) opened by :func:`private_text_file`, which refuses
    to write over ``read``, the database the command reads, when it is a file."""
    if path is None:
        if csv_mode:
            # csv wants newline="" so that it controls line endings itself.
            sys.stdout.reconfigure(newline="")  # type: ignore[union-attr]
        yield sys.stdout
        return
    try:
        protect = () if is_postgres_url(read) else (read,)
        with private_text_file(path, newline="" if csv_mode else None, protect=protect) as stream:
            yield stream
    except OSError as exc:
        raise CommandError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def _export_format(args: argparse.Namespace) -> str:
    """``--format``, or the one ``-o``'s suffix names (JSON Lines otherwise)."""
    if args.format is not None:
        return str(args.format)
    if args.output is not None and args.output.lower().endswith(".csv"):
        return "csv"
    return "jsonl"


def _export(args: argparse.Namespace, out: Console) -> int:
    _check_range(args)
    fmt = _export_format(args)
    if args.raw and fmt != "csv":
        raise ValueError("--raw applies to CSV only (--format csv)")
    progress = Console(sys.stderr, use_rich=False) if args.output else None
    with FailureReader(args.database) as reader:
        total = reader.count(**_filters(args))
        rows = reader._rows(Filters.build(**_filters(args)))  # no records: see write_csv

        def on_row(count: int) -> None:
            if progress is not None and (count % 1000 == 0 or count == total):
                progress.status(f"exported {count:,} of {total:,} rows")

        with _output_file(args.output, fmt == "csv", args.database) as stream:
            if fmt == "csv":
                count = write_csv(rows, stream, on_row, neutralise=not args.raw)
            else:
                count = write_jsonl(rows, stream, on_row)
        everything = reader.count() if count == 0 else None
    if progress is not None:
        progress.clear_status()
    kind = "CSV" if fmt == "csv" else "JSON Lines"
    where = f" to {args.output} as {kind}" if args.output else ""
    if everything is not None:
        # Say why there is nothing, once (on stderr: stdout may be the export itself).
        why = (
            "the database holds no failures at all"
            if everything == 0
            else f"none of the {everything:,} failures in the database matches"
        )
        print(f"{PROG}: exported 0 rows{where}: {why}", file=sys.stderr)
    elif progress is not None:
        progress.line(f"exported {plural(count, 'row')}{where}")
    return 0


def _purge(args: argparse.Namespace, out: Console) -> int:
    from ._backends import reclaimable_bytes, vacuum_database
    from ._database import is_postgres_url
    from ._purge import purge_older_than

    if args.vacuum and args.dry_run:
        raise ValueError("--vacuum and --dry-run do not go together")  # usage: exit status 2
    if args.vacuum and is_postgres_url(args.database):
        vacuum_database(args.database)  # refuses a URL, before anything is deleted
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
        return 0
    out.line(f"deleted {deleted:,} rows older than {cutoff} UTC")
    if is_postgres_url(args.database):
        return 0
    if args.vacuum:
        progress.status("vacuuming (the write lock is held until done)...")
        done = vacuum_database(args.database)
        progress.clear_status()
        turned = (
            f"; auto_vacuum now incremental (was {done.auto_vacuum_before}): later purges "
            "give space back by themselves"
            if done.auto_vacuum_before != done.auto_vacuum_after
            else ""
        )
        out.line(f"vacuumed: {_mb(done.bytes_before)} -> {_mb(done.bytes_after)} on disk{turned}")
    elif (free := reclaimable_bytes(args.database)) >= _WORTH_A_VACUUM:
        out.line(
            f"the file keeps {_mb(free)} of free pages, which new rows reuse; "
            "--vacuum gives them back to the OS"
        )
    return 0


#: Free pages below this are not worth mentioning after a purge (bytes).
_WORTH_A_VACUUM: Final = 1 << 20


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _demo(args: argparse.Namespace, out: Console) -> int:
    import trio

    from ._demo import DemoProgress, run_demo

    provider, collect = _metrics_reader() if args.metrics else (None, None)

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

    check_database(args.db)  # ValueError: another kind of URL, before anything is shown
    shown = database_label(args.db)
    out.line(
        f"Simulating a retrieval service for {args.duration:g} s at {args.rate:g} requests/s; "
        f"failures go to {shown}"
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
            meter_provider=provider,
            collect_metrics=collect,
        )
    )
    out.clear_status()
    stats = result.statistics
    dropped = stats.dropped_full + stats.dropped_closed
    out.line(
        f"{result.requests:,} requests in {result.seconds:.1f} s: {stats.accepted:,} failures "
        f"logged, {stats.written:,} written, {dropped:,} dropped, {stats.failed:,} failed"
    )
    achieved = result.requests / result.seconds if result.seconds > 0 else 0.0
    if achieved < 0.9 * args.rate:
        # Say so: a run that silently makes half the requests asked misleads.
        why = (
            f"all {int(args.concurrency):,} request slots were busy at times (raise --concurrency)"
            if result.slot_waits
            else "this machine could not start them faster"
        )
        out.line(f"Reached {achieved:,.0f} requests/s of the {args.rate:,.0f} asked: {why}")
    out.line()
    with FailureReader(args.db) as reader:
        summary = reader.summary(since=result.started_at)
    out.report(summary, shown)
    url = is_postgres_url(args.db)
    html_path = args.html or (DEFAULT_DEMO_HTML if url else str(Path(args.db).with_suffix(".html")))
    target = _write_html(html_path, summary, shown, args.db)
    out.line()
    out.line(f"Database:    {shown if url else Path(args.db).resolve()}")
    out.line(f"HTML report: {target.resolve()}")
    # The command as the user's shell can run it: nox's demo session names
    # itself, because trio-failurelog is only on that session's PATH.
    for line in next_commands(os.environ.get("TRIO_FAILURELOG_PROG") or _runnable_prog(), args.db):
        out.line(line)
    if result.metrics is not None:
        out.line()
        out.line("Metrics (OpenTelemetry, at the end of the run):")
        for line in _metric_lines(result.metrics):
            out.line(f"  {line}")
    if provider is not None:
        provider.shutdown()
    return 0


def _runnable_prog() -> str:
    """How the user's shell runs this command: ``trio-failurelog`` when that is
    on PATH, else this Python with ``-m trio_failurelog`` (a virtual
    environment's script is on PATH only once it is activated)."""
    if shutil.which(PROG) is not None:
        return PROG
    return f"{shlex.quote(sys.executable)} -m trio_failurelog"


def next_commands(prog: str, database: str) -> list[str]:
    """The demo's closing hint: commands to look further, as a shell runs them when pasted.

    Quoted for the shell. A URL goes without its password (a masked one would
    fail when pasted, the real one must not be printed): libpq takes it from
    ``PGPASSWORD`` or ``~/.pgpass``, which a second line says.
    """
    plain, password = without_password(database) if is_postgres_url(database) else (database, None)
    db = shlex.quote(plain)
    lines = [f"Next: {prog} report {db} --since 1h   |   {prog} tail {db}"]
    if password is not None:
        lines.append(
            "      (no password shown: set PGPASSWORD or add a ~/.pgpass line, where libpq "
            "looks for it)"
        )
    return lines


def _metrics_reader() -> tuple[Any, Callable[[], object]]:
    """A meter provider with an in-memory reader, and the function that collects it.

    Raises :exc:`CommandError` naming what to install when the SDK is missing.
    """
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        raise CommandError(
            "demo --metrics needs the OpenTelemetry SDK: pip install opentelemetry-sdk, "
            f"and the 'otel' extra: {install_hint('otel')}"
        ) from None
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]), reader.get_metrics_data


def _metric_lines(data: Any) -> list[str]:
    """One line per data point: name, attributes, value, unit."""
    lines: list[str] = []
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = ", ".join(
                        f"{key}={value}" for key, value in sorted(point.attributes.items())
                    )
                    value = getattr(point, "value", None)
                    lines.append(f"{metric.name} {{{attributes}}} {value} {metric.unit}".rstrip())
    return lines


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
    if args.color == "always" and not rich_available():
        print(f"{PROG}: error: --color always needs rich: {INSTALL_HINT}", file=sys.stderr)
        return 2
    out = Console(
        sys.stdout,
        use_rich=colour_wanted(args.color, sys.stdout),
        force_colour=args.color == "always",
    )
    with _library_log_to(sys.stderr):
        return _run(args, out)


@contextlib.contextmanager
def _library_log_to(stream: TextIO) -> Iterator[None]:
    """Show the library's warnings on ``stream`` while a command runs, each on a line
    of its own: a live status line on the terminal is ended first."""
    handler = StatusAwareLogHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(message)s"))
    library = logging.getLogger("trio_failurelog")
    library.addHandler(handler)
    try:
        yield
    finally:
        library.removeHandler(handler)


def _run(args: argparse.Namespace, out: Console) -> int:
    try:
        status: int = args.run(args, out)
        return status
    except (ValueError, TypeError) as exc:
        # The library's argument checks, should one get past the parser's: usage.
        out.clear_status()
        print(f"{PROG}: error: {args.command}: {exc} (see --help)", file=sys.stderr)
        return 2
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
