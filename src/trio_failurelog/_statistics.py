"""The logger's counters as one frozen snapshot."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoggerStatistics"]


@dataclass(frozen=True, slots=True)
class LoggerStatistics:
    """A snapshot of a logger's counters, from :meth:`RetrievalFailureLogger.statistics`.

    Taken on the logger's trio thread, ``accepted == written + failed + queued``
    always holds, and ``queued`` never exceeds ``capacity + 2 * batch_size``
    (the buffer, the batch being written, and the next one, which the writer
    takes from the buffer while a database server works on the first). Taken
    from another thread (a metrics exporter's, say), each field is exact but
    they are read one after another, so the sum may lag by records in flight.

    Attributes:
      accepted: Records taken by ``log()``, ``send()`` or ``log_threadsafe()``.
      dropped_full: Records refused because the buffer was full.
      dropped_closed: Records refused because the logger was closed (or its
        trio run had ended, for ``log_threadsafe``).
      written: Records committed to the database.
      failed: Accepted records that will never be written: refused by the
        database, lost to a persistent storage error, or still queued when
        ``drain_timeout`` ran out.
      queued: Accepted records not yet written or failed: in the buffer, or in
        the batches being gathered and written.
      capacity: The buffer's size.
      batches: Batches the writer has handed to the database.
      retries: Times a batch or purge was retried because the database was
        busy, locked or (PostgreSQL) unreachable for a moment.
      purged: Rows the retention purge has deleted.
      redaction_failed: Records stored with a text replaced by the
        redaction-failed marker because the ``redact`` function raised or
        returned something other than a ``str``.
      last_error: The most recent storage error, as text, or ``None``.
      closed: Whether the logger has stopped accepting records.
    """

    accepted: int
    dropped_full: int
    dropped_closed: int
    written: int
    failed: int
    queued: int
    capacity: int
    batches: int
    retries: int
    purged: int
    redaction_failed: int
    last_error: str | None
    closed: bool
