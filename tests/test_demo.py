"""The demo: a simulated retrieval service whose failures go through the library."""

from __future__ import annotations

import math
import os
import random
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg.conninfo
import pytest
import trio.testing

from trio_failurelog._cli import main, next_commands
from trio_failurelog._database import postgres_url
from trio_failurelog._demo import _STRATEGIES, RECALL_TIMEOUT, Corpus, DemoProgress, run_demo
from trio_failurelog._reader import FailureReader
from trio_failurelog._threads import SerialThread

T = TypeVar("T")


def test_corpus_scores_known_words_high_and_unknown_words_not_at_all() -> None:
    corpus = Corpus(random.Random(0))
    assert len(corpus.documents) == 320
    semantic = _STRATEGIES[0]
    rng = random.Random(1)
    assert corpus.search("quantum gardening tips", semantic, rng) == []
    scores = corpus.search("how do i reset my password login", semantic, rng)
    assert 0.5 < scores[0] <= 1.0
    assert scores == sorted(scores, reverse=True)
    assert len(scores) == 5


async def test_demo_logs_every_kind_of_failure(
    tmp_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    ticks: list[DemoProgress] = []
    db = tmp_path / "demo.db"
    result = await run_demo(db, duration=20, rate=100, seed=3, on_progress=ticks.append)
    assert result.requests == 2000
    assert set(result.failures) == {"no_hit", "low_confidence", "timeout", "error"}
    stats = result.statistics
    assert stats.closed
    assert stats.accepted == sum(result.failures.values()) == stats.written
    assert (stats.dropped_full, stats.dropped_closed, stats.failed) == (0, 0, 0)
    assert result.slot_waits == 0
    assert 19 <= len(ticks) <= 21
    assert all(95 <= tick.requests_per_s <= 105 for tick in ticks[1:-1])
    assert sum(tick.logged_per_s for tick in ticks) > 0
    with FailureReader(db) as reader:
        summary = reader.summary(since=result.started_at)
        graph = next(reader.query(strategy="graph"))
    assert summary.total == stats.written
    assert summary.by_type == {name: result.failures[name] for name in summary.by_type}
    assert {item.strategy for item in summary.low_confidence} <= {s.name for s in _STRATEGIES}
    assert summary.repeated_queries  # the demo's hard questions keep failing
    assert graph.edge_types is not None
    assert len(graph.edge_types) == 2


async def test_demo_shows_drops_when_the_buffer_is_too_small(
    tmp_path: Path, virtual_time: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def a_slow_disk(fn: Callable[[], T], **_: object) -> T:
        await trio.sleep(0.05)  # every write takes 50 ms of virtual time
        return fn()

    # On virtual time an inline write costs nothing, and the writer (woken at
    # half the buffer) would keep up with any rate.
    monkeypatch.setattr(SerialThread, "_to_thread", staticmethod(a_slow_disk))
    ticks: list[DemoProgress] = []
    result = await run_demo(
        tmp_path / "drops.db", duration=3, rate=3000, capacity=1, seed=5, on_progress=ticks.append
    )
    stats = result.statistics
    assert stats.dropped_full > 0
    assert stats.accepted + stats.dropped_full == sum(result.failures.values())
    assert stats.accepted == stats.written + stats.failed
    assert sum(tick.dropped_per_s for tick in ticks) > 0


async def test_demo_takes_its_duration_even_when_requests_cannot_keep_up(
    tmp_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    # 4 requests in flight at ~50 ms each serve about 80 requests/s, far below the
    # rate asked for: the run used to go on until all rate * duration requests
    # were made (here 20,000: minutes instead of 4 s).
    ticks: list[DemoProgress] = []
    started = trio.current_time()
    result = await run_demo(
        tmp_path / "slow.db", duration=4, rate=5000, concurrency=4, seed=2, on_progress=ticks.append
    )
    elapsed = trio.current_time() - started
    assert 4 <= result.seconds <= elapsed <= 4 + RECALL_TIMEOUT + 0.1
    assert 0 < result.requests < 4 * 5000 / 10
    assert [round(tick.elapsed) for tick in ticks] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"duration": 0}, "duration"),
        ({"duration": math.inf}, "duration"),
        ({"rate": math.nan}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"progress_interval": -1}, "progress_interval"),
        ({"concurrency": 0}, "concurrency"),
    ],
)
async def test_demo_rejects_nonsense(arguments: dict[str, float], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be positive"):
        await run_demo("x.db", **arguments)  # type: ignore[arg-type]


def test_demo_command_runs_end_to_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The one real-time test of the demo: two seconds, as a newcomer would run it.
    monkeypatch.chdir(tmp_path)
    code = main(["demo", "--duration", "2", "--rate", "100", "--seed", "7"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "Traceback" not in err
    lines = out.splitlines()
    progress = [line for line in lines if "requests" in line and "dropped" in line]
    assert 1 <= len(progress) <= 3  # one line per second when piped
    assert "\r" not in out
    assert any(line.startswith("Retrieval failures in trio-failurelog-demo.db") for line in lines)
    db = tmp_path / "trio-failurelog-demo.db"
    html = tmp_path / "trio-failurelog-demo.html"
    assert f"Database:    {db}" in lines
    assert f"HTML report: {html}" in lines
    assert html.read_text(encoding="utf-8").count('<svg class="chart"') == 3
    assert stat.S_IMODE(html.stat().st_mode) == 0o600  # it holds what users typed
    with FailureReader(db) as reader:
        assert reader.count() > 0


@pytest.mark.parametrize(
    ("database", "password"),
    [
        ("postgresql://demo:s3cr%40t@db.internal:5433/failures?sslmode=require", "s3cr@t"),
        ("postgresql://demo@db.internal/failures?password=p%26w&sslmode=disable", "p&w"),
        ("POSTGRES://demo:pw@h/d%20b", "pw"),
    ],
)
def test_the_next_line_for_a_url_works_when_pasted_and_shows_no_password(
    database: str, password: str
) -> None:
    lines = next_commands("trio-failurelog", database)
    assert len(lines) == 2
    assert "PGPASSWORD" in lines[1]
    assert password not in "\n".join(lines)
    assert "***" not in lines[0]  # a masked password fails when pasted
    report = shlex.split(lines[0].removeprefix("Next: ").split("|")[0])
    assert report[:2] == ["trio-failurelog", "report"]
    pasted = report[2]
    # What libpq reads from the pasted URL: everything but the password, which it
    # then takes from PGPASSWORD.
    # (The library gives libpq the scheme in lower case, as postgres_url does.)
    original = psycopg.conninfo.conninfo_to_dict(postgres_url(database))
    assert original.pop("password") == password
    assert psycopg.conninfo.conninfo_to_dict(postgres_url(pasted)) == original


@pytest.mark.parametrize("database", ["trio-failurelog-demo.db", "my dir/it's.db"])
def test_the_next_line_for_a_file_is_quoted_for_the_shell(database: str) -> None:
    (line,) = next_commands("python3 '/x y/tools/run_nox.py' -s cli --", database)
    report, tail = line.removeprefix("Next: ").split("   |   ")
    assert shlex.split(report) == [
        "python3", "/x y/tools/run_nox.py", "-s", "cli", "--", "report", database, "--since", "1h"
    ]  # fmt: skip
    assert shlex.split(tail)[-2:] == ["tail", database]


async def test_the_demo_counts_requests_that_waited_for_a_slot(
    tmp_path: Path, virtual_time: trio.testing.MockClock
) -> None:
    busy = await run_demo(tmp_path / "busy.db", duration=2, rate=2000, concurrency=2, seed=1)
    assert busy.slot_waits > 0
    free = await run_demo(tmp_path / "free.db", duration=2, rate=50, concurrency=64, seed=1)
    assert free.slot_waits == 0


def test_the_demo_says_when_it_reached_less_than_the_rate_asked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # One request in flight at a time (tens of ms each) cannot make 5,000 a second.
    db = tmp_path / "slow.db"
    code = main(
        ["demo", "--db", str(db), "--duration", "1", "--rate", "5000", "--concurrency", "1"]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    (line,) = [line for line in out.splitlines() if line.startswith("Reached")]
    reached = int(line.split()[1].replace(",", ""))
    assert 0 < reached < 4500
    assert line.endswith(
        "requests/s of the 5,000 asked: all 1 request slots were busy at times "
        "(raise --concurrency)"
    )


def test_the_next_commands_run_from_a_shell_without_the_script_on_path(tmp_path: Path) -> None:
    """Run as ``python -m trio_failurelog`` from a virtual environment that is not
    activated, ``trio-failurelog`` is on no PATH: the hint names this Python."""
    database = tmp_path / "demo.db"
    env = {**os.environ, "PATH": str(tmp_path)}  # no trio-failurelog anywhere on it
    env.pop("TRIO_FAILURELOG_PROG", None)
    demo = subprocess.run(
        [sys.executable, "-m", "trio_failurelog", "demo", "--duration", "0.5", "--db", database],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    (hint,) = [line for line in demo.stdout.splitlines() if line.startswith("Next:")]
    report = hint.removeprefix("Next:").split("|")[0].strip()
    words = shlex.split(report)
    assert words[:3] == [sys.executable, "-m", "trio_failurelog"]
    done = subprocess.run(words, env=env, capture_output=True, text=True, timeout=60, check=True)
    assert "Retrieval failures in" in done.stdout
