"""The logger's settings, validated once at construction so the write path can trust them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ._database import PARTITION_INTERVALS, PartitionInterval, StoreOptions, Synchronous
from ._redaction import Redactor, validate_redactor

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_BUSY_TIMEOUT",
    "DEFAULT_CAPACITY",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_PARTITION_INTERVAL",
    "DEFAULT_PURGE_EVERY",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_SYNCHRONOUS",
    "LoggerSettings",
]

_SYNCHRONOUS_MODES: Final = ("OFF", "NORMAL", "FULL", "EXTRA")

# The logger's defaults, named once: LoggerSettings, RetrievalFailureLogger and
# open_failure_logger all take them from here (tests/test_settings.py checks
# the signatures agree), and the signatures still show the values.
#: How many records the buffer holds.
DEFAULT_CAPACITY: Final[int] = 8192
#: The most records written in one transaction.
DEFAULT_BATCH_SIZE: Final[int] = 512
#: The longest a record waits in a partial batch (seconds).
DEFAULT_FLUSH_INTERVAL: Final[float] = 0.5
#: Rows older than this many days are purged.
DEFAULT_RETENTION_DAYS: Final[float | None] = 90
#: Batches between two retention purges.
DEFAULT_PURGE_EVERY: Final[int] = 500
#: How long closing may write and close (seconds).
DEFAULT_DRAIN_TIMEOUT: Final[float] = 5.0
#: How long one database call waits on a lock (seconds).
DEFAULT_BUSY_TIMEOUT: Final[float] = 0.1
#: How long a busy database is retried (seconds).
DEFAULT_RETRY_TIMEOUT: Final[float] = 30.0
#: SQLite's PRAGMA synchronous.
DEFAULT_SYNCHRONOUS: Final[Synchronous] = "NORMAL"
#: How long opening waits for a PostgreSQL server (seconds).
DEFAULT_CONNECT_TIMEOUT: Final[float] = 10.0
#: PostgreSQL: the partitions of a table the logger creates (None: not partitioned).
DEFAULT_PARTITION_INTERVAL: Final[PartitionInterval | None] = None


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

    capacity: int = DEFAULT_CAPACITY
    batch_size: int = DEFAULT_BATCH_SIZE
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    retention_days: float | None = DEFAULT_RETENTION_DAYS
    purge_every: int = DEFAULT_PURGE_EVERY
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT
    synchronous: Synchronous = DEFAULT_SYNCHRONOUS
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    partition_interval: PartitionInterval | None = DEFAULT_PARTITION_INTERVAL
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
        interval = self.partition_interval
        if interval is not None and interval not in PARTITION_INTERVALS:
            raise ValueError(
                f"partition_interval must be one of {PARTITION_INTERVALS} or None,"
                f" got {self.partition_interval!r}"
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
            partition_interval=self.partition_interval,
            # A lock held at open is the busy database retry_timeout is about.
            setup_timeout=self.retry_timeout,
        )
