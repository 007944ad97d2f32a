"""The command line through its entry point: exit codes, stdout, stderr, no tracebacks."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from trio_failurelog import _cli
from trio_failurelog._extras import install_hint
from trio_failurelog._reader import FailureReader
from trio_failurelog._report import duration_text
from trio_failurelog._table import TABLE

from ._failuredb import insert, make_db, row, stored_rows
from ._helpers import on_disk
from ._helpers import run_cli as run
from .test_summary import ROWS, T0, T1

Run = tuple[int, str, str]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "cli.db", ROWS)


def test_report_prints_plain_tables_when_piped(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, err = run(capsys, "report", str(db), "--since", T0, "--until", T1)
    assert (code, err) == (0, "")
    assert "\x1b" not in out  # no colour codes when not on a terminal
    assert "12 failures (no_hit 3, low_confidence 7, timeout 1, error 1)" in out
    lines = out.splitlines()
    assert any(line.split() == ["semantic", "2", "5", "0", "0", "7"] for line in lines)
    assert any(
        line.split()[:6] == ["semantic", "7", "40", "1,000", "1,000", "1,000"] for line in lines
    )
    assert "0.65: 1 (20%); 0.6: 2 (40%); 0.55: 2 (40%); 0.5: 3 (60%)" in out
    assert any(line.startswith("refund policy ") and " 3 " in line for line in lines)


def test_the_what_ifs_are_shown_whole_however_many(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Scores far under the threshold give many what-if steps, the last (which
    recovers most) at the end of a long cell: the text report shows it all."""
    scores = [round(0.1 + 0.05 * i, 2) for i in range(16)]  # 0.1 .. 0.85, threshold 0.9
    db = make_db(
        tmp_path / "f.db",
        [
            row("low_confidence", "semantic", f"q{i}", T0, top_score=score, threshold=0.9)
            for i, score in enumerate(scores)
        ],
    )
    code, out, _ = run(capsys, "report", str(db), "--json")
    assert code == 0
    (stats,) = json.loads(out)["low_confidence"]
    shown = "; ".join(
        f"{w['threshold']:g}: {w['recovered']:,} ({w['share']:.0%})" for w in stats["what_if"]
    )
    assert len(shown) > 100  # longer than any clipped cell
    assert stats["what_if"][-1]["recovered"] == len(scores)
    code, out, _ = run(capsys, "report", str(db))
    assert code == 0
    assert shown in out


