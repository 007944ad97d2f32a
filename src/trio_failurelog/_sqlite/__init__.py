"""The SQLite backend: its store, its schema, its read connection and its SQL dialect.

Standard library only (``sqlite3``). Names no other backend; ``_backends.py``
picks it for any database argument that is not a PostgreSQL URL.
"""

from ._dialect import SQLITE, SQLiteDialect
from ._read import SQLiteReadConnection
from ._store import DatabaseFileError, SQLiteStore, is_transient

__all__ = [
    "SQLITE",
    "DatabaseFileError",
    "SQLiteDialect",
    "SQLiteReadConnection",
    "SQLiteStore",
    "is_transient",
]
