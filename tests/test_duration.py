"""Parsing and formatting durations such as 30s, 15m, 24h, 30d, 2w."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog._duration import format_duration, parse_duration

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("24h", 86400),
        ("30d", 30 * 86400),
        ("2w", 14 * 86400),
        ("1d12h", 36 * 3600),
        ("1h30m15s", 5415),
        ("  5m ", 300),
        ("0s", 0),
        ("007m", 420),
    ],
)
def test_parses_valid_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    [
        "3x",
        "-1d",
        "+1d",
        "",
        "   ",
        "1.5h",
        "10",
        "h",
        "1H",
        "1d 2h",
        "d1",
        "1 d",
        "½h",
        "1dd",
        "\u0661s",
    ],
)
def test_rejects_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*30s, 15m, 24h, 30d or 2w"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["9" * 19 + "s", "99999999999w"])
def test_rejects_durations_too_long_for_timedelta(text: str) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_duration(30)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smhdw")), min_size=1))
def test_parts_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{amount}{unit}" for amount, unit in parts)
    expected = sum(amount * UNITS[unit] for amount, unit in parts)
    assert parse_duration(text) == timedelta(seconds=expected)


@given(st.text(max_size=12))
def test_anything_else_is_a_value_error(text: str) -> None:
    if re.fullmatch(r"(?:[0-9]+[smhdw])+", text.strip(), flags=re.ASCII):
        assert parse_duration(text) >= timedelta(0)
    else:
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration(text)


@given(st.integers(0, 10**10))
def test_format_round_trips(seconds: int) -> None:
    duration = timedelta(seconds=seconds)
    text = format_duration(duration)
    assert parse_duration(text) == duration
    assert re.fullmatch(r"(?:\d+[smhdw])+", text)


def test_format_examples() -> None:
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(days=1, hours=12)) == "1d12h"
    assert format_duration(timedelta(weeks=2, seconds=5)) == "2w5s"
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
