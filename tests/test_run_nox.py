"""tools/run_nox.py finds the Pythons as CI does and says what it skipped."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import run_nox  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def _executable(path: Path, status: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\nexit {status}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_pyenv_builds_are_linked_and_a_missing_python_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pyenv = tmp_path / "pyenv" / "versions"
    # Two patch releases of 3.97 (the newest is taken, 3.97.10 after 3.97.9) and a
    # pre-release build that is not one; 3.98 nowhere; on PATH, 3.96 works and a
    # broken 3.97 stands where a pyenv shim that has no version selected would.
    _executable(pyenv / "3.97.9" / "bin" / "python3.97", 0)
    newest = _executable(pyenv / "3.97.10" / "bin" / "python3.97", 0)
    _executable(pyenv / "3.97.11-dev" / "bin" / "python3.97", 0)
    on_path = tmp_path / "path"
    _executable(on_path / "python3.96", 0)
    _executable(on_path / "python3.97", 1)
    monkeypatch.setenv("PATH", str(on_path))
    links = tmp_path / "links"

    missing = run_nox.find_pythons(["3.96", "3.97", "3.98"], pyenv=pyenv, links=links)

    assert missing == ["3.98"]
    assert (links / "python3.97").resolve() == newest
    assert not (links / "python3.96").exists()  # PATH's own works
    assert os.environ["PATH"].split(os.pathsep)[0] == str(links)


def test_the_closing_line_names_what_was_skipped_and_why(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    sessions = [
        {"signatures": ["lint"], "result": "success"},
        {"signatures": ["tests-3.11"], "result": "skipped"},
        {"signatures": ["tests-3.12"], "result": "failed"},
        {"signatures": ["bench"], "result": "skipped"},
    ]
    report.write_text(json.dumps({"result": 0, "sessions": sessions}), encoding="utf-8")
    line = run_nox.closing_line(report, missing=["3.11"])
    assert line.startswith("tools/run_nox.py: success: lint; failed: tests-3.12; skipped: ")
    assert "tests-3.11 (no python3.11 on PATH or in " in line
    assert "bench (the session skipped itself: see its output above)" in line
    everything = [{"signatures": ["lint"], "result": "success"}]
    report.write_text(json.dumps({"result": 0, "sessions": everything}), encoding="utf-8")
    assert "skipped: no session" in run_nox.closing_line(report, missing=[])


def test_the_closing_line_without_a_report(tmp_path: Path) -> None:
    line = run_nox.closing_line(tmp_path / "none.json", missing=[])
    assert line == "tools/run_nox.py: nox wrote no report (see its output above)"


def test_the_pythons_are_the_noxfiles() -> None:
    import noxfile

    assert run_nox.tested_pythons() == noxfile.PYTHONS
