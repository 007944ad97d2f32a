"""Durations as people type them on a command line: ``30s``, ``15m``, ``24h``, ``30d``, ``2w``.

Parsing is pure computation: it never blocks and has no side effects.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

__all__ = ["format_duration", "parse_duration"]

_UNIT_SECONDS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART: Final = re.compile(r"([0-9]+)([smhdw])")
_WHOLE: Final = re.compile(r"(?:[0-9]+[smhdw])+")
_EXAMPLES: Final = "30s, 15m, 24h, 30d or 2w"


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``30s``, ``15m``, ``24h``, ``30d``, ``2w`` or ``1d12h``.

    One or more parts, each a whole number followed by a unit: ``s`` seconds,
    ``m`` minutes, ``h`` hours, ``d`` days, ``w`` weeks (lower case, no spaces
    between parts; spaces around the whole are ignored). Zero is allowed.

    Raises :exc:`ValueError` with a message quoting ``text`` for anything else:
    an empty string, a sign, a fraction, an unknown unit such as ``3x``, or a
    duration too long for :class:`~datetime.timedelta` (about 2.7 million years).
    Raises :exc:`TypeError` when ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(f"a duration must be a str, not {type(text).__name__}")
    stripped = text.strip()
    if not _WHOLE.fullmatch(stripped):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, as in {_EXAMPLES}")
    parts = _PART.findall(stripped)
    if any(len(amount) > 18 for amount, _unit in parts):
        raise ValueError(f"invalid duration {text!r}: too long")
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in parts)
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"invalid duration {text!r}: too long") from None


def format_duration(duration: timedelta) -> str:
    """Write ``duration`` in the form :func:`parse_duration` reads, largest units first.

    Sub-second parts are dropped; a negative duration raises :exc:`ValueError`.
    ``format_duration(timedelta(0))`` is ``"0s"``.
    """
    seconds = int(duration.total_seconds())
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration: {duration}")
    parts: list[str] = []
    for unit, size in sorted(_UNIT_SECONDS.items(), key=lambda item: -item[1]):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
