"""Every CLI command on a postgresql:// URL; a password never shows, whatever goes wrong."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import textwrap
import traceback
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_failurelog import DatabaseSetupError, FailureReader, _cli, open_failure_reader
from trio_failurelog._cli import main
from trio_failurelog._table import TABLE
from trio_failurelog._timetext import format_created_at

from .._failuredb import row
from ._server import PgServer, _free_port
from .test_reading import load_pg

# Distinctive, and with the characters a URL must escape: '#', '?', '@', ':', '/'.
SECRET = "Zq#9?x@W:k/DISTINCT-PW"
SECRET_PARTS = (SECRET, urllib.parse.quote(SECRET, safe=""), "DISTINCT-PW")
SECRET_ROLE = "pw_reader"

ROWS = [
    row(
        ["no_hit", "low_confidence", "timeout"][i % 3],
        ["semantic", "keyword"][i % 2],
        f"query {i % 4}",
        format_created_at(__import__("datetime").datetime(2024, 1, 1, 0, i)),
        top_score=0.5 if i % 3 == 1 else None,
        threshold=0.7 if i % 3 == 1 else None,
        latency_ms=10 * i,
    )
    for i in range(12)
]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for part in SECRET_PARTS:
            assert part not in text, text


Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    try:
        code = main(list(argv))
    except SystemExit as exit:
        code = int(exit.code or 0)
    out, err = capsys.readouterr()
    assert_no_secret(out, err)
    return code, out, err


@pytest.fixture(scope="session")
def secret_role(pg_server: PgServer) -> str:
    with pg_server.admin_connect() as conn:
        found = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SECRET_ROLE,))
        if found.fetchone() is None:
            conn.execute(
                f"CREATE ROLE {SECRET_ROLE} LOGIN PASSWORD '{SECRET.replace(chr(39), chr(39) * 2)}'"
            )
    return SECRET_ROLE


@pytest.fixture
def url(pg_server: PgServer, pg_db: str, admin: Any, secret_role: str) -> str:
    """A URL with the distinctive password, to a database holding :data:`ROWS`."""
    load_pg(admin, ROWS)
    admin.execute(f"GRANT ALL ON {TABLE} TO {secret_role}")
    admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {secret_role}")
    return pg_server.url(pg_db, user=secret_role, password=SECRET)


# ---------------------------------------------------------------- every command works


def test_report(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    code, out, err = run(capsys, "report", url, "--until", "2024-01-02")
    assert (code, err) == (0, "")
    assert "12 failures (no_hit 4, low_confidence 4, timeout 4)" in out
    assert f"{SECRET_ROLE}:***@127.0.0.1" in out  # the database, named without its password
    code, out, err = run(capsys, "report", url, "--json", "--type", "timeout")
    assert code == 0
    assert json.loads(out)["total"] == 4
    page = tmp_path / "r.html"
    code, out, err = run(capsys, "report", url, "--html", str(page))
    assert code == 0
    html = page.read_text()
    assert "Retrieval failures" in html
    assert_no_secret(html)


def test_export(capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path) -> None:
    code, out, err = run(capsys, "export", url, "--strategy", "keyword")
    assert (code, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["query_text"] for r in records] == ["query 1", "query 3"] * 3
    assert records[0]["created_at"] == "2024-01-01 00:01:00"
    assert records[0]["top_score"] == 0.5
    target = tmp_path / "x.csv"
    code, out, err = run(capsys, "export", url, "--format", "csv", "-o", str(target))
    assert code == 0
    assert "exported 12 rows" in err
    assert len(list(csv.DictReader(io.StringIO(target.read_text())))) == 12
    code, out, err = run(capsys, "export", url, "--since", "2030-01-01")
    assert (code, out) == (0, "")
    assert "none of the 12 failures in the database matches" in err


AWKWARD = [
    row(
        kind,
        strategy,
        query,
        format_created_at(__import__("datetime").datetime(2024, 2, 1, 0, 0, i, 1000 * i)),
        top_score=score,
        threshold=threshold,
        latency_ms=i,
        edge_types=edges,
        error_context=context,
        conversation_id=-i if i % 2 else None,
    )
    for i, (kind, strategy, query, score, threshold, edges, context) in enumerate(
        [
            ("low_confidence", "=cmd", "-5", 0.42, 0.7, ["mentions"], None),
            ("low_confidence", "+x", "@SUM(1)", 0.1, 0.65, '"=one"', "\t=1"),
            ("no_hit", "sémantique", 'naïve\u3000Zürich, "quoted"\nline', None, None, "[]", ""),
            ("error", "k", "\r=1", 1e-07, 3.4e38, "not json", "ConnectionError: x"),
            ("timeout", "k", "", -0.5, 0.33333334, '[1, null, "=x"]', "=HYPERLINK(1)"),
        ]
    )
]


def test_export_is_the_record_by_record_export_byte_for_byte(
    url: str, admin: Any, tmp_path: Path
) -> None:
    """From PostgreSQL too (float4 scores shown as written, microsecond times,
    formula-looking text, NULLs): the same bytes as the export that built a
    record per row."""
    from ..test_export import _reference_csv, _reference_jsonl

    load_pg(admin, AWKWARD)
    with FailureReader(url) as reader:
        records = list(reader.query(oldest_first=True))
    assert records[0].top_score == 0.42
    for fmt, options, expected in (
        ("jsonl", [], _reference_jsonl(records)),
        ("csv", [], _reference_csv(records, neutralise=True)),
        ("csv", ["--raw"], _reference_csv(records, neutralise=False)),
    ):
        target = tmp_path / f"out{len(options)}.{fmt}"
        assert main(["export", url, "--format", fmt, *options, "-o", str(target)]) == 0
        assert target.read_bytes() == expected.encode("utf-8"), (fmt, options)
    assert "'=cmd" in (tmp_path / "out0.csv").read_text(encoding="utf-8")


def test_tail(
    capsys: pytest.CaptureFixture[str], url: str, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    polls: list[float] = []

    def fake_sleep(seconds: float) -> None:
        polls.append(seconds)
        if len(polls) == 1:
            admin.execute(
                f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text)"
                " VALUES ('error', 'live', 'appeared')"
            )
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "sleep", fake_sleep)
    code, out, _err = run(capsys, "tail", url, "-n", "2", "--json", "--interval", "0.25")
    assert code == 130
    lines = [json.loads(line)["query_text"] for line in out.splitlines()]
    assert lines == ["query 2", "query 3", "appeared"]
    assert polls == [0.25, 0.25]


def test_purge(capsys: pytest.CaptureFixture[str], url: str, admin: Any) -> None:
    code, out, _ = run(capsys, "purge", url, "--older-than", "2024-01-01 00:05:00", "--dry-run")
    assert code == 0
    assert "would delete 5 rows older than 2024-01-01 00:05:00 UTC (dry run)" in out
    assert admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == 12
    code, out, _err = run(capsys, "purge", url, "--older-than", "2024-01-01 00:05:00")
    assert code == 0
    assert "deleted 5 rows" in out
    assert admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == 7


def test_demo_on_a_url(
    capsys: pytest.CaptureFixture[str],
    pg_server: PgServer,
    pg_db: str,
    secret_role: str,
    admin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin.execute(f"GRANT ALL ON SCHEMA public TO {secret_role}")
    url = pg_server.url(pg_db, user=secret_role, password=SECRET)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(
        capsys, "demo", "--database", url, "--duration", "0.3", "--rate", "100", "--seed", "1"
    )
    assert code == 0, err
    assert "written" in out
    assert f"Database:    postgresql://{SECRET_ROLE}:***@" in out
    assert (tmp_path / "trio-failurelog-demo.html").exists()
    assert_no_secret((tmp_path / "trio-failurelog-demo.html").read_text())
    with FailureReader(url) as reader:
        assert reader.count() > 0


# ---------------------------------------------------------------- every error


def _error_urls(pg_server: PgServer, pg_db: str, secret_role: str) -> dict[str, str]:
    down = _free_port()
    quoted = urllib.parse.quote(SECRET, safe="")
    return {
        "wrong password": pg_server.url(pg_db, user="failurelog", password=SECRET),
        "server down": f"postgresql://{secret_role}:{quoted}@127.0.0.1:{down}/{pg_db}",
        "missing table": pg_server.url(pg_db, user=secret_role, password=SECRET),
        "password in the query": (
            f"postgres://{secret_role}@127.0.0.1:{down}/{pg_db}?password={quoted}&connect_timeout=2"
        ),
        "malformed": f"postgresql://{secret_role}:{quoted}@127.0.0.1:{down}/{pg_db}?bogus=1",
        # libpq takes "#" and "?" in a password as they are; so must the redaction.
        "raw # and ? in the password": (
            f"postgresql://{secret_role}:r#w?DISTINCT-PW@127.0.0.1:{down}/{pg_db}"
        ),
    }


COMMANDS: list[Callable[[str, Path], list[str]]] = [
    lambda url, tmp: ["report", url],
    lambda url, tmp: ["report", url, "--json"],
    lambda url, tmp: ["report", url, "--html", str(tmp / "r.html")],
    lambda url, tmp: ["tail", url],
    lambda url, tmp: ["export", url],
    lambda url, tmp: ["export", url, "--format", "csv", "-o", str(tmp / "x.csv")],
    lambda url, tmp: ["purge", url, "--older-than", "30d"],
    lambda url, tmp: ["purge", url, "--older-than", "30d", "--dry-run"],
    lambda url, tmp: ["demo", "--db", url, "--duration", "0.1"],
]


def test_every_command_fails_in_one_line_without_the_password(
    capsys: pytest.CaptureFixture[str],
    pg_server: PgServer,
    pg_db: str,
    secret_role: str,
    tmp_path: Path,
) -> None:
    for problem, bad_url in _error_urls(pg_server, pg_db, secret_role).items():
        if problem == "missing table":
            expected = f"has no table '{TABLE}'"
        elif problem == "wrong password":
            expected = "refused the user name or password"
        else:
            expected = "cannot connect to PostgreSQL database"
        for command in COMMANDS:
            argv = command(bad_url, tmp_path)
            if problem == "missing table" and argv[0] == "demo":
                continue  # the demo's logger creates the table
            code, out, err = run(capsys, *argv)
            assert code == 1, (problem, argv, out, err)
            assert err.count("\n") == 1, (problem, argv, err)
            assert expected in err, (problem, argv, err)
            assert "Traceback" not in err


def test_reader_errors_and_reprs_hold_no_password(
    pg_server: PgServer, pg_db: str, secret_role: str, url: str
) -> None:
    with FailureReader(url) as reader:
        assert_no_secret(repr(reader), reader.name, str(reader.connection.info.dsn))
    for bad_url in _error_urls(pg_server, pg_db, secret_role).values():
        with pytest.raises(DatabaseSetupError) as caught:
            FailureReader(bad_url.replace(pg_db, "no_such_db"))
        assert_no_secret(
            str(caught.value),
            repr(caught.value),
            "".join(traceback.format_exception(caught.value)),
        )


def test_server_error_text_is_scrubbed(url: str) -> None:
    # The server quotes values back in its errors; one that happens to be the
    # password is not shown.
    with (
        FailureReader(url) as reader,
        pytest.raises(DatabaseSetupError, match="invalid input syntax") as caught,
    ):
        reader._core.db.execute("SELECT CAST(? AS integer)", [SECRET])
    assert_no_secret(str(caught.value), "".join(traceback.format_exception(caught.value)))


async def test_the_async_reader_hides_the_password_too(url: str) -> None:
    async with open_failure_reader(url) as reader:
        assert_no_secret(repr(reader), reader.name)
        assert await reader.count() == 12


# ---------------------------------------------------------------- the missing extra

_BLOCKED = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "psycopg" or name.startswith("psycopg."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
from trio_failurelog import DatabaseSetupError, FailureReader
from trio_failurelog._cli import main
try:
    FailureReader(sys.argv[1])
except DatabaseSetupError as exc:
    print("SETUP:", exc)
sys.exit(main(sys.argv[2:]))
"""


def test_a_url_without_the_extra_names_it() -> None:
    url = f"postgresql://u:{urllib.parse.quote(SECRET, safe='')}@127.0.0.1:1/x"
    for argv in (["report", url], ["purge", url, "--older-than", "1d", "--dry-run"]):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_BLOCKED), url, *argv],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert done.stdout.startswith("SETUP: a PostgreSQL database needs the 'postgres' extra")
        assert done.stderr.count("\n") == 1
        assert "(psycopg 3): pip install 'psycopg[binary]>=" in done.stderr
        assert_no_secret(done.stdout, done.stderr)


def test_the_reader_works_after_a_call_cancelled_at_once(url: str) -> None:
    async def main_() -> int:
        async with open_failure_reader(url) as reader:
            with trio.move_on_after(0):
                await reader.count()
            return await reader.count()

    assert trio.run(main_) == 12
