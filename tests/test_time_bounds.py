"""Every time bound, in the reader API and on the command line, for every input.

since/until/older-than as timedeltas, datetimes, dates and text; huge values;
years before 1000 and after 9999; both ends of the range. A bound is either
an error naming the argument or selects exactly the rows it names.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog import FailureReader, open_failure_reader
from trio_failurelog._html import render_html
from trio_failurelog._purge import purge_older_than
from trio_failurelog._timetext import created_at_text, epoch_seconds, text_at

from ._failuredb import make_db, row, stored_rows
from ._helpers import run_cli as run

STORED_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3,6})?")
HUGE = timedelta(days=10**7)  # about 27,000 years: off the calendar both ways from now
STAMPS = (
    "0500-06-01 00:00:00",
    "1969-12-31 23:59:30",
    "1970-01-01 00:00:30",
    "2024-01-01 00:00:00",
    "9999-12-31 23:59:59",
)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(
        tmp_path / "years.db",
        [row("no_hit", "s", f"q{i}", stamp) for i, stamp in enumerate(STAMPS)],
    )


def queries(reader: FailureReader, **bounds: Any) -> list[str]:
    return sorted(r.query_text for r in reader.query(**bounds))


# ------------------------------------------------------------------ created_at_text


def test_the_text_of_a_bound_always_has_a_four_digit_year() -> None:
    assert created_at_text(datetime(999, 12, 31)) == "0999-12-31 00:00:00"
    assert created_at_text(datetime(1, 1, 1)) == "0001-01-01 00:00:00"
    assert created_at_text(date(999, 12, 31)) == "0999-12-31 00:00:00"
    assert created_at_text("0999-12-31") == "0999-12-31 00:00:00"
    assert created_at_text("0999-12-31T12:30+01:00") == "0999-12-31 11:30:00"
    assert text_at(-62135596800) == "0001-01-01 00:00:00"
    assert text_at(-1) == "1969-12-31 23:59:59"


@pytest.mark.parametrize(
    ("bound", "expected"),
    [
        (HUGE, "0001-01-01 00:00:00"),
        (timedelta(days=10**6), "0001-01-01 00:00:00"),  # a million years ago: since the beginning
        (timedelta.max, "0001-01-01 00:00:00"),
        (-HUGE, "9999-12-31 23:59:59.999999"),
        (timedelta.min, "9999-12-31 23:59:59.999999"),
        # A time zone can push either end of the calendar off it.
        (datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))), "0001-01-01 00:00:00"),
        (datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))), "9999-12-31 23:59:59.999999"),
        (datetime.min, "0001-01-01 00:00:00"),
        (datetime.max, "9999-12-31 23:59:59.999999"),
    ],
)
def test_bounds_beyond_the_calendar_are_clamped_to_its_ends(bound: Any, expected: str) -> None:
    assert created_at_text(bound, now=datetime(2024, 1, 1, tzinfo=UTC)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "10000-01-01",
        "10000-01-01 00:00:00",
        "0000-01-01 00:00:00",
        "2024-02-30 00:00:00",
        "999-12-31",
    ],
)
def test_text_that_is_no_time_raises_naming_the_argument(text: str) -> None:
    with pytest.raises(ValueError, match=r"^until: invalid time .*0001 to 9999"):
        created_at_text(text, name="until")


zones: Any = st.one_of(  # Any: hypothesis's stub types the argument too narrowly
    st.none(),
    st.timezones(),
    st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-1439, 1439)),
)
moments = st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=zones)


@given(moments, moments)
def test_bound_text_sorts_as_the_times_do(a: datetime, b: datetime) -> None:
    # created_at is compared as text: that is only right if text order is time order.
    text_a, text_b = created_at_text(a), created_at_text(b)
    assert STORED_FORM.fullmatch(text_a)
    assert created_at_text(text_a) == text_a  # and reads back as itself
    if a.tzinfo is None and b.tzinfo is None:
        assert (a < b) == (text_a < text_b)
    elif a.tzinfo is not None and b.tzinfo is not None and a <= b:
        assert text_a <= text_b  # beyond either end, times clamp to the same text


@given(st.timedeltas(), st.datetimes(timezones=st.just(UTC)))
def test_any_timedelta_is_a_bound(ago: timedelta, now: datetime) -> None:
    text = created_at_text(ago, now=now)
    assert STORED_FORM.fullmatch(text)
    seconds = epoch_seconds(text)
    assert seconds is not None


# ------------------------------------------------------------------ the reader


def test_huge_durations_select_everything_or_nothing(db: Path) -> None:
    everything = sorted(f"q{i}" for i in range(len(STAMPS)))
    with FailureReader(db) as reader:
        assert queries(reader, since=HUGE) == everything
        assert queries(reader, since=timedelta(days=10**6)) == everything
        assert queries(reader, until=HUGE) == []
        assert queries(reader, since=-HUGE) == []
        assert queries(reader, until=-HUGE) == everything
        assert queries(reader, since=timedelta.max, until=timedelta.min) == everything
        assert reader.count(since=HUGE) == len(STAMPS)
        assert reader.count(until=HUGE) == 0
        assert reader.summary(since=HUGE).total == len(STAMPS)
        assert reader.summary(until=HUGE).total == 0


@pytest.mark.parametrize(
    "since",
    [datetime(999, 12, 31), date(999, 12, 31), "0999-12-31", "0999-12-31 00:00:00"],
)
def test_a_year_before_1000_is_a_bound_like_any_other(db: Path, since: Any) -> None:
    with FailureReader(db) as reader:
        assert queries(reader, since=since) == ["q1", "q2", "q3", "q4"]
        assert queries(reader, until=since) == ["q0"]
        summary = reader.summary(since=since)
    assert summary.total == 4
    assert summary.since == "0999-12-31 00:00:00"


def test_both_ends_of_the_calendar(db: Path) -> None:
    with FailureReader(db) as reader:
        assert len(queries(reader, since=datetime.min, until=datetime.max)) == len(STAMPS)
        assert queries(reader, since="9999-12-31 23:59:59") == ["q4"]
        assert queries(reader, until="0500-06-01 00:00:00") == []
        assert queries(reader, until="0500-06-01 00:00:01") == ["q0"]
        summary = reader.summary(since=datetime.min, until=datetime.max)
    assert summary.total == len(STAMPS)
    # The timeline spans the failures (from the bucket of the first one), not the range.
    assert summary.first_at is not None
    assert summary.timeline[0].start <= summary.first_at
    assert summary.timeline[0].total > 0
    assert summary.timeline[-1].total > 0
    assert sum(bucket.total for bucket in summary.timeline) == len(STAMPS)


def test_rows_before_1970_land_in_their_own_timeline_bucket(db: Path) -> None:
    # SQLite's integer division truncates toward zero: -30 / 60 is 0, which put a
    # row at 23:59:30 on 31 December 1969 into the bucket of 00:00 on 1 January.
    with FailureReader(db) as reader:
        summary = reader.summary(
            since="1969-12-31 23:59:00", until="1970-01-01 00:01:00", max_buckets=2
        )  # the failures span 60 s: one-minute buckets
    assert summary.bucket_seconds == 60
    assert [(b.start, b.total) for b in summary.timeline] == [
        ("1969-12-31 23:59:00", 1),
        ("1970-01-01 00:00:00", 1),
    ]


def test_the_report_header_shows_four_digit_years(db: Path) -> None:
    with FailureReader(db) as reader:
        summary = reader.summary(since=datetime(1, 1, 1), until=date(999, 12, 31))
    assert "0001-01-01 00:00:00 to 0999-12-31 00:00:00 UTC" in render_html(summary, database="x")


async def test_the_async_reader_takes_the_same_bounds(db: Path) -> None:
    async with open_failure_reader(db) as reader:
        assert await reader.count(since=HUGE) == len(STAMPS)
        assert [r.query_text async for r in reader.query(until=HUGE)] == []
        assert (await reader.summary(since=date(999, 12, 31))).total == 4
        with pytest.raises(ValueError, match=r"^since: invalid time"):
            await reader.count(since="10000-01-01")


@pytest.mark.parametrize(
    ("before", "deleted", "left"),
    [
        (HUGE, 0, 5),
        (-HUGE, 5, 0),
        (date(999, 12, 31), 1, 4),
        ("0999-12-31", 1, 4),
        (datetime.max, 5, 0),
    ],
)
def test_purge_takes_every_bound(db: Path, before: Any, deleted: int, left: int) -> None:
    assert purge_older_than(db, before, dry_run=True) == deleted
    assert purge_older_than(db, before) == deleted
    assert len(stored_rows(db)) == left


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize(
    ("flag", "value", "total"),
    [
        ("--since", "99999999d", 5),
        ("--until", "99999999d", 0),
        ("--since", "0999-12-31", 4),
        ("--until", "0999-12-31", 1),
        ("--since", "0001-01-01T00:00", 5),
        ("--until", "9999-12-31T23:59:59", 4),
        ("--since", "9999-12-31 23:59:59", 1),
        ("--since", "1969-12-31T23:59:59-01:00", 2),
    ],
)
def test_every_command_takes_every_bound(
    capsys: pytest.CaptureFixture[str], db: Path, flag: str, value: str, total: int
) -> None:
    code, out, err = run(capsys, "report", str(db), flag, value, "--json")
    assert (code, err) == (0, "")
    assert f'"total": {total},' in out
    code, out, err = run(capsys, "export", str(db), flag, value)
    assert code == 0
    assert "Traceback" not in err
    assert len(out.splitlines()) == total


@pytest.mark.parametrize(
    ("value", "deleted"), [("99999999d", 0), ("0999-12-31", 1), ("9999-12-31T23:59:59", 4)]
)
def test_purge_older_than_every_bound(
    capsys: pytest.CaptureFixture[str], db: Path, value: str, deleted: int
) -> None:
    code, out, err = run(capsys, "purge", str(db), "--older-than", value, "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith(f"would delete {deleted} rows older than ")
    code, out, err = run(capsys, "purge", str(db), "--older-than", value)
    assert (code, err) == (0, "")
    assert out.startswith(f"deleted {deleted} rows older than ")
    assert len(stored_rows(db)) == len(STAMPS) - deleted


@pytest.mark.parametrize("command", [["report"], ["export"], ["purge", "--dry-run"]])
@pytest.mark.parametrize("value", ["10000-01-01", "0000-01-01", "2024-02-30"])
def test_times_off_the_calendar_are_usage_errors(
    capsys: pytest.CaptureFixture[str], db: Path, command: list[str], value: str
) -> None:
    flag = "--older-than" if command[0] == "purge" else "--since"
    code, out, err = run(capsys, command[0], str(db), *command[1:], flag, value)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert f"argument {flag}: invalid time {value!r}" in err


def test_the_terminal_header_shows_four_digit_years(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    code, out, _ = run(capsys, "report", str(db), "--since", "0999-12-31")
    assert code == 0
    assert out.splitlines()[1] == "0999-12-31 00:00:00 to now UTC"
