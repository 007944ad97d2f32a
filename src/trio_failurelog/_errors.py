"""The exceptions the library raises. Only setup raises; run time never does."""

from __future__ import annotations

__all__ = ["DatabaseSetupError", "IncompatibleSchemaError"]


class DatabaseSetupError(Exception):
    """The database cannot be used: bad path, not an SQLite file, unreadable.

    Raised when a logger (or reader) opens its database, never at run time. The
    message names the database; the underlying error is the ``__cause__``.
    """


class IncompatibleSchemaError(DatabaseSetupError):
    """The database holds a ``memory_retrieval_failures`` table of another shape.

    The message says which column is missing or of the wrong kind.
    """
