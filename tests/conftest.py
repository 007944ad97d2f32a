"""Shared fixtures and options for the whole suite."""

from __future__ import annotations

import logging
import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import trio.testing
from hypothesis import settings

# Hypothesis's 200 ms deadline measures the machine, not the code: on a shared
# 2-core CI runner a real SQLite file or a subprocess takes longer now and then,
# and the flaky-deadline error says nothing about correctness.
settings.register_profile("trio-failurelog", deadline=None)
settings.load_profile("trio-failurelog")

# Set by nox -s release, which runs the suite against the installed wheel.
INSTALLED_ENV = "TRIO_FAILURELOG_TEST_INSTALLED"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(INSTALLED_ENV) == "1":
        import trio_failurelog

        imported = Path(trio_failurelog.__file__).resolve()
        site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
        if not imported.is_relative_to(site_packages):
            raise pytest.UsageError(
                f"{INSTALLED_ENV}=1, but trio_failurelog was imported from {imported}, "
                f"not from {site_packages}: the suite would not test the installed wheel"
            )
    # The plugin comes with the installed package (the pytest11 entry point);
    # registered here too when the suite runs from a source tree (PYTHONPATH=src).
    import trio_failurelog.pytest_plugin as plugin

    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "trio_failurelog")


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
def virtual_time(autojump_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    """pytest-trio's autojumping mock clock, as users have it: nothing patched.

    The library's waits on its worker thread take no virtual time (see
    ``trio_failurelog._threads.holding_virtual_time``), so deadlines hold.
    """
    return autojump_clock
