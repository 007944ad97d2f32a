"""The logger's settings, validated once at construction so the write path can trust them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ._database import StoreOptions, Synchronous
from ._redaction import Redactor, validate_redactor

__all__ = ["LoggerSettings"]

_SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _seconds(name: str, value: object, *, allow_zero: bool, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if math.isinf(seconds) and not allow_inf:
        raise ValueError(f"{name} must be finite, got {value!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class LoggerSettings:
    """Everything :class:`~trio_failurelog.RetrievalFailureLogger` takes besides the database.

    Construction validates each field and raises :exc:`TypeError` or
    :exc:`ValueError` naming it; the meaning of each is documented on the logger.
    """

    capacity: int = 8192
    batch_size: int = 512
    flush_interval: float = 0.5
    retention_days: float | None = 90
    purge_every: int = 500
    drain_timeout: float = 5.0
    busy_timeout: float = 0.1
    retry_timeout: float = 30.0
    synchronous: Synchronous = "NORMAL"
    connect_timeout: float = 10.0
    redact: Redactor | None = None

    def __post_init__(self) -> None:
        checked = {
            "capacity": _positive_int("capacity", self.capacity),
            "batch_size": _positive_int("batch_size", self.batch_size),
            "flush_interval": _seconds("flush_interval", self.flush_interval, allow_zero=False),
            "retention_days": None
            if self.retention_days is None
            else _seconds("retention_days", self.retention_days, allow_zero=False),
            "purge_every": _positive_int("purge_every", self.purge_every),
            "drain_timeout": _seconds(
                "drain_timeout", self.drain_timeout, allow_zero=True, allow_inf=True
            ),
            "busy_timeout": _seconds("busy_timeout", self.busy_timeout, allow_zero=True),
            "retry_timeout": _seconds("retry_timeout", self.retry_timeout, allow_zero=True),
            "connect_timeout": _seconds("connect_timeout", self.connect_timeout, allow_zero=False),
            "redact": validate_redactor(self.redact),
        }
        if self.synchronous not in _SYNCHRONOUS_MODES:
            raise ValueError(
                f"synchronous must be one of {_SYNCHRONOUS_MODES}, got {self.synchronous!r}"
            )
        for name, value in checked.items():  # normalised: ints stay ints, numbers become floats
            object.__setattr__(self, name, value)

    @property
    def store_options(self) -> StoreOptions:
        """The settings the store needs, as ``open_store`` takes them."""
        return StoreOptions(
            busy_timeout=self.busy_timeout,
            synchronous=self.synchronous,
            connect_timeout=self.connect_timeout,
        )
