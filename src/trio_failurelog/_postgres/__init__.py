"""The PostgreSQL backend: store, schema, read connection, dialect, connecting, COPY encoding.

The only package that imports psycopg (the ``postgres`` extra); ``_backends.py``
imports it only for a ``postgresql://`` URL, so ``import trio_failurelog``
never loads it.
"""

from ._read import POSTGRES, PostgresDialect, PostgresReadConnection
from ._store import PostgresStore, PostgresStoreError

__all__ = [
    "POSTGRES",
    "PostgresDialect",
    "PostgresReadConnection",
    "PostgresStore",
    "PostgresStoreError",
]
