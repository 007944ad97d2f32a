"""Checked by ``mypy --strict`` (``nox -s typecheck``), never run: the readers' filters.

A ``failure_type`` filter takes the enum or one of the four names, alone or
several; a typo is a type error (and a ValueError at run time). Each line
marked ``# type: ignore`` fails the typecheck session if that ever changes.
"""

from __future__ import annotations

from trio_failurelog import AsyncFailureReader, FailureReader, RetrievalFailureType


def valid(reader: FailureReader) -> list[int]:
    return [
        reader.count(failure_type="no_hit"),
        reader.count(failure_type=RetrievalFailureType.TIMEOUT),
        reader.count(failure_type=["low_confidence", RetrievalFailureType.ERROR]),
        reader.count(failure_type=("timeout",), strategy="semantic"),
    ]


def typos(reader: FailureReader, text: str) -> None:
    reader.count(failure_type="nohit")  # type: ignore[arg-type]
    reader.query(failure_type=["timeout", "tiemout"])  # type: ignore[list-item]
    reader.summary(failure_type=text)  # type: ignore[arg-type]
    reader.follow(failure_type="NO_HIT")  # type: ignore[arg-type]


async def typos_awaited(reader: AsyncFailureReader) -> None:
    await reader.count(failure_type="x")  # type: ignore[arg-type]
    await reader.summary(failure_type="Timeout")  # type: ignore[arg-type]
    reader.query(failure_type="no hit")  # type: ignore[arg-type]
    reader.follow(failure_type="errors")  # type: ignore[arg-type]