def test_report_json(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(capsys, "report", str(db), "--since", T0, "--until", T1, "--json")
    assert code == 0
    with FailureReader(db) as reader:
        expected = reader.summary(since=T0, until=T1).to_dict()
    assert json.loads(out) == json.loads(json.dumps(expected))


def test_report_options(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(
        capsys,
        "report",
        str(db),
        "--until",
        "2024-01-01T01:00",
        "--type",
        "low_confidence",
        "--strategy",
        "semantic",
        "--thresholds",
        "0.6,0.4",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["total"] == 5
    assert [w["threshold"] for w in data["low_confidence"][0]["what_if"]] == [0.6, 0.4]


def test_report_html(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    code, out, _ = run(capsys, "report", str(db), "--html", str(target))
    assert code == 0
    assert f"HTML report: {target}" in out
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<svg class="chart"') == 3


def test_report_since_duration_counts_back_from_now(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = make_db(tmp_path / "now.db", [])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at) "
        "VALUES ('no_hit', 's', 'recent', datetime('now', '-1 hour')), "
        "('no_hit', 's', 'old', datetime('now', '-3 days'))"
    )
    conn.close()
    code, out, _ = run(capsys, "report", str(path), "--since", "24h", "--json")
    assert code == 0
    assert json.loads(out)["total"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{missing}"], "does not exist"),
        (["report", "{text}"], "file is not a database"),
        (["report", "{other}"], "has no table 'memory_retrieval_failures'"),
        (["report", "{db}", "--since", "3x"], "invalid duration '3x'"),
        (["report", "{db}", "--since=-1d"], "invalid duration '-1d'"),
        (["report", "{db}", "--since", "2024-13-45"], "invalid time '2024-13-45'"),
        (["report", "{db}", "--thresholds", "a,b"], "invalid thresholds"),
        (["report", "{db}", "--top", "-1"], "argument --top: must not be negative"),
        (["report", "{db}", "--html", "{tmp}/no/such/dir/x.html"], "cannot write"),
        (["tail", "{missing}"], "does not exist"),
        (["tail", "{db}", "--interval", "0"], "must be positive"),
        (["export", "{text}"], "file is not a database"),
        (["export", "{db}", "--format", "xml"], "invalid choice: 'xml'"),
        (["export", "{db}", "-o", "{tmp}/no/such/dir/x.jsonl"], "cannot write"),
        (["purge", "{missing}", "--older-than", "30d"], "does not exist"),
        (["purge", "{db}"], "the following arguments are required: --older-than"),
        (["purge", "{db}", "--older-than", "30x"], "invalid duration '30x'"),
        (["purge", "{db}", "--older-than", "1d", "--vacuum", "--dry-run"], "do not go together"),
        (["purge", "{missing}", "--older-than", "1d", "--vacuum"], "does not exist"),
        (["purge", "{other}", "--older-than", "1d", "--vacuum"], "has no table"),
        (["demo", "--duration", "0"], "must be positive"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_errors_are_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, argv: list[str], message: str
) -> None:
    text = tmp_path / "text.db"
    text.write_text("not a database\n")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    names = {
        "db": str(db),
        "missing": str(tmp_path / "missing.db"),
        "text": str(text),
        "other": str(other),
        "tmp": str(tmp_path),
    }
    code, out, err = run(capsys, *(arg.format(**names) for arg in argv))
    assert code in (1, 2)
    assert out == ""
    assert message in err
    assert err.count("\n") == 1
    assert err.startswith("trio-failurelog")
    assert "Traceback" not in err
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.parametrize("command", [[], ["report"], ["tail"], ["export"], ["purge"], ["demo"]])
def test_help_on_every_command(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, out, err = run(capsys, *command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith("usage: trio-failurelog")


def test_module_entry_point_runs_as_a_program(db: Path, tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "trio_failurelog", "export", str(db), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0
    assert len(ok.stdout.splitlines()) == len(ROWS)
    bad = subprocess.run(
        [sys.executable, "-m", "trio_failurelog", "report", str(tmp_path / "nope.db")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip().endswith("does not exist")
    assert "Traceback" not in bad.stderr


# ------------------------------------------------------------------ purge


def test_purge_dry_run_then_for_real(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "p.db",
        [
            row("no_hit", "s", f"q{i}", f"2020-01-01 00:{i // 60:02d}:{i % 60:02d}")
            for i in range(2500)
        ]
        + [row("no_hit", "s", "new", "2999-01-01 00:00:00")],
    )
    code, out, _ = run(capsys, "purge", str(path), "--older-than", "30d", "--dry-run")
    assert code == 0
    assert out.startswith("would delete 2,500 rows older than ")
    assert len(stored_rows(path)) == 2501
    code, out, _ = run(capsys, "purge", str(path), "--older-than", "30d")
    assert code == 0
    assert out.startswith("deleted 2,500 rows older than ")
    assert [r["query_text"] for r in stored_rows(path)] == ["new"]
    code, out, _ = run(capsys, "purge", str(path), "--older-than", "2999-01-01T00:00:01")
    assert (code, out.split()[:2]) == (0, ["deleted", "1"])


def _reference_file(path: Path) -> Path:
    """A reference application's file (auto_vacuum NONE): 3000 old rows of 300 bytes, 2 new."""
    rows = [row("no_hit", "s", f"q{i} " + "x" * 300, "2020-01-01 00:00:00") for i in range(3000)]
    return make_db(path, [*rows, *(row("no_hit", "s", f"new {i}", "2999-01-01") for i in (0, 1))])


def test_purge_says_what_a_reference_file_keeps_and_vacuum_gives_it_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = _reference_file(tmp_path / "ref.db")
    code, out, err = run(capsys, "purge", str(path), "--older-than", "30d")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("deleted 3,000 rows older than ")
    assert lines[1].startswith("the file keeps 1.")  # MB of free pages
    assert lines[1].endswith("--vacuum gives them back to the OS")
    assert len(lines) == 2
    before = on_disk(path)
    code, out, err = run(capsys, "purge", str(path), "--older-than", "30d", "--vacuum")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("deleted 0 rows older than ")
    assert lines[1].startswith(f"vacuumed: {before / 1e6:,.1f} MB -> ")
    assert lines[1].endswith(
        "; auto_vacuum now incremental (was none): later purges give space back by themselves"
    )
    assert on_disk(path) < before / 2
    assert [r["query_text"] for r in stored_rows(path)] == ["new 0", "new 1"]
    # Incremental from now on: the next purge gives its space back, says nothing more.
    code, out, _ = run(capsys, "purge", str(path), "--older-than", "2999-01-01T00:00:01")
    assert (code, out.splitlines()) == (0, [out.splitlines()[0]])
    code, out, _ = run(capsys, "purge", str(path), "--older-than", "1d", "--vacuum")
    assert out.splitlines()[1].endswith(" MB on disk")  # nothing turned on: it already was


def test_purge_vacuum_refuses_a_postgresql_url_before_deleting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql://me:s3cret@nowhere.invalid/db"  # never reached
    code, out, err = run(capsys, "purge", url, "--older-than", "30d", "--vacuum")
    assert (code, out) == (1, "")
    assert "--vacuum is for SQLite files" in err
    assert err.count("\n") == 1
    assert "s3cret" not in err


def test_purge_refuses_a_file_that_is_not_a_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "notes.txt"
    content = b"SQLite format 2 - not really\n" * 50
    path.write_bytes(content)
    code, out, err = run(capsys, "purge", str(path), "--older-than", "1d")
    assert out == ""
    assert code == 1
    assert "file is not a database" in err
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------ tail


def test_tail_prints_the_backlog_then_rows_appended_by_another_connection(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []

    def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            writer = sqlite3.connect(db, isolation_level=None)
            insert(
                writer,
                [
                    row(
                        "timeout", "keyword", "appended one", "2024-06-01 00:00:00", latency_ms=250
                    ),
                    row("no_hit", "keyword", "filtered out", "2024-06-01 00:00:01"),
                    row("timeout", "semantic", "other strategy", "2024-06-01 00:00:02"),
                ],
            )
            writer.close()
        elif len(naps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "sleep", fake_sleep)
    code, out, err = run(
        capsys, "tail", str(db), "--type", "timeout", "--strategy", "keyword", "-n", "5",
        "--interval", "0.5",
    )  # fmt: skip
    assert (code, err) == (130, "")
    lines = out.splitlines()
    assert len(lines) == 3
    assert "where is my order" in lines[0]
    assert "'late'" in lines[1]
    assert "appended one" in lines[2]
    assert "timeout" in lines[2]
    assert "250 ms" in lines[2]
    assert naps == [0.5, 0.5, 0.5]


def test_tail_json(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli, "sleep", interrupt)
    code, out, _ = run(capsys, "tail", str(db), "--json", "-n", "2")
    assert code == 130
    assert [json.loads(line)["query_text"] for line in out.splitlines()] == [
        "refund policy",
        "late",
    ]


# ------------------------------------------------------------------ colour


def test_color_always_needs_rich(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)  # import rich now fails
    code, out, err = run(capsys, "--color", "always", "report", str(db))
    assert code == 2
    assert out == ""
    assert f"--color always needs rich: the 'cli' extra: {install_hint('cli')}" in err
    assert "pip install 'rich>=" in err
    # auto falls back to plain text without rich
    code, out, _ = run(capsys, "report", str(db))
    assert code == 0
    assert "By strategy and type" in out


def test_color_always_uses_rich(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    pytest.importorskip("rich")
    code, out, _ = run(capsys, "--color", "always", "report", str(db))
    assert code == 0
    assert "By strategy and type" in out
    assert "\x1b[" in out or "─" in out  # rich styling or its table rules


def test_report_survives_impossible_dates_from_other_writers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Another application's rows are not validated: "1999-02-30" may be stored.
    path = make_db(
        tmp_path / "odd.db",
        [
            row("no_hit", "semantic", "fine", "2024-05-01 00:00:00"),
            row("timeout", "semantic", "odd", "1999-02-30 00:00:00"),
        ],
    )
    html = tmp_path / "odd.html"
    for args in (["report", str(path)], ["report", str(path), "--json"]):
        code, out, err = run(capsys, *args)
        assert (code, err) == (0, "")
        assert "2 failures" in out or '"total": 2' in out
    code, _out, err = run(capsys, "report", str(path), "--html", str(html))
    assert (code, err) == (0, "")
    assert html.exists()


# ------------------------------------------------------------------ demo --metrics


def test_demo_metrics_prints_the_exported_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "m.db"
    code, out, err = run(
        capsys, "demo", "--db", str(db), "--duration", "0.3", "--rate", "200", "--metrics"
    )
    assert code == 0, err
    metrics = out.split("Metrics (OpenTelemetry, at the end of the run):\n", 1)[1].split("\n")
    metrics = [line.strip() for line in metrics if line.strip()]
    by_name = {line.split()[0]: line for line in metrics}
    written = by_name["trio_failurelog.record.written"]
    assert written.endswith(" {record}")
    assert "{db.system.name=sqlite, trio_failurelog.database=" in written
    with FailureReader(db) as reader:
        assert int(written.split()[-2]) == reader.count() > 0
    assert "trio_failurelog.queue.capacity" in by_name
    assert any(line.startswith("trio_failurelog.record.dropped ") for line in metrics)


def test_demo_metrics_without_the_sdk_says_what_to_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.metrics", None)
    code, out, err = run(capsys, "demo", "--db", str(tmp_path / "m.db"), "--metrics")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "pip install opentelemetry-sdk" in err
    assert not (tmp_path / "m.db").exists()  # said before anything ran


# ------------------------------------------------------------------ plain answers


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2024-05-02", "2024-05-01"),
        ("2024-05-01T12:00", "2024-05-01T12:00"),
        ("1h", "24h"),  # an hour ago is after a day ago
    ],
)
@pytest.mark.parametrize("command", ["report", "export"])
def test_an_inverted_range_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], db: Path, command: str, since: str, until: str
) -> None:
    code, out, err = run(capsys, command, str(db), "--since", since, "--until", until)
    assert (code, out) == (2, "")
    assert err.startswith(f"trio-failurelog: error: {command}: --since (")
    assert "must be before --until" in err
    assert err.count("\n") == 1


def test_thresholds_not_below_a_strategys_own_are_noted(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, _, err = run(capsys, "report", str(db), "--thresholds", "0.8,0.7,0.5")
    assert code == 0
    # semantic's threshold is 0.7, keyword's 0.45: 0.5 is above keyword's too.
    assert err.splitlines() == [
        "trio-failurelog: note: --thresholds 0.8, 0.7: not below the threshold of 'semantic' "
        "(0.7); a what-if lowers the threshold",
        "trio-failurelog: note: --thresholds 0.8, 0.7, 0.5: not below the threshold of 'keyword' "
        "(0.45); a what-if lowers the threshold",
    ]
    code, _, err = run(capsys, "report", str(db), "--thresholds", "0.4")
    assert (code, err) == (0, "")


def test_top_0_leaves_the_repeated_queries_out(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "report", str(db), "--top", "0")
    assert code == 0
    assert "Most repeated failing queries" not in out
    code, out, _ = run(capsys, "report", str(db), "--top", "1")
    assert "Most repeated failing queries" in out


def test_the_timeline_spans_the_failures_and_draws_every_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # 10 s of failures in a day's report: ten 1 s lines, not 24 hourly ones; a
    # second with 1 failure beside one with 500 still gets its mark.
    rows = [row("no_hit", "s", f"q{i}", "2024-01-01 12:00:00") for i in range(500)]
    rows += [row("timeout", "s", "lonely", "2024-01-01 12:00:09")]
    db = make_db(tmp_path / "ten.db", rows)
    day = ["--since", "2024-01-01", "--until", "2024-01-02"]
    code, out, _ = run(capsys, "report", str(db), *day)
    assert code == 0
    lines = out.splitlines()
    start = lines.index("Over time (UTC, 1 s per line)")
    timeline = lines[start + 2 : start + 12]
    assert len(timeline) == 10
    assert timeline[0].endswith(" 500")
    assert timeline[-1].split()[-2:] == ["t", "1"]  # one mark, then the count
    assert lines[start + 12].startswith("(n = no_hit")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 s"), (30, "30 s"), (90, "90 s"), (120, "2 min"), (3600, "1 h"), (21600, "6 h"),
     (86400, "1 d"), (172800, "2 d"), (604800, "1 w"), (1209600, "2 w"), (2592000, "30 d"),
     (31536000, "365 d")],
)  # fmt: skip
def test_bucket_widths_read_in_their_unit(seconds: int, text: str) -> None:
    assert duration_text(seconds) == text
