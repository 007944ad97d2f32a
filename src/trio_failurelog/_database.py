"""The database vocabulary every layer shares: the database argument, queued records, store options.

Pure names and computation, no backend: a ``postgresql://`` or
``postgres://`` URL (a driver suffix as SQLAlchemy writes it, ``+psycopg``,
allowed) means PostgreSQL (the ``postgres`` extra), another URL or a libpq
``key=value`` string is refused, anything else is an SQLite path. Which
backend opens it is decided in ``_backends.py`` alone; what a backend must
provide is in ``_protocols.py``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal

from ._conninfo import redact_keywords, redact_url
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
    "check_database",
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

_POSTGRES_SCHEMES = ("postgresql", "postgres")
#: Text that begins as a URL does: ``scheme://``.
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
#: Text that begins as a libpq connection string does: ``host=...``, ``dbname=...``.
_KEYWORDS_START = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|service|sslmode)\s*=", re.IGNORECASE
)


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
      setup_timeout: SQLite: how long opening waits for a lock another
        connection holds (a ``purge --vacuum`` holds it throughout), at least
        5 s; the logger's ``retry_timeout``.
    """

    busy_timeout: float = 0.1
    synchronous: Synchronous = "NORMAL"
    connect_timeout: float = 10.0
    partition_interval: PartitionInterval | None = None
    setup_timeout: float = 5.0


def url_scheme(database: Database) -> str | None:
    """The scheme of ``database``, in lower case, when it is text that begins as a
    URL does (``scheme://``); else None. Pure computation."""
    if isinstance(database, str) and (match := _URL_START.match(database)):
        return match.group()[:-3].lower()
    return None


def is_postgres_url(database: Database) -> bool:
    """Whether ``database`` names a PostgreSQL server rather than an SQLite file.

    The scheme is matched in any case, and with a driver suffix as SQLAlchemy
    writes it (``postgresql+psycopg://``): either, taken for a file name, would
    put its password into every message.
    """
    scheme = url_scheme(database)
    return scheme is not None and scheme.partition("+")[0] in _POSTGRES_SCHEMES


def check_database(database: Database) -> None:
    """Refuse text that names a database the library does not take.

    A URL of another scheme (``mysql://``, ``sqlite:///x.db``) or a libpq
    ``key=value`` connection string would otherwise be taken for the name of
    an SQLite file: created by a logger, and shown, password and all, in
    every message. Raises :exc:`ValueError` naming ``database``, shown
    without its password. Never blocks.
    """
    scheme = url_scheme(database)
    if scheme is not None and not is_postgres_url(database):
        raise ValueError(
            f"database: {describe_database(database)} is a {scheme}:// URL; trio-failurelog "
            "takes the path of an SQLite file or a postgresql:// URL"
        )
    if scheme is None and isinstance(database, str) and _KEYWORDS_START.match(database):
        raise ValueError(
            f"database: {describe_database(database)} looks like a libpq key=value "
            "connection string; trio-failurelog takes a postgresql:// URL (or the path of "
            "an SQLite file)"
        )


def store_kind(database: Database) -> StoreKind:
    """The kind of store ``open_store`` opens for ``database``."""
    return "postgresql" if is_postgres_url(database) else "sqlite"


def database_label(database: Database) -> str:
    """``database`` as a label (an OpenTelemetry attribute, say): its path, or
    its URL without a password; unquoted. Pure computation."""
    if url_scheme(database) is not None:  # any URL: a password is hidden whatever the scheme
        assert isinstance(database, str)
        return redact_url(database)
    return redact_keywords(os.fspath(database))


def describe_database(database: Database) -> str:
    """``database`` as messages show it: :func:`database_label`, quoted."""
    return repr(database_label(database))


def postgres_url(database: str) -> str:
    """``database`` as libpq wants it: its scheme in lower case, without a driver
    suffix (``postgresql+psycopg://`` is ``postgresql://``)."""
    scheme, _, rest = database.partition("://")
    return f"{scheme.lower().partition('+')[0]}://{rest}"
