"""``python -m benchmarks [--smoke] [--out bench-results.json]``: run every figure."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import os
import platform
import sqlite3
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from . import hot_path, latency, memory, postgres, reading, retention, throughput
from ._common import Params
from ._report import table, targets

#: Every figure, in the order they run. Memory goes first, while this process is
#: small: its subprocess then starts from a small parent.
FIGURES: Final = (
    "memory",
    "hot_path",
    "throughput",
    "latency",
    "postgres",
    "reading",
    "retention",
)
#: What runs when --only is not given: all but PostgreSQL, which needs a server.


def _versions() -> dict[str, Any]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "trio": version("trio"),
        "aiosqlite": version("aiosqlite"),
        "psycopg": version("psycopg"),
        "trio_failurelog": version("trio-failurelog"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks that it all runs")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the databases go (default: a temp dir)"
    )
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {', '.join(FIGURES)} (default: all; postgres when"
        " a server can be had, with a note otherwise)",
    )
    parser.add_argument(
        "--pg-url",
        default=None,
        help="postgres figure: a server to use (a role that may CREATE DATABASE);"
        " default: start a throw-away one from the local PostgreSQL installation",
    )
    parser.add_argument(
        "--reading-rows",
        type=int,
        default=None,
        help="reading figure: rows in the big table (default 1,000,000; the issue's: 10,000,000)",
    )
    parser.add_argument(
        "--retention-rows",
        type=int,
        default=None,
        help="retention figure: rows in the table (default 1,000,000; the issue's: 10,000,000)",
    )
    parser.add_argument(
        "--reading-pg",
        action="store_true",
        help="reading figure: also load the rows into PostgreSQL and report from there",
    )
    args = parser.parse_args(argv)
    asked = args.only is not None
    only = [name.strip() for name in (args.only or ",".join(FIGURES)).split(",") if name.strip()]
    unknown = sorted(set(only) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figure(s): {', '.join(unknown)}")

    # Drops are the point of some figures; the library warns about them once.
    logging.getLogger("trio_failurelog").setLevel(logging.ERROR)
    params = Params.smoke_sized() if args.smoke else Params.full()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "smoke": params.smoke,
            "versions": _versions(),
        },
        "parameters": params.as_json(),
    }
    with tempfile.TemporaryDirectory(prefix="failurelog-bench-", dir=args.dir) as tmp:
        directory = Path(tmp)
        for figure in FIGURES:
            if figure not in only:
                continue
            print(f"running {figure} ...", file=sys.stderr, flush=True)
            if figure == "memory":
                results["memory"] = memory.run(params, directory)
            elif figure == "hot_path":
                results["hot_path"] = hot_path.run(params)
            elif figure == "throughput":
                results.update(throughput.run(params, directory))
            elif figure == "postgres":
                pg_params = (
                    postgres.PgParams.smoke_sized() if params.smoke else postgres.PgParams.full()
                )
                try:
                    results["postgres"] = postgres.run(pg_params, args.pg_url)
                except postgres.Unavailable as exc:
                    if asked:
                        print(f"error: the postgres figure cannot run: {exc}", file=sys.stderr)
                        return 1
                    print(f"note: the postgres figure was not run: {exc}", file=sys.stderr)
            elif figure == "reading":
                reading_params = (
                    reading.ReadingParams.smoke_sized()
                    if params.smoke
                    else reading.ReadingParams.full(args.reading_rows)
                )
                with contextlib.ExitStack() as stack:
                    url = None
                    if args.reading_pg:
                        url = stack.enter_context(postgres._server_url(args.pg_url))
                    results["reading"] = reading.run(reading_params, directory, url)
            elif figure == "retention":
                retention_params = (
                    retention.RetentionParams.smoke_sized()
                    if params.smoke
                    else retention.RetentionParams.full(args.retention_rows)
                )
                results["retention"] = retention.run(retention_params, directory)
            else:
                results["latency"] = latency.run(params, directory)
    results["meta"]["seconds"] = time.perf_counter() - started
    results["targets"] = [target.as_json() for target in targets(results)]

    versions = results["meta"]["versions"]
    print(
        f"trio-failurelog benchmarks, {results['meta']['date']}"
        f"{' (smoke sizes)' if params.smoke else ''}: Python {versions['python']},"
        f" SQLite {versions['sqlite']}, trio {versions['trio']}, {versions['cpus']} CPUs\n"
    )
    print(table(results))
    if "reading" in results:
        print("\n" + reading.table(results["reading"]))
    if "retention" in results:
        print("\n" + retention.table(results["retention"]))
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
