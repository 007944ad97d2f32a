"""Security: parameterised SQL, owner-only files, validated CLI arguments.

SQL-injection-shaped text goes through every record field (see also
``test_hostile_input``) and every CLI filter; it must match itself literally
and leave the file untouched. New files are created owner-only. The CLI's
duration and path arguments are validated, and a path to a file that is not a
database is refused without being modified.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest
import trio

from trio_failurelog import TABLE, RetrievalFailureRecord, _cli, open_failure_logger

from ._helpers import row_count
from .test_hostile_input import SQL_SHAPED

SHAPED_STRATEGY = "x' OR '1'='1"


def _fingerprint(path: Path) -> tuple[str, int, list[str]]:
    """Content hash, mtime and the sibling files, to prove nothing was touched."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    return digest, mtime, sorted(p.name for p in path.parent.iterdir())


async def _fill(database: Path) -> None:
    async with open_failure_logger(database) as logger:
        for strategy in ["semantic", "keyword", SHAPED_STRATEGY, *SQL_SHAPED]:
            for failure_type in ("no_hit", "timeout"):
                logger.log(RetrievalFailureRecord(failure_type, strategy, f"{strategy}?"))


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    database = tmp_path / "filled.db"
    trio.run(_fill, database)
    return database


def _run(argv: list[str]) -> int:
    try:
        return _cli.main(argv)
    except SystemExit as exit:  # argparse usage errors
        return int(exit.code or 0)


@pytest.mark.parametrize("shaped", [SHAPED_STRATEGY, *SQL_SHAPED])
def test_cli_filters_take_sql_shaped_text_literally(
    filled: Path, shaped: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _fingerprint(filled)
    total = row_count(filled)

    # --strategy matches exactly the rows that have this text, nothing more.
    assert _run(["export", str(filled), "--format", "jsonl", "--strategy", shaped]) == 0
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["retrieval_strategy"] for row in exported] == [shaped, shaped]

    # --type: shaped text is no failure type: a usage error naming the valid ones.
    status = _run(["export", str(filled), "--type", shaped])
    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert "unknown failure type" in captured.err

    assert _run(["report", str(filled), "--json", "--strategy", shaped]) == 0
    capsys.readouterr()

    # tail prints its backlog, then polls; the first poll is interrupted.
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "sleep", interrupt)
    assert _run(["tail", str(filled), "--json", "--strategy", shaped]) == 130
    tailed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["retrieval_strategy"] for row in tailed] == [shaped, shaped]

    # Durations are validated before any SQL sees them.
    assert _run(["purge", str(filled), "--older-than", shaped]) == 2
    assert _run(["export", str(filled), "--since", shaped]) == 2
    assert "invalid" in capsys.readouterr().err

    assert row_count(filled) == total
    assert _fingerprint(filled) == before


@pytest.mark.parametrize(
    "duration",
    ["", "-5d", "5", "1.5d", "NaN", "inf", "3x", "1e999d", "9" * 40 + "d", "5d; DELETE", "d"],
)
def test_cli_durations_are_validated(
    filled: Path, duration: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _fingerprint(filled)
    for argv in (
        ["purge", str(filled), "--older-than", duration],
        ["report", str(filled), "--since", duration],
        ["export", str(filled), "--until", duration],
    ):
        assert _run(argv) == 2, argv
        err = capsys.readouterr().err
        assert "error" in err
        assert "Traceback" not in err
    assert _fingerprint(filled) == before


def test_cli_purge_with_a_valid_duration_deletes_only_older_rows(
    filled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = row_count(filled)
    assert _run(["purge", str(filled), "--older-than", "1d"]) == 0
    assert row_count(filled) == total  # all rows are newer than a day


@pytest.fixture(params=["text", "empty", "garbage", "directory", "missing", "sqlite-without-table"])
def not_a_failure_database(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    path = tmp_path / "target"
    kind = request.param
    if kind == "text":
        path.write_text("my notes\n" * 100)
    elif kind == "empty":
        path.touch()
    elif kind == "garbage":
        path.write_bytes(os.urandom(8192))
    elif kind == "directory":
        path.mkdir()
    elif kind == "sqlite-without-table":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE other (x)")
        conn.commit()
        conn.close()
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["export"],
        ["purge", "--older-than", "1d"],
        ["purge", "--older-than", "1d", "--dry-run"],
    ],
)
def test_cli_refuses_a_path_that_is_no_failure_database_without_modifying_it(
    not_a_failure_database: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = not_a_failure_database
    before = _fingerprint(path)
    assert _run([command[0], str(path), *command[1:]]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "error" in err
    assert "Traceback" not in err
    assert _fingerprint(path) == before  # no bytes, no mtime, no -wal/-shm/-journal


def test_cli_demo_refuses_a_non_database_file_without_modifying_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 50)
    before = _fingerprint(path)
    assert _run(["demo", "--db", str(path), "--duration", "1", "--seed", "1"]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert _fingerprint(path) == before


async def test_new_database_files_are_owner_only(db_path: Path) -> None:
    old = os.umask(0)  # not thanks to a strict umask
    try:
        async with open_failure_logger(db_path) as logger:
            logger.log(RetrievalFailureRecord("no_hit", "semantic", "secret user text"))
            await logger.flush()
            modes = {
                suffix: os.stat(f"{db_path}{suffix}").st_mode & 0o777
                for suffix in ("", "-wal", "-shm")
            }
    finally:
        os.umask(old)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


async def test_an_existing_files_permissions_are_kept(db_path: Path) -> None:
    # How to share the file: create it first with the mode you want.
    os.close(os.open(db_path, os.O_CREAT | os.O_WRONLY, 0o640))
    os.chmod(db_path, 0o640)  # whatever the umask
    async with open_failure_logger(db_path) as logger:
        logger.log(RetrievalFailureRecord("no_hit", "semantic", "q"))
    assert os.stat(db_path).st_mode & 0o777 == 0o640
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (1,)
    finally:
        conn.close()
