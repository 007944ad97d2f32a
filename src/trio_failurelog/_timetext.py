"""``created_at`` text: time bounds into the stored form, and the stored form into seconds.

``created_at`` is UTC text ``YYYY-MM-DD HH:MM:SS[.fff[fff]]`` in both
backends' rows as the readers see them, and it compares as time. Pure
computation: nothing here blocks.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

__all__ = [
    "TimeBound",
    "created_at_text",
    "epoch_seconds",
    "format_created_at",
    "text_at",
]

#: A time-range bound: a :class:`~datetime.datetime` (naive means UTC) or
#: :class:`~datetime.date`, a :class:`~datetime.timedelta` (that long before
#: now), or UTC text (``created_at`` form or ISO 8601).
TimeBound = datetime | date | timedelta | str

_CREATED_AT: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
)

#: The earliest and latest times a bound can name; bounds beyond them are clamped
#: to them (a duration of a million years ago means "since the beginning").
_EARLIEST: Final = datetime.min
_LATEST: Final = datetime.max
_EPOCH: Final = datetime(1970, 1, 1)
_TIME_FORMS: Final = (
    "a duration, a datetime, or UTC text as 'YYYY-MM-DD HH:MM:SS[.ffffff]' or ISO 8601, "
    "years 0001 to 9999"
)


def _naive_utc(moment: datetime) -> datetime:
    """``moment`` as a naive UTC datetime, clamped to the representable range."""
    offset = moment.utcoffset()
    if offset is None:
        return moment
    try:
        return moment.replace(tzinfo=None) - offset
    except OverflowError:  # 0001-01-01 00:30+01:00 is before the first representable time
        return _EARLIEST if offset > timedelta(0) else _LATEST


def _format(moment: datetime) -> str:
    # Not strftime: it writes year 999 as "999" on glibc, which then compares
    # as text after "2024" (and 1 as "1", not "0001").
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    micro = moment.microsecond
    if micro == 0:
        return text
    if micro % 1000 == 0:
        return f"{text}.{micro // 1000:03d}"
    return f"{text}.{micro:06d}"


def format_created_at(moment: datetime) -> str:
    """A naive UTC datetime as ``created_at`` text: no fraction for a whole second,
    three digits for whole milliseconds, six otherwise (as :func:`created_at_text`)."""
    return _format(moment)


def _parse_text(value: str, name: str) -> str | datetime:
    """Stored-form text unchanged, or ISO 8601 text as a datetime; else ValueError."""
    if _CREATED_AT.fullmatch(value):
        try:  # the form is right, but is it a date? ("2024-02-30", year 0000)
            datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
        else:
            return value
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name}: invalid time {value!r}: use {_TIME_FORMS}") from None


def created_at_text(
    value: TimeBound, *, now: datetime | None = None, name: str = "time bound"
) -> str:
    """Turn a time-range bound into ``created_at`` text, which compares as time.

    An aware :class:`~datetime.datetime` is converted to UTC; a naive one is
    taken as UTC already; a :class:`~datetime.date` means its midnight, UTC. A
    :class:`~datetime.timedelta` means that long before ``now`` (default: the
    current time, cut to the whole second); a negative one, after. Text in the
    stored form ``YYYY-MM-DD HH:MM:SS[.fff]`` is returned unchanged; other ISO
    8601 text (``2024-05-01T12:00``, ``2024-05-01``, ``...+02:00``) is read as a
    datetime. A bound before 0001-01-01 or after 9999-12-31 (a timedelta of a
    million years, a time zone at either end) is clamped to that end, which
    gives the same rows: none are stored outside it.

    The result always has a four-digit year, no fractional part when the time
    is a whole second, three digits for whole milliseconds (what this library
    writes), six otherwise, so that a row stamped at exactly the bound compares
    equal to it.

    Raises :exc:`ValueError` (its message starting with ``name``) for text
    that is not a valid time, and :exc:`TypeError` for other types. Pure
    computation: never blocks.
    """
    if isinstance(value, str):
        parsed = _parse_text(value, name)
        if isinstance(parsed, str):
            return parsed
        value = parsed
    if isinstance(value, timedelta):
        base = _naive_utc((now or datetime.now(UTC)).replace(microsecond=0))
        try:
            moment = base - value
        except OverflowError:
            moment = _EARLIEST if value > timedelta(0) else _LATEST
    elif isinstance(value, datetime):
        moment = _naive_utc(value)
    elif isinstance(value, date):
        moment = datetime.combine(value, datetime.min.time())
    else:
        raise TypeError(
            f"{name} must be a datetime, date, timedelta or str, not {type(value).__name__}"
        )
    return _format(moment)


def epoch_seconds(created_at: str) -> float | None:
    """``created_at`` text as POSIX seconds, or ``None`` when it is not in the stored form."""
    if not _CREATED_AT.fullmatch(created_at):
        return None
    try:  # rows of other writers are not validated: "2024-02-30" may be there
        whole = datetime.strptime(created_at[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    fraction = float("0" + created_at[19:]) if len(created_at) > 19 else 0.0
    return (whole - _EPOCH).total_seconds() + fraction


def text_at(seconds: float) -> str:
    """POSIX seconds as ``created_at`` text (whole seconds, clamped to years 0001-9999)."""
    whole = math.floor(seconds)
    try:
        moment = _EPOCH + timedelta(seconds=whole)
    except OverflowError:
        moment = _EARLIEST if whole < 0 else _LATEST.replace(microsecond=0)
    return _format(moment)
