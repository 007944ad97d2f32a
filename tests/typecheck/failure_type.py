"""Checked by ``mypy --strict`` (``nox -s typecheck``), never run: what the types promise.

A ``# type: ignore`` that mypy finds unneeded is itself an error under
``--strict`` (``warn_unused_ignores``), so each line marked below fails the
typecheck session if the type it documents ever stops being an error.
"""

from __future__ import annotations

from trio_failurelog import RetrievalFailureLogger, RetrievalFailureRecord, RetrievalFailureType


def valid_failure_types() -> list[RetrievalFailureRecord]:
    return [
        RetrievalFailureRecord("no_hit", "semantic", "q"),
        RetrievalFailureRecord("low_confidence", "semantic", "q"),
        RetrievalFailureRecord("timeout", "semantic", "q"),
        RetrievalFailureRecord("error", "semantic", "q"),
        RetrievalFailureRecord(RetrievalFailureType.NO_HIT, "semantic", "q"),
    ]


def typos_are_type_errors() -> list[RetrievalFailureRecord]:
    return [
        RetrievalFailureRecord("nohit", "semantic", "q"),  # type: ignore[arg-type]
        RetrievalFailureRecord("NO_HIT", "semantic", "q"),  # type: ignore[arg-type]
    ]


def log_threadsafe_says_whether_it_took_the_record(logger: RetrievalFailureLogger) -> bool:
    taken: bool = logger.log_threadsafe(RetrievalFailureRecord("no_hit", "semantic", "q"))
    return taken
