"""Where no server can be started the PostgreSQL tests skip, except under CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._server import BINDIR_VARIABLE

ROOT = Path(__file__).resolve().parent.parent.parent
A_TEST = "tests/postgres/test_interface.py::test_store_repr_and_name_hold_no_password"


def _run_without_postgres(ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env[BINDIR_VARIABLE] = "/nonexistent"
    if ci is not None:
        env["CI"] = ci
    return _run_a_test(env)


def _run_a_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", A_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_skips_with_the_reason_outside_ci() -> None:
    done = _run_without_postgres(None)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "no initdb" in done.stdout


@pytest.mark.parametrize("ci", ["true", "TRUE"])
def test_fails_under_ci(ci: str) -> None:
    done = _run_without_postgres(ci)
    assert done.returncode != 0, done.stdout
    assert "CI=true, and the PostgreSQL tests cannot run" in done.stdout


def test_runs_when_the_sbin_directories_are_not_on_path() -> None:
    # A user's PATH often lacks /usr/sbin, where Debian keeps runuser (which the
    # server needs under root): the tests must still run, not skip.
    path = os.pathsep.join(
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if d.rstrip("/") not in ("/usr/sbin", "/sbin")
    )
    done = _run_a_test({**os.environ, "PATH": path})
    assert done.returncode == 0, done.stdout
    assert "1 passed" in done.stdout, done.stdout
