"""Shared fixtures and options for the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing

from trio_failurelog._threads import SerialThread, run_inline, start_inline


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--stress",
        action="store_true",
        default=False,
        help="run the long reliability tests at full size (nox -s stress)",
    )


@pytest.fixture
def stress(request: pytest.FixtureRequest) -> bool:
    """Whether the long reliability runs were asked for with --stress."""
    return bool(request.config.getoption("--stress"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a database file that does not exist yet."""
    return tmp_path / "failures.db"


@pytest.fixture
def lib_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog capturing the library's logger at DEBUG."""
    with caplog.at_level(logging.DEBUG, logger="trio_failurelog"):
        yield caplog


@pytest.fixture
def virtual_time(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> trio.testing.MockClock:
    """trio's autojumping mock clock, with the writer's SQLite calls made inline.

    Autojump advances the clock whenever every task is blocked, and a task
    waiting for a worker thread counts as blocked: deadlines would expire
    while a real thread writes. Running the blocking calls on the event loop's
    thread (after a checkpoint) keeps virtual time exact. Tests of the thread
    hand-off itself use real threads and no mock clock.
    """

    monkeypatch.setattr(SerialThread, "_to_thread", staticmethod(run_inline))
    monkeypatch.setattr(SerialThread, "_start_thread", staticmethod(start_inline))
    return autojump_clock
