"""The SQLite backend: its store, its schema, its read connection, its SQL dialect, its VACUUM.

Standard library only (``sqlite3``). Names no other backend; ``_backends.py``
picks it for any database argument that is not a PostgreSQL URL.
"""

from ._dialect import SQLITE, SQLiteDialect
from ._read import SQLiteReadConnection
from ._store import DatabaseFileError, SQLiteStore, is_transient
from ._vacuum import VacuumOutcome, free_bytes, vacuum_file

__all__ = [
    "SQLITE",
    "DatabaseFileError",
    "SQLiteDialect",
    "SQLiteReadConnection",
    "SQLiteStore",
    "VacuumOutcome",
    "free_bytes",
    "is_transient",
    "vacuum_file",
]
