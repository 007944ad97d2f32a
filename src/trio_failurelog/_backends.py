"""The picker: turns a database argument into a store, a read connection or a VACUUM.

It names both backends; every other module names at most one. A
``postgresql://`` or ``postgres://`` URL opens the PostgreSQL backend
(``_postgres/``, which needs the ``postgres`` extra, so it is imported only
then); anything else is an SQLite path (``_sqlite/``). A third backend is
one more package beside these and one more branch here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from ._database import Database, StoreOptions, check_database, is_postgres_url, postgres_url
from ._errors import DatabaseSetupError
from ._extras import install_hint
from ._protocols import ReadConnection, Store
from ._sqlite import SQLiteReadConnection, SQLiteStore, VacuumOutcome, free_bytes, vacuum_file

__all__ = [
    "importing_postgres",
    "open_read_connection",
    "open_store",
    "reclaimable_bytes",
    "vacuum_database",
]

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
    """Around an import of the PostgreSQL backend: psycopg missing (or unusable,
    without libpq) is a :exc:`DatabaseSetupError` naming the ``postgres`` extra;
    an ImportError of the library's own (a bug) comes out as it is."""
    try:
        yield
    except ImportError as exc:
        if not _is_driver_missing(exc):
            raise
        raise DatabaseSetupError(
            "a PostgreSQL database needs the 'postgres' extra (psycopg 3): "
            + install_hint("postgres")
        ) from exc


def open_store(database: Database, options: StoreOptions) -> Store:
    """Open the store for ``database``: connect, check or create the table.

    Blocks (call it on a worker thread). Raises :exc:`DatabaseSetupError` (or
    :exc:`IncompatibleSchemaError`) when the database cannot be used, and when
    a PostgreSQL URL is given without the ``postgres`` extra installed.
    """
    _check(database)
    if is_postgres_url(database):
        assert isinstance(database, str)
        with importing_postgres():
            from ._postgres import PostgresStore
        return PostgresStore.open(postgres_url(database), options)
    return SQLiteStore.open(
        database,
        busy_timeout=options.busy_timeout,
        synchronous=options.synchronous,
        setup_timeout=options.setup_timeout,
    )


def open_read_connection(database: Database, *, writable: bool = False) -> ReadConnection:
    """Open ``database`` for reading: an SQLite file read-only, or a PostgreSQL URL
    in a read-only session. ``writable`` (for the manual purge): read-write,
    still never creating the database or its table.

    Blocks for the connection and a schema check. Raises
    :exc:`DatabaseSetupError` (naming the ``postgres`` extra when a URL is
    given without it) or :exc:`IncompatibleSchemaError`.
    """
    _check(database)
    if is_postgres_url(database):
        assert isinstance(database, str)
        with importing_postgres():
            from ._postgres import PostgresReadConnection
        return PostgresReadConnection(postgres_url(database), read_only=not writable)
    return SQLiteReadConnection(database, mode="rw" if writable else "ro")


def _check(database: Database) -> None:
    """Refuse what names no database of ours (another URL scheme, a libpq
    ``key=value`` string) as a setup error, before it is taken for a file."""
    try:
        check_database(database)
    except ValueError as exc:
        raise DatabaseSetupError(str(exc)) from None


def _sqlite_only(database: Database, what: str) -> None:
    if is_postgres_url(database):
        raise DatabaseSetupError(
            f"{what} is for SQLite files; PostgreSQL's autovacuum makes the space of "
            "deleted rows reusable (VACUUM FULL, which locks the table, gives it back)"
        )


def vacuum_database(database: Database) -> VacuumOutcome:
    """VACUUM an SQLite file, turning incremental auto_vacuum on (``purge --vacuum``).

    Blocks, holding the file's write lock throughout; see
    :func:`trio_failurelog._sqlite.vacuum_file` for the cost. Raises
    :exc:`DatabaseSetupError` for a PostgreSQL URL, and as the readers do.
    """
    _sqlite_only(database, "--vacuum")
    return vacuum_file(database)


def reclaimable_bytes(database: Database) -> int:
    """Bytes of free pages inside an SQLite file: what :func:`vacuum_database`
    would give back, about. Blocks for a read-only open; raises
    :exc:`DatabaseSetupError` for a PostgreSQL URL, and as the readers do."""
    _sqlite_only(database, "counting free pages")
    return free_bytes(database)
