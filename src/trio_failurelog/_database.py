"""The store protocol: what the writer needs of a database, and opening the right one.

The writer talks to its database only through :class:`Store`: ``write_batch``,
``purge_chunk`` and ``close``, each blocking and run on the writer's worker
thread, plus ``is_transient`` to tell a busy database (retry) from a broken one
(count the batch as failed). :func:`open_store` picks the implementation from
the database argument: a ``postgresql://`` or ``postgres://`` URL means
PostgreSQL (the ``postgres`` extra), anything else is an SQLite path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ._errors import DatabaseSetupError
from ._record import RetrievalFailureRecord

__all__ = [
    "BatchOutcome",
    "Database",
    "QueuedRecord",
    "Store",
    "StoreKind",
    "StoreOptions",
    "Synchronous",
    "describe_database",
    "importing_postgres",
    "is_postgres_url",
    "open_store",
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

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass(slots=True)
class BatchOutcome:
    """What became of a batch: how many rows were committed, why the others were not."""

    written: int = 0
    rejected: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """The writer's settings that concern the database, as :func:`open_store` takes them.

    Attributes:
      busy_timeout: How long one call waits on a lock another connection
        holds before it gives up with a transient error (the writer retries).
      synchronous: SQLite's ``PRAGMA synchronous``; ignored by PostgreSQL.
      connect_timeout: How long opening may wait for a server (PostgreSQL).
    """

    busy_timeout: float = 0.1
    synchronous: Synchronous = "NORMAL"
    connect_timeout: float = 10.0


class Store(Protocol):
    """One connection to a database holding ``memory_retrieval_failures``.

    Every method blocks and is called on the writer's worker thread, one call
    at a time. A method that raises leaves the store usable: the next call
    reconnects when it must.
    """

    #: Which implementation this is (an OpenTelemetry attribute, for one).
    kind: StoreKind
    #: The database, named for messages: never holds a password.
    name: str

    def write_batch(
        self, items: Sequence[QueuedRecord], *, sent: Callable[[], object] | None = None
    ) -> BatchOutcome:
        """Insert ``items`` in one transaction; a row the database refuses costs that row only.

        ``sent``, if given, may be called (on this thread, quickly; again is
        harmless) when the batch has been handed to the database and the rest
        of the call only waits for it: the writer then takes the next batch
        from the channel. Raises for trouble with the whole batch; nothing is
        acknowledged then.
        """
        ...

    def purge_chunk(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` rows created before ``older_than`` (POSIX seconds).

        Returns how many were deleted; fewer than ``limit`` means done for now.
        """
        ...

    def is_transient(self, error: Exception) -> bool:
        """Whether ``error`` (raised by this store) goes away when the call is retried."""
        ...

    def close(self) -> None:
        """Release the connection. Called once, after every other call has finished."""
        ...


def is_postgres_url(database: Database) -> bool:
    """Whether ``database`` names a PostgreSQL server rather than an SQLite file.

    The scheme is matched in any case: ``POSTGRESQL://user:secret@host/db`` taken
    for a file name would put its password into every message.
    """
    return isinstance(database, str) and database[:13].lower().startswith(_POSTGRES_SCHEMES)


def store_kind(database: Database) -> StoreKind:
    """The kind of store :func:`open_store` opens for ``database``."""
    return "postgresql" if is_postgres_url(database) else "sqlite"


def describe_database(database: Database) -> str:
    """``database`` as messages show it: quoted, and without a password in it."""
    if is_postgres_url(database):
        assert isinstance(database, str)
        from ._conninfo import redact_url  # only PostgreSQL needs it

        return repr(redact_url(database))
    return repr(os.fspath(database))


# The psycopg distribution's import packages: psycopg itself, and the compiled
# implementations of its ``binary`` and ``c`` variants.
_DRIVER_PACKAGES = frozenset({"psycopg", "psycopg_binary", "psycopg_c"})


def _is_driver_missing(error: ImportError) -> bool:
    """Whether ``error`` means psycopg is missing or unusable (no libpq), rather
    than a bug in the library's own modules."""
    if error.name is not None:
        return error.name.partition(".")[0] in _DRIVER_PACKAGES
    # psycopg raises a nameless ImportError of its own when it finds no libpq wrapper.
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = "" if frame is None else frame.tb_frame.f_globals.get("__name__", "")
    return str(module).partition(".")[0] in _DRIVER_PACKAGES


@contextlib.contextmanager
def importing_postgres() -> Iterator[None]:
    """Around an import of the PostgreSQL modules: psycopg missing (or unusable,
    without libpq) is a :exc:`DatabaseSetupError` naming the ``postgres`` extra;
    an ImportError of the library's own (a bug) comes out as it is."""
    try:
        yield
    except ImportError as exc:
        if not _is_driver_missing(exc):
            raise
        raise DatabaseSetupError(
            "a PostgreSQL database needs the 'postgres' extra: "
            "pip install 'trio-failurelog[postgres]' (from a checkout: "
            "pip install '.[postgres]')"
        ) from exc


def postgres_url(database: str) -> str:
    """``database`` with its scheme in lower case, as libpq wants it."""
    scheme, _, rest = database.partition("://")
    return f"{scheme.lower()}://{rest}"


def open_store(database: Database, options: StoreOptions) -> Store:
    """Open the store for ``database``: connect, check or create the table.

    Blocks (call it on a worker thread). Raises :exc:`DatabaseSetupError` (or
    :exc:`IncompatibleSchemaError`) when the database cannot be used, and when
    a PostgreSQL URL is given without the ``postgres`` extra installed.
    """
    if is_postgres_url(database):
        assert isinstance(database, str)
        with importing_postgres():
            from ._postgres_store import PostgresStore
        return PostgresStore.open(postgres_url(database), options)
    from ._sqlite_store import SQLiteStore  # keeps the modules acyclic

    return SQLiteStore.open(
        database, busy_timeout=options.busy_timeout, synchronous=options.synchronous
    )
