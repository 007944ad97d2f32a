"""The database vocabulary every layer shares: the database argument, queued records, store options.

Pure names and computation, no backend: a ``postgresql://`` or
``postgres://`` URL means PostgreSQL (the ``postgres`` extra), anything else
is an SQLite path. Which backend opens it is decided in ``_backends.py`` alone;
what a backend must provide is in ``_protocols.py``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from ._record import RetrievalFailureRecord

__all__ = [
    "PARTITION_INTERVALS",
    "BatchOutcome",
    "Database",
    "PartitionInterval",
    "QueuedRecord",
    "StoreKind",
    "StoreOptions",
    "Synchronous",
    "database_label",
    "describe_database",
    "is_postgres_url",
    "postgres_url",
    "store_kind",
]

#: What the public API accepts as a database: an SQLite path or ``":memory:"``,
#: or a ``postgresql://`` URL.
Database = str | os.PathLike[str]

#: A record on its way to the database, with the ``time.time()`` of its ``log()``.
QueuedRecord = tuple[RetrievalFailureRecord, float]

#: SQLite's ``PRAGMA synchronous`` levels.
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

StoreKind = Literal["sqlite", "postgresql"]

#: How a PostgreSQL table the library creates partitioned by ``created_at`` is cut.
PartitionInterval = Literal["day", "week", "month"]
PARTITION_INTERVALS: tuple[PartitionInterval, ...] = ("day", "week", "month")

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(slots=True)
class BatchOutcome:
    """What became of a batch: how many rows were committed, why the others were not."""

    written: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """The writer's settings that concern the database, as ``open_store`` takes them.

    Attributes:
      busy_timeout: How long one call waits on a lock another connection
        holds before it gives up with a transient error (the writer retries).
      synchronous: SQLite's ``PRAGMA synchronous``; ignored by PostgreSQL.
      connect_timeout: How long opening may wait for a server (PostgreSQL).
      partition_interval: PostgreSQL: create a missing table partitioned by
        ``created_at`` in partitions of this interval, and keep partitions
        made ahead; ``None`` creates the plain table.
    """

    busy_timeout: float = 0.1
    synchronous: Synchronous = "NORMAL"
    connect_timeout: float = 10.0
    partition_interval: PartitionInterval | None = None


def is_postgres_url(database: Database) -> bool:
    """Whether ``database`` names a PostgreSQL server rather than an SQLite file.

    The scheme is matched in any case: ``POSTGRESQL://user:secret@host/db`` taken
    for a file name would put its password into every message.
    """
    return isinstance(database, str) and database[:13].lower().startswith(_POSTGRES_SCHEMES)


def store_kind(database: Database) -> StoreKind:
    """The kind of store ``open_store`` opens for ``database``."""
    return "postgresql" if is_postgres_url(database) else "sqlite"


def database_label(database: Database) -> str:
    """``database`` as a label (an OpenTelemetry attribute, say): its path, or
    its URL without a password; unquoted. Pure computation."""
    if is_postgres_url(database):
        assert isinstance(database, str)
        from ._conninfo import redact_url  # only PostgreSQL needs it

        return redact_url(database)
    return os.fspath(database)


def describe_database(database: Database) -> str:
    """``database`` as messages show it: :func:`database_label`, quoted."""
    return repr(database_label(database))


def postgres_url(database: str) -> str:
    """``database`` with its scheme in lower case, as libpq wants it."""
    scheme, _, rest = database.partition("://")
    return f"{scheme.lower()}://{rest}"
