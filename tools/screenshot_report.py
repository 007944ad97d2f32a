"""Render the HTML report in headless Chromium and save a screenshot (``nox -s screenshot``).

Runs the demo for a few seconds into a fresh database, writes the HTML report,
and has Debian's ``chromium`` draw it to a PNG, so that a person can check the
page looks right. Chromium gets the local file only, with its background
networking, updates and sync turned off. Usage::

    python tools/screenshot_report.py [--duration 8] [--out out/report.png]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

from trio_failurelog._demo import run_demo
from trio_failurelog._html import render_html
from trio_failurelog._reader import FailureReader

CHROMIUM = "/usr/bin/chromium"


def chromium_command(html: Path, png: Path, profile: Path, size: str) -> list[str]:
    """The Chromium invocation: headless, no network features, a throwaway profile."""
    return [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        f"--window-size={size}",
        "--hide-scrollbars",
        html.resolve().as_uri(),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="demo seconds (8)")
    parser.add_argument("--rate", type=float, default=300.0, help="demo requests/s (300)")
    parser.add_argument("--out", type=Path, default=Path("out/report.png"), help="the PNG")
    parser.add_argument("--size", default="1100,2600", help="window WIDTH,HEIGHT (1100,2600)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        print(
            f"{CHROMIUM} not found: install Debian's chromium first "
            "(sudo apt-get install chromium)",
            file=sys.stderr,
        )
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="failurelog-shot-") as tmp:
        work = Path(tmp)
        db = work / "demo.db"
        print(f"running the demo for {args.duration:g} s ...")
        result = trio.run(lambda: run_demo(db, duration=args.duration, rate=args.rate, seed=42))
        with FailureReader(db) as reader:
            summary = reader.summary(since=result.started_at)
        html = args.out.with_suffix(".html")
        html.write_text(render_html(summary, database="demo.db"), encoding="utf-8")
        command = chromium_command(html, args.out.resolve(), work / "profile", args.size)
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not args.out.exists():
        print(f"chromium failed ({completed.returncode}):\n{completed.stderr}", file=sys.stderr)
        return 1
    print(f"HTML report: {html.resolve()}")
    print(f"screenshot:  {args.out.resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
