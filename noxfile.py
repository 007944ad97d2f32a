"""The project's one entry point. ``nox -s lint typecheck tests`` is what CI runs.

CI sessions: ``lint``, ``typecheck``, ``tests``.
By hand: ``bench`` (full benchmarks), ``demo``, ``screenshot`` (HTML report in
headless Chromium), ``stress`` and ``soak`` (long reliability runs).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

TEST_DEPS = ["pytest>=8", "pytest-trio>=0.8", "hypothesis>=6.100"]
BENCH_DEPS = ["aiosqlite>=0.20"]


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite, including a tiny smoke run of the benchmarks."""
    session.install("-e", ".[test,cli,postgres]", *BENCH_DEPS)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check`` and ``ruff format --check`` over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` over src, tests, benchmarks and this file."""
    session.install("-e", ".[test,cli,postgres]", *BENCH_DEPS, "mypy>=1.10", "nox")
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """All benchmarks: prints one table, writes bench-results.json."""
    session.install("-e", ".[postgres]", *BENCH_DEPS)  # postgres: for --only postgres
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The library at work: a simulated retrieval service logging its failures."""
    session.install("-e", ".[cli]")
    session.run("trio-failurelog", "demo", *session.posargs)


@nox.session
def screenshot(session: nox.Session) -> None:
    """Render the HTML report in headless Chromium (Debian's ``chromium``) to a PNG."""
    session.install("-e", ".[cli]")
    session.run("python", "tools/screenshot_report.py", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The long reliability tests (many SIGKILL trials, heavy contention)."""
    session.install("-e", ".[test,cli]")
    session.run("pytest", "tests/reliability", "--stress", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Ten minutes at a steady rate with retention purges; reports RSS and file size."""
    session.install("-e", ".")
    session.run("python", "tools/soak.py", *session.posargs)
