"""What a backend implements: ``Store`` for the writer, ``ReadConnection``, ``Dialect`` for readers.

A leaf of the import graph: it names no backend. The SQLite backend
(``_sqlite/``) and the PostgreSQL one (``_postgres/``) each provide all three;
``_backends.py`` picks one from the database argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from ._database import BatchOutcome, QueuedRecord, StoreKind

__all__ = ["Dialect", "Execute", "ReadConnection", "RepeatedRow", "Store"]

#: Runs one statement and returns all its rows (raising DatabaseSetupError on trouble).
Execute = Callable[[str, Iterable[object]], list[Any]]

#: One repeated query: normalised text, count, last ``created_at``, failure types, strategies.
RepeatedRow = tuple[str, int, str, list[str], list[str]]


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
    #: Seconds the retention purge leaves the database to other writers
    #: between two of its chunks, which are then sized by time (SQLite, one
    #: writer at a time: see ``_pacing.py``). 0: writers do not wait on each
    #: other here, and chunks are of a fixed size.
    purge_gap: float

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


class Dialect(Protocol):
    """What the readers' SQL needs that differs between databases.

    The summary and the pagers call these and nothing database-specific else;
    everything else they send is portable SQL with ``?`` placeholders.
    Pure computation, apart from :meth:`repeated_queries`.
    """

    #: Whether ``+column`` may be written to steer the planner to the time index.
    index_hints: bool
    #: Whether a row with a larger id is never committed before one with a
    #: smaller id (SQLite: one writer at a time, ids taken in commit order).
    ids_commit_in_order: bool

    def bucket_index_sql(self, width: int) -> str:
        """SQL for the time bucket of ``created_at``: floor(POSIX seconds / ``width``),
        NULL when the text is no time. Raises :exc:`ValueError` for a width under 1."""
        ...

    def score_bin_sql(self) -> str:
        """SQL for a score's histogram bin, ``int((top_score - start) / width + epsilon)``,
        with the three as parameters (truncation toward zero)."""
        ...

    def float_sql(self, column: str) -> str:
        """``column`` for arithmetic in double precision."""
        ...

    def repeated_queries(
        self, execute: Execute, where: str, params: list[object], top: int
    ) -> list[RepeatedRow]:
        """The ``top`` failing queries seen at least twice (by ``normalise_query``),
        most often first, then most recent, then by text. Blocks on ``execute``."""
        ...


class ReadConnection(Protocol):
    """One database connection as the readers use it; blocking, one thread at a time.

    ``execute`` takes ``?`` placeholders and returns rows as SQLite gives
    them: ``created_at`` as text, numbers as int or float. Every method
    blocks; none may be interrupted by cancellation except through
    :meth:`watch` and :meth:`cancel`.
    """

    #: The database, quoted, for messages: never holds a password.
    name: str
    dialect: Dialect
    #: Whether :meth:`cancel` must be called to stop a statement (else :meth:`watch` does).
    needs_cancel: bool

    @property
    def raw(self) -> Any:
        """The driver's connection."""
        ...

    def execute(self, sql: str, params: Iterable[object] = ()) -> list[Any]:
        """Run one statement, return its rows; :exc:`DatabaseSetupError` on trouble."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """One read-only transaction for the statements in the ``with`` block."""
        ...

    def watch(self, should_abort: Callable[[], int]) -> None:
        """Have running statements stop soon after ``should_abort()`` turns true."""
        ...

    def cancel(self) -> None:
        """Stop the statement under way (any thread); nothing when none is."""
        ...

    def purge_chunk(self, cutoff: str, limit: int) -> int:
        """Delete up to ``limit`` rows with ``created_at`` before ``cutoff`` (UTC
        text) in one transaction; return how many. Needs a connection opened
        writable. Blocks on the database's write lock."""
        ...

    def close(self) -> None:
        """Close the connection. Idempotent."""
        ...
