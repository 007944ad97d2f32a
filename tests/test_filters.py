"""Every filter, in the reader API and on the command line: bad values raise naming
the argument, huge counts mean "all", and a filter that matches nothing says so
without claiming the database is empty."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trio_failurelog import FailureReader, RetrievalFailureType, open_failure_reader
from trio_failurelog._html import render_html

from ._failuredb import make_db, row
from ._helpers import run_cli as run

HUGE = 10**30
VALID = "no_hit, low_confidence, timeout, error"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(
        tmp_path / "f.db",
        [
            row("no_hit", "semantic", "where is it", "2024-01-01 00:00:00", conversation_id=7),
            row("timeout", "keyword", "where is it", "2024-01-01 00:01:00", conversation_id=8),
            row(
                "low_confidence",
                "semantic",
                "hm",
                "2024-01-01 00:02:00",
                top_score=0.4,
                threshold=0.5,
            ),
        ],
    )


# ------------------------------------------------------------------ the reader

Call = Callable[[FailureReader, dict[str, Any]], object]
CALLS: dict[str, Call] = {
    "query": lambda reader, kw: reader.query(**kw),
    "count": lambda reader, kw: reader.count(**kw),
    "summary": lambda reader, kw: reader.summary(**kw),
    "follow": lambda reader, kw: reader.follow(**kw),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("bad", ["NO_HIT", "nohit", "no-hit", "miss", ""])
def test_an_unknown_failure_type_raises_naming_the_valid_ones(
    db: Path, call: str, bad: str
) -> None:
    with FailureReader(db) as reader, pytest.raises(ValueError, match="unknown") as caught:
        CALLS[call](reader, {"failure_type": bad})
    message = str(caught.value)
    assert message.startswith(f"failure_type: unknown failure type {bad!r}")
    assert message.endswith(VALID)
    if bad in ("NO_HIT", "nohit", "no-hit"):
        assert "did you mean 'no_hit'?" in message


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"failure_type": ["timeout", "Timeout"]}, ValueError, "unknown failure type 'Timeout'"),
        ({"failure_type": []}, ValueError, "failure_type must name at least one"),
        ({"strategy": []}, ValueError, "strategy must name at least one"),
        ({"strategy": ()}, ValueError, "strategy must name at least one"),
        ({"strategy": [b"x"]}, TypeError, "strategy must hold str"),
        ({"failure_type": b"no_hit"}, TypeError, "failure_type must be a str"),
        ({"conversation_id": 2**63}, ValueError, "conversation_id must fit in 64 bits"),
        ({"conversation_id": -(2**63) - 1}, ValueError, "conversation_id must not be less"),
        ({"conversation_id": True}, TypeError, "conversation_id must be an int"),
    ],
)
def test_every_filter_checks_its_values(
    db: Path, call: str, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    with FailureReader(db) as reader, pytest.raises(error, match=match):
        CALLS[call](reader, arguments)


def test_known_types_match_in_any_spelling_of_the_enum(db: Path) -> None:
    with FailureReader(db) as reader:
        assert reader.count(failure_type=RetrievalFailureType.TIMEOUT) == 1
        assert reader.count(failure_type=[RetrievalFailureType.NO_HIT, "timeout", "timeout"]) == 2
        assert reader.count(conversation_id=2**63 - 1) == 0
        assert reader.count(strategy="nosuch") == 0  # strategies are open: any text


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"limit": -1}, ValueError, "limit must not be negative"),
        ({"limit": 1.5}, TypeError, "limit must be an int or None"),
        ({"page_size": 0}, ValueError, "page_size must not be less than 1"),
        ({"page_size": "9"}, TypeError, "page_size must be an int"),
    ],
)
def test_paging_arguments_are_checked(
    db: Path, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    with FailureReader(db) as reader, pytest.raises(error, match=match):
        reader.query(**arguments)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"thresholds": [float("nan")]}, ValueError, "thresholds must be finite"),
        ({"thresholds": [float("inf")]}, ValueError, "thresholds must be finite"),
        ({"thresholds": ["0.5"]}, TypeError, "thresholds must hold numbers"),
        ({"thresholds": "0.5"}, TypeError, "thresholds must be an iterable of numbers"),
        ({"top_queries": -1}, ValueError, "top_queries must not be negative"),
        ({"top_queries": 2.0}, TypeError, "top_queries must be an int"),
        ({"max_buckets": 0}, ValueError, "max_buckets must not be less than 1"),
    ],
)
def test_summary_arguments_are_checked(
    db: Path, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    with FailureReader(db) as reader, pytest.raises(error, match=match):
        reader.summary(**arguments)


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"backlog": -1}, ValueError, "backlog must not be negative"),
        ({"poll_interval": 0}, ValueError, "poll_interval must be positive and finite"),
        ({"poll_interval": float("nan")}, ValueError, "poll_interval must be positive"),
        ({"poll_interval": float("inf")}, ValueError, "poll_interval must be positive"),
        ({"poll_interval": "1"}, TypeError, "poll_interval must be a number"),
    ],
)
def test_follow_arguments_raise_at_the_call(
    db: Path, arguments: dict[str, Any], error: type[Exception], match: str
) -> None:
    with FailureReader(db) as reader, pytest.raises(error, match=match):
        reader.follow(**arguments)  # not a generator: no next() needed to see the error


def test_huge_counts_mean_all(db: Path) -> None:
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        raise KeyboardInterrupt

    with FailureReader(db) as reader:
        assert len(list(reader.query(limit=HUGE, page_size=HUGE))) == 3
        summary = reader.summary(top_queries=HUGE, max_buckets=HUGE)
        assert [q.query for q in summary.repeated_queries] == ["where is it"]
        followed = reader.follow(backlog=HUGE, poll_interval=1e300, sleep=nap)
        assert [next(followed).query_text for _ in range(3)] == ["where is it", "where is it", "hm"]
        with pytest.raises(KeyboardInterrupt):
            next(followed)
    assert naps == [86400.0]  # at most a day between polls: time.sleep(1e300) overflows


async def test_the_async_reader_checks_the_same_way(db: Path) -> None:
    async with open_failure_reader(db) as reader:
        with pytest.raises(ValueError, match="unknown failure type 'NO_HIT'"):
            reader.query(failure_type="NO_HIT")  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises(ValueError, match="unknown failure type 'nohit'"):
            await reader.count(failure_type="nohit")  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises(ValueError, match="unknown failure type 'x'"):
            await reader.summary(failure_type="x")  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises(ValueError, match="unknown failure type 'x'"):
            reader.follow(failure_type="x")  # type: ignore[arg-type]  # wrong on purpose
        with pytest.raises(TypeError, match="limit must be an int"):
            reader.query(limit="3")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="thresholds must be finite"):
            await reader.summary(thresholds=[float("nan")])
        with pytest.raises(ValueError, match="poll_interval"):
            reader.follow(poll_interval=-1)
        assert len([r async for r in reader.query(limit=HUGE, page_size=HUGE)]) == 3
        assert (await reader.summary(top_queries=HUGE)).total == 3


# ------------------------------------------------------------------ no match is no empty database


def test_a_summary_that_matches_nothing_knows_the_database_is_not_empty(
    db: Path, tmp_path: Path
) -> None:
    with FailureReader(db) as reader:
        nothing = reader.summary(strategy="nosuch")
        everything = reader.summary()
        narrowed = reader.summary(failure_type="timeout", strategy=["keyword"], conversation_id=8)
    assert (nothing.total, nothing.table_total, nothing.strategies) == (0, 3, ("nosuch",))
    assert (everything.total, everything.table_total) == (3, 3)
    assert (narrowed.total, narrowed.failure_types, narrowed.conversation_id) == (
        1,
        ("timeout",),
        8,
    )
    page = render_html(nothing, database="f.db")
    assert "0 failures match (the database holds 3 in all)" in page
    assert "only strategy &#x27;nosuch&#x27;" in page
    empty = make_db(tmp_path / "empty.db", [])
    with FailureReader(empty) as reader:
        assert "holds no failures at all" in render_html(reader.summary(), database="e")
        assert "holds no failures at all" in render_html(reader.summary(strategy="x"), database="e")


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("command", ["report", "tail", "export"])
@pytest.mark.parametrize("bad", ["nohit", "NO_HIT", "timeouts"])
def test_an_unknown_type_is_a_usage_error_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str], db: Path, command: str, bad: str
) -> None:
    code, out, err = run(capsys, command, str(db), "--type", bad)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"argument --type: unknown failure type {bad!r}" in err
    assert VALID in err


@pytest.mark.parametrize(
    "filters",
    [
        ["--strategy", "nosuch"],
        ["--type", "error"],
        ["--until", "2000-01-01"],
        ["--since", "2030-01-01", "--type", "no_hit"],
    ],
)
def test_a_filter_that_matches_nothing_says_so(
    capsys: pytest.CaptureFixture[str], db: Path, filters: list[str]
) -> None:
    code, out, err = run(capsys, "report", str(db), *filters)
    assert (code, err) == (0, "")
    assert "0 failures match (the database holds 3 in all)" in out
    assert "no failures" not in out
    code, out, err = run(capsys, "report", str(db), *filters, "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert (data["total"], data["table_total"]) == (0, 3)
    code, out, err = run(capsys, "export", str(db), *filters)
    assert (code, out) == (0, "")
    assert (
        err == "trio-failurelog: exported 0 rows: none of the 3 failures in the database matches\n"
    )


def test_an_empty_database_says_it_is_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = make_db(tmp_path / "empty.db", [])
    code, out, _ = run(capsys, "report", str(path))
    assert code == 0
    assert "0 failures: the database holds no failures at all" in out
    code, out, err = run(capsys, "export", str(path), "--format", "csv")
    assert code == 0
    assert out.startswith("id,")
    assert "the database holds no failures at all" in err


def test_filters_are_shown_in_the_report(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, _ = run(
        capsys, "report", str(db), "--type", "timeout", "--type", "no_hit", "--strategy", "keyword"
    )
    assert code == 0
    assert "only type timeout, no_hit; strategy 'keyword'" in out
    assert "1 failure (timeout 1)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", "{db}", "--top", "x"], "argument --top: not a whole number"),
        (["report", "{db}", "--thresholds", "nan"], "argument --thresholds: invalid thresholds"),
        (["report", "{db}", "--thresholds", "inf,0.5"], "argument --thresholds: invalid"),
        (["report", "{db}", "--thresholds", ","], "argument --thresholds: invalid thresholds"),
        (["tail", "{db}", "-n", "-1"], "argument -n/--lines: must not be negative"),
        (["tail", "{db}", "--interval", "inf"], "argument --interval: must be finite"),
        (["tail", "{db}", "--interval", "nan"], "argument --interval: must be positive"),
        (["demo", "--duration", "inf"], "argument --duration: must be finite"),
        (["demo", "--rate", "inf"], "argument --rate: must be finite"),
        (["demo", "--capacity", "0"], "argument --capacity: must be positive"),
    ],
)
def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], db: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *(arg.format(db=db) for arg in argv))
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert message in err


def test_huge_counts_on_the_command_line_mean_all(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "report", str(db), "--top", str(HUGE), "--json")
    assert (code, err) == (0, "")
    assert [q["query"] for q in json.loads(out)["repeated_queries"]] == ["where is it"]
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        raise KeyboardInterrupt

    from trio_failurelog import _cli

    monkeypatch.setattr(_cli, "sleep", nap)
    code, out, err = run(capsys, "tail", str(db), "-n", str(HUGE), "--interval", "1e300")
    assert (code, err) == (130, "")
    assert len(out.splitlines()) == 3
    assert naps == [86400.0]
