"""Checked by ``mypy --strict`` and run by ``tests/test_record.py``: types and checks agree.

Each builder in ``accepted()`` passes the type checker and construction; each
in ``REFUSED`` is a type error (its ``# type: ignore`` would be reported as
unneeded otherwise, under ``warn_unused_ignores``) and construction raises.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Final

from trio_failurelog import RetrievalFailureRecord as R

ACCEPTED_LINES: Final = 9


def accepted() -> list[R]:
    t0 = 100.0
    return [
        R("timeout", "semantic", "q", latency_ms=(t0 + 0.0127 - t0) * 1000),
        R("timeout", "semantic", "q", latency_ms=12),
        R("no_hit", "semantic", "q", created_at=datetime.datetime.now(datetime.UTC)),
        R("no_hit", "semantic", "q", created_at="2024-05-01T12:00:00"),
        R("no_hit", "semantic", "q", created_at="2024-05-01 12:00:00+02:00"),
        R("no_hit", "graph", "q", edge_types="cites"),
        R("no_hit", "graph", "q", edge_types=["cites", "mentions"]),
        R("no_hit", "graph", "q", edge_types=(e for e in ("cites",))),
        R("low_confidence", "semantic", "q", top_score=1, confidence_threshold=0.5),
    ]


REFUSED: Final[list[Callable[[], R]]] = [
    lambda: R("no_hit", "s", "q", edge_types=b"cites"),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", "q", turn_index=1.5),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", "q", result_count=2.0),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", "q", created_at=datetime.date(2024, 5, 1)),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", "q", created_at=1714564800),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", "q", latency_ms="12"),  # type: ignore[arg-type]
    lambda: R("no_hit", "s", b"q"),  # type: ignore[arg-type]
]
