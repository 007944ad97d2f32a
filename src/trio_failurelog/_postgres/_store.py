"""The PostgreSQL store: the writer's ``Store`` for a server, which settles a lost COMMIT.

Needs the ``postgres`` extra (psycopg 3). Every method blocks and runs on the
writer's worker thread; the event loop never touches the socket. One
:class:`PostgresStore` owns one connection (autocommit: transactions are
explicit) and is used by one thread at a time.

Each batch is one transaction sent with ``COPY``: in binary form when it can
be (psycopg's C dumpers write the rows, the server parses no text), in text
form otherwise (see :meth:`PostgresStore._copy`). The connection's client
encoding is always UTF-8, the encoding both forms send.

The connection being lost (server restart, ``pg_terminate_backend``) is
transient: the next call reconnects, and the writer retries with backoff. A
batch whose ``COMMIT`` got no answer is settled by asking the server what
became of its transaction rather than written again blindly: ``txid_status``,
or, when the server has restarted since (a crash may hand the id of a lost
transaction out again), a look for the batch's own rows by their ``xmin``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

import psycopg
import psycopg.errors

from .._conninfo import redact_url, scrub, url_secrets
from .._database import BatchOutcome, QueuedRecord, StoreKind, StoreOptions
from .._errors import DatabaseSetupError, IncompatibleSchemaError
from .._table import TABLE, RowByRow, SecondText, insert_one_by_one
from .._timetext import epoch_seconds
from ._connect import (
    FATAL_CONNECT_STATES,
    ConnectError,
    Connection,
    connect,
    connect_for_setup,
    one_line,
    setup_error,
    sqlstate,
)
from ._copy import BINARY_TYPES, C_DUMPERS, binary_rows, copy_text, insert_row
from ._partitions import ahead_span, drop_old_partitions, make_partitions, read_layout
from ._schema import (
    ADVISORY_CLASS,
    COPY_BINARY_SQL,
    COPY_SQL,
    HAS_REFERENCE_TYPES,
    INSERT_SQL,
    PURGE_LOCK,
    ensure_schema,
    purge_sql,
)

__all__ = ["PostgresStore", "PostgresStoreError"]

T = TypeVar("T")

log = logging.getLogger("trio_failurelog")

Cursor = psycopg.Cursor[tuple[Any, ...]]

# SQLSTATEs that go away when the call is retried: another session's lock
# (lock_timeout ran out), a deadlock or serialization victim, the server
# shutting down, starting up or out of connection slots, a cancelled statement.
_TRANSIENT_STATES: Final = frozenset(
    {"55P03", "40P01", "40001", "57014", "57P01", "57P02", "57P03", "53300"}
)

# How long write_batch waits for a transaction whose COMMIT got no answer to
# finish on the server before leaving it for the next call to ask about.
_SETTLE_WAIT: Final = 2.0

# How often (seconds) a logger with partition_interval makes sure the
# partitions ahead exist, besides at open and at each retention purge: a
# catalog query under an advisory lock, so that a process that never purges
# (retention_days=None) still keeps ahead.
_AHEAD_RECHECK: Final = 3600.0

# "check_violation": what COPY raises for a row that no partition takes.
_CHECK_VIOLATION: Final = "23514"


class PostgresStoreError(Exception):
    """A store call failed; nothing of the batch concerned was acknowledged.

    ``transient`` says whether retrying may succeed (a lost connection, a lock
    held by another session). The message never holds a password.
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class _Txn:
    """A transaction, as the server knew it when it began."""

    #: txid_current(): 64 bits, epoch included.
    xid: int
    #: pg_postmaster_start_time(): tells whether the server restarted since.
    server_started: object
    #: pg_relation_filenode() of the table, locked against ALTER TABLE for the
    #: transaction: it changes whenever a column changes type (the table is
    #: rewritten then), or the table is dropped or truncated. None: no table,
    #: or one with no storage of its own (partitioned).
    table_file: int | None = None
    #: For a table with no storage of its own (partitioned), whether its
    #: columns have the reference types, checked in this transaction: there is
    #: no file whose change would tell that a type changed. None otherwise.
    reference_types: bool | None = None


@dataclass(slots=True)
class _Pending:
    """A batch whose COMMIT was sent but got no answer: committed or not, unknown yet."""

    txn: _Txn
    items: Sequence[QueuedRecord]
    outcome: BatchOutcome


def _is_row_error(error: BaseException) -> bool:
    """Whether ``error`` condemns one row rather than the batch: a constraint, a
    value out of range, a trigger raising (PL/pgSQL's class P0)."""
    state = sqlstate(error) or ""
    return isinstance(error, psycopg.IntegrityError | psycopg.DataError) or state.startswith("P0")


class PostgresStore:
    """One connection to a PostgreSQL database holding ``memory_retrieval_failures``.

    Every method blocks. Use from one thread at a time. Errors raised at run
    time are :exc:`PostgresStoreError`; :meth:`is_transient` tells which to retry.
    """

    kind: StoreKind = "postgresql"
    purge_gap: float = 0.0  # row locks: a purge keeps no INSERT waiting

    def __init__(self, url: str, options: StoreOptions, conn: Connection) -> None:
        self._url = url
        self._secrets = url_secrets(url)
        self.name = repr(redact_url(url))
        self._options = options
        self._conn: Connection | None = conn
        # lock_timeout 0 would mean "wait forever": at least a millisecond.
        self._lock_timeout = str(max(1, round(options.busy_timeout * 1000)))
        self._pending: _Pending | None = None
        # Whether batches may go as binary COPY (where the table's types fit,
        # see _has_reference_types). Tests clear it to compare the two forms.
        self._binary_copy = C_DUMPERS
        self._checked_file: int | None = None  # the table file whose types were checked
        self._reference_types = False  # what that check found
        self._second_text = SecondText()
        self._interval = options.partition_interval
        # Whether the table is partitioned by range of created_at (read at
        # each connect): retention then drops whole partitions.
        self._partitioned = read_layout(conn) is not None
        # When the partitions ahead are next checked (open made them).
        self._ahead_due = math.inf if self._interval is None else time.time() + _AHEAD_RECHECK
        # The cutoff whose old partitions were last dropped: a purge round's
        # further chunks (one cutoff) go straight to DELETE.
        self._dropped_before: float | None = None

    def __repr__(self) -> str:
        return f"<PostgresStore {self.name}>"

    @classmethod
    def open(cls, url: str, options: StoreOptions) -> PostgresStore:
        """Connect to ``url`` and check or create the table and its indexes.

        Waits at most ``options.connect_timeout`` for the server (libpq's
        ``connect_timeout`` in the URL takes precedence). Raises
        :exc:`DatabaseSetupError` naming the database (without its password)
        and the reason when the server is down, unreachable, refuses the
        credentials, or the URL is malformed; :exc:`IncompatibleSchemaError`
        for a table of another shape.
        """
        secrets = url_secrets(url)
        name = repr(redact_url(url))
        conn = connect_for_setup(url, name, secrets, options)
        try:
            _setup(conn, options)
        except IncompatibleSchemaError as exc:
            conn.close()
            raise IncompatibleSchemaError(f"database {name}: {exc}") from None
        except DatabaseSetupError as exc:
            conn.close()
            raise DatabaseSetupError(f"database {name}: {exc}") from None
        except psycopg.Error as exc:
            conn.close()
            error = setup_error(f"cannot use database {name}", exc, secrets)
            raise error from error.__cause__
        return cls(url, options, conn)

    # ------------------------------------------------------------ the connection

    def _error(self, what: str, exc: BaseException, *, transient: bool) -> PostgresStoreError:
        detail = scrub(one_line(str(exc)), self._secrets)
        kind = type(exc).__name__
        return PostgresStoreError(
            f"{what}: {kind}: {detail}" if detail else f"{what}: {kind}", transient=transient
        )

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # a dead socket: nothing to save
                conn.close()

    def _ready(self) -> Connection:
        """The connection, reconnecting (and checking the table) when it was lost.

        Raises :exc:`PostgresStoreError`: transient when the server cannot be
        reached (down, restarting), not when it refuses the credentials or
        the table has another shape now.
        """
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        self._drop()
        try:
            conn = connect(self._url, self.name, self._secrets, self._options)
        except ConnectError as exc:
            transient = exc.sqlstate not in FATAL_CONNECT_STATES and not exc.refused
            raise PostgresStoreError(str(exc), transient=transient) from None
        try:
            _setup(conn, self._options)
            self._partitioned = read_layout(conn) is not None
        except DatabaseSetupError as exc:  # the table's shape or our privileges changed
            conn.close()
            raise PostgresStoreError(f"database {self.name}: {exc}", transient=False) from None
        except psycopg.Error as exc:
            transient = conn.broken or sqlstate(exc) in _TRANSIENT_STATES
            conn.close()
            raise self._error(
                f"cannot check the table of {self.name}", exc, transient=transient
            ) from None
        log.info("trio_failurelog: reconnected to %s", self.name)
        self._checked_file = None
        self._conn = conn
        return conn

    def _classify(self, conn: Connection, exc: psycopg.Error, what: str) -> PostgresStoreError:
        """Turn a failure inside a transaction into our error, leaving the connection idle."""
        if conn.closed or conn.broken:
            self._drop()
            return self._error(f"{what}: connection to {self.name} lost", exc, transient=True)
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop()
        return self._error(what, exc, transient=sqlstate(exc) in _TRANSIENT_STATES)

    def _begin(self, conn: Connection) -> tuple[Cursor, _Txn]:
        """BEGIN a transaction with our lock_timeout, the table locked for writing.

        Returns a cursor and the transaction. The lock (``ROW EXCLUSIVE``, what
        COPY takes anyway) keeps ALTER TABLE out until COMMIT, so what
        :meth:`_has_reference_types` finds holds for the transaction. ``ONLY``:
        a column's type can change only through the table itself, and a
        partitioned table's partitions are locked by COPY as rows go into
        them (locking all, each batch, would take a lock per partition).
        A partitioned table's types are checked here, in the same round trip.
        """
        cur = conn.cursor()
        # One round trip for all (a whole-number text, safe to inline): per
        # batch it is measurable against raw COPY.
        cur.execute(
            f"BEGIN; SET LOCAL lock_timeout = {self._lock_timeout};"
            f" LOCK TABLE ONLY {TABLE} IN ROW EXCLUSIVE MODE;"
            " SELECT txid_current(), pg_postmaster_start_time(),"
            f" pg_relation_filenode(to_regclass('{TABLE}')),"
            f" CASE WHEN pg_relation_filenode(to_regclass('{TABLE}')) IS NULL"
            f" THEN {HAS_REFERENCE_TYPES} END"
        )
        while cur.nextset():  # the last statement's row
            pass
        row = cur.fetchone()
        assert row is not None
        return cur, _Txn(int(row[0]), row[1], row[2], row[3])

    def _has_reference_types(self, cur: Cursor, txn: _Txn) -> bool:
        """Whether the table's columns have the reference types, so binary COPY fits.

        Binary COPY carries no types: the server reads each field as its
        column's type. Asked of the server (one more round trip) only when the
        table's file is another than last time: a column changing type
        rewrites the table into a new file, and a table dropped and made
        again has one too. Checking every transaction cost about 0.2 ms a
        batch (measured), about 5% of writing it. A partitioned table has no
        file: its answer came with BEGIN (:meth:`_begin`).
        """
        if txn.table_file is None:
            return bool(txn.reference_types)  # partitioned, or no table (COPY will say so)
        if txn.table_file != self._checked_file:
            row = cur.execute(f"SELECT {HAS_REFERENCE_TYPES}").fetchone()
            self._reference_types = bool(row is not None and row[0])
            self._checked_file = txn.table_file
        return self._reference_types

    def _transaction(self, body: Callable[[Cursor, _Txn], T], what: str) -> tuple[T, _Txn, bool]:
        """Run ``body`` in one transaction and COMMIT it.

        Returns the body's result, the transaction id, and whether the COMMIT
        was answered. When it was not (the connection died meanwhile), the
        caller must find out whether the transaction committed. Raises psycopg
        errors that concern one row (for the caller to write row by row), and
        :exc:`PostgresStoreError` for everything else.
        """
        conn = self._ready()
        try:
            cur, txn = self._begin(conn)
            result = body(cur, txn)
        except psycopg.Error as exc:
            error = self._classify(conn, exc, what)
            if _is_row_error(exc) and self._conn is conn:
                raise exc from None
            raise error from None
        except BaseException:
            self._drop()  # never leave a transaction open for the next call
            raise
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                self._drop()
                return result, txn, False
            raise self._classify(conn, exc, what) from None
        except BaseException:
            self._drop()
            raise
        return result, txn, True

    # ------------------------------------------------------------ writing

    def _created_at(self, stamp: float) -> str:
        """``stamp`` as timestamptz text, to the microsecond the binary form sends too."""
        second, micro = divmod(int(stamp * 1e6), 1_000_000)
        return f"{self._second_text(second)}.{micro:06d}+00"

    def _copy(
        self,
        cur: Cursor,
        items: Sequence[QueuedRecord],
        sent: Callable[[], object] | None,
        txn: _Txn,
    ) -> BatchOutcome:
        """Send ``items`` with one COPY on ``cur``: binary when it can, else text.

        Calls ``sent()`` once the rows are written, before COPY's end waits
        for the server to take them.

        Binary when psycopg's C dumpers are there, the table has the
        reference types (:meth:`_has_reference_types`), and every record is
        plain (see :func:`~._copy.binary_rows`). Binary rows cost about half
        as much to build and send, and the server parses no text (figures in
        docs/performance.md).
        """
        if self._binary_copy and self._has_reference_types(cur, txn):
            rows = binary_rows(items)
            if rows is not None:
                with cur.copy(COPY_BINARY_SQL) as copy:
                    copy.set_types(BINARY_TYPES)
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)
                    if sent is not None:
                        sent()
                return BatchOutcome(written=len(rows))
        with cur.copy(COPY_SQL) as copy:
            copy.write(copy_text(items, self._created_at))
            if sent is not None:
                sent()
        return BatchOutcome(written=len(items))

    def write_batch(
        self, items: Sequence[QueuedRecord], *, sent: Callable[[], object] | None = None
    ) -> BatchOutcome:
        """Insert ``items`` in one transaction, sent with COPY.

        ``sent()`` is called once the rows are on their way to the server,
        before the wait for it to take them and COMMIT.

        A row the server refuses (a CHECK, a trigger, a value out of range)
        costs that row only: the batch is then written again row by row, each
        under a savepoint. Raises :exc:`PostgresStoreError` for trouble with
        the whole batch (transient: a lost connection, a lock held too long);
        nothing is acknowledged then. When a COMMIT got no answer, the server
        is asked whether that transaction committed: if it did, the batch is
        written; if it was rolled back, it is written again; if that cannot be
        known, a non-transient error says so (never a duplicate).
        """
        if time.time() >= self._ahead_due:
            self._make_ahead()
        pending = self._pending
        if pending is not None:
            if pending.items is items:  # the writer retrying that batch
                if self._settle(pending):
                    return pending.outcome
            else:
                self._forget(pending)
        # A batch whose COMMIT never reached the server is written again at
        # once; a second such loss is left to the writer's retries.
        for _attempt in range(2):
            outcome = self._write_rows(items, sent)
            if outcome is not None:
                return outcome
        raise PostgresStoreError(
            f"connection to {self.name} lost during COMMIT, twice; the server rolled back",
            transient=True,
        )

    def _write_rows(
        self, items: Sequence[QueuedRecord], sent: Callable[[], object] | None
    ) -> BatchOutcome | None:
        """One transaction; ``None`` when its COMMIT was lost and the server rolled it back.

        A row that no partition takes has one made for it (with
        ``partition_interval``) and the batch is sent again; a row still refused
        then sends the batch row by row, each row its own verdict.
        """

        def copy(cur: Cursor, txn: _Txn) -> BatchOutcome:
            return self._copy(cur, items, sent, txn)

        try:
            try:
                outcome, txn, answered = self._transaction(copy, "cannot write a batch")
            except psycopg.Error as exc:  # a row was refused
                if not self._made_partitions_for(items, exc):
                    raise
                outcome, txn, answered = self._transaction(copy, "cannot write a batch")
        except psycopg.Error:
            rows = [insert_row(item, self._created_at) for item in items]
            outcome, txn, answered = self._transaction(
                lambda cur, _txn: insert_one_by_one(cur.execute, rows, _ROW_BY_ROW, _refusal),
                "cannot write a batch row by row",
            )
        if answered:
            return outcome
        self._pending = _Pending(txn, items, outcome)
        return outcome if self._settle(self._pending) else None

    # ------------------------------------------------------------ partitions

    def _make_partitions(self, spans: list[tuple[float, float]]) -> int:
        """Make the partitions ``spans`` lack (see ``_partitions.make_partitions``).

        Raises psycopg's errors (the connection dropped when it broke) and
        :exc:`PostgresStoreError` when the server cannot be reached.
        """
        assert self._interval is not None
        conn = self._ready()
        try:
            return make_partitions(
                conn, self._interval, spans, lock_timeout_ms=int(self._lock_timeout)
            )
        except psycopg.Error:
            if conn.broken or conn.closed:
                self._drop()
            raise

    def _warn(self, what: str, exc: Exception) -> None:
        if not isinstance(exc, PostgresStoreError):
            exc = self._error(what, exc, transient=False)
            what = ""
        log.warning("trio_failurelog: %s%s%s", what, ": " if what else "", exc)

    def _make_ahead(self) -> None:
        """Make the partitions ahead of now; on failure warn (a row finding no
        partition still gets one: see :meth:`_made_partitions_for`)."""
        now = time.time()
        self._ahead_due = now + _AHEAD_RECHECK
        if self._interval is None or not self._partitioned:
            return
        try:
            self._make_partitions([ahead_span(now, self._interval)])
        except (psycopg.Error, PostgresStoreError) as exc:
            self._warn(f"cannot make partitions ahead in {self.name}", exc)

    def _made_partitions_for(self, items: Sequence[QueuedRecord], error: psycopg.Error) -> bool:
        """After ``error`` refused a batch: whether partitions were made for rows
        of ``items`` that none took (then the batch is worth sending again)."""
        if self._interval is None or not self._partitioned or sqlstate(error) != _CHECK_VIOLATION:
            return False
        moments = [  # the instants stored: a stamp goes to the microsecond (_created_at)
            int(stamp * 1e6) / 1e6
            if record.created_at is None
            else epoch_seconds(record.created_at)
            for record, stamp in items
        ]
        try:
            return self._make_partitions([(m, m) for m in moments if m is not None]) > 0
        except (psycopg.Error, PostgresStoreError) as exc:
            self._warn(f"cannot make a partition for a row in {self.name}", exc)
            return False

    def _forget(self, pending: _Pending) -> None:
        """The writer gave up on ``pending`` (counted failed): say if it did commit."""
        self._pending = None
        try:
            committed = self._settle(pending)
        except PostgresStoreError as exc:
            log.warning("trio_failurelog: %s", exc)
            return
        if committed:
            log.warning(
                "trio_failurelog: a batch of %d record(s) counted as failed (its COMMIT got no"
                " answer) did commit to %s after all",
                pending.outcome.written,
                self.name,
            )

    def _status(self, conn: Connection, pending: _Pending) -> str | None:
        """What became of ``pending``'s transaction: committed, aborted, in progress, or None."""
        row = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
        if row is None or row[0] != pending.txn.server_started:
            # The server restarted since the transaction began. After a crash,
            # ids of transactions whose commit did not survive are handed out
            # again, so txid_status might answer about another transaction
            # (or call ours "in the future"). The batch's own rows answer
            # instead: any inserted by our transaction id with the created_at
            # and query of one of the batch's rows.
            rows = [insert_row(item, self._created_at) for item in pending.items]
            found = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE xmin = %s::text::xid"
                " AND (created_at, query_text) IN"
                " (SELECT * FROM unnest(%s::text[]::timestamptz[], %s::text[])))",
                (
                    str(pending.txn.xid & 0xFFFFFFFF),  # xmin holds the low 32 bits
                    [row[-1] for row in rows],
                    [row[4] for row in rows],
                ),
            ).fetchone()
            return "committed" if found is not None and found[0] else "aborted"
        status = conn.execute("SELECT txid_status(%s)", (pending.txn.xid,)).fetchone()
        return None if status is None else cast(str | None, status[0])

    def _settle(self, pending: _Pending) -> bool:
        """Whether ``pending``'s transaction committed, asking the server.

        Clears ``self._pending`` once known. Raises :exc:`PostgresStoreError`:
        transient while the server cannot be asked or the transaction is still
        finishing there; not transient when the server no longer knows it.
        """
        give_up = time.monotonic() + _SETTLE_WAIT
        while True:
            conn: Connection | None = None
            try:
                conn = self._ready()
                status = self._status(conn, pending)
            except PostgresStoreError as exc:
                raise PostgresStoreError(
                    f"the COMMIT of a batch got no answer and cannot be checked yet: {exc}",
                    transient=exc.transient,
                ) from None
            except psycopg.Error as exc:
                if conn is None or conn.broken or conn.closed:
                    self._drop()
                raise self._error(
                    "the COMMIT of a batch got no answer and cannot be checked yet",
                    exc,
                    transient=True,
                ) from None
            if status == "committed":
                self._pending = None
                return True
            if status == "aborted":
                self._pending = None
                return False
            if status is None:
                self._pending = None
                raise PostgresStoreError(
                    f"the COMMIT of a batch to {self.name} got no answer, and the server no"
                    f" longer knows transaction {pending.txn.xid}: outcome unknown",
                    transient=False,
                )
            if time.monotonic() >= give_up:  # "in progress": its backend is still finishing
                raise PostgresStoreError(
                    f"the COMMIT of a batch to {self.name} got no answer and transaction"
                    f" {pending.txn.xid} is still in progress there",
                    transient=True,
                )
            time.sleep(0.02)

    def purge_chunk(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` rows created before ``older_than`` (POSIX seconds).

        Only one process of a fleet purges at a time: one that finds another
        purging (an advisory lock, per transaction) deletes nothing and
        returns 0. On a table partitioned by ``created_at``, the first call
        for a cutoff first detaches and drops every partition wholly older
        than ``older_than`` (see ``_partitions.drop_old_partitions``; their
        rows are counted in the result, beyond ``limit``), and with
        ``partition_interval`` makes the partitions ahead. Raises
        :exc:`PostgresStoreError`.
        """
        dropped = 0
        if self._partitioned and older_than != self._dropped_before:
            self._dropped_before = older_than
            conn = self._ready()
            try:
                dropped = drop_old_partitions(
                    conn, older_than, wait=False, lock_timeout_ms=int(self._lock_timeout)
                )
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._drop()
                raise self._error(
                    "cannot drop old partitions", exc, transient=sqlstate(exc) in _TRANSIENT_STATES
                ) from None
            self._make_ahead()

        def delete(cur: Cursor, _txn: _Txn) -> int:
            row = cur.execute(
                "SELECT pg_try_advisory_xact_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK)
            ).fetchone()
            if row is None or not row[0]:
                return 0
            cur.execute(purge_sql("to_timestamp(%s)"), (older_than, older_than, limit))
            return max(cur.rowcount, 0)

        try:
            deleted, _txn, answered = self._transaction(delete, "cannot purge")
        except psycopg.Error as exc:  # a trigger refusing a delete, say
            raise self._error("cannot purge", exc, transient=False) from None
        if not answered:
            # Whether it committed or not, the rows will be purged the next time.
            raise PostgresStoreError(
                f"connection to {self.name} lost during the COMMIT of a purge", transient=True
            )
        return dropped + deleted

    def is_transient(self, error: Exception) -> bool:
        """Whether ``error`` goes away when retried: a lost connection, the server
        restarting, a lock another session held for longer than ``busy_timeout``."""
        if isinstance(error, PostgresStoreError):
            return error.transient
        if isinstance(error, psycopg.Error):
            return sqlstate(error) in _TRANSIENT_STATES
        return False

    def close(self) -> None:
        """Close the connection."""
        self._drop()


def _setup(conn: Connection, options: StoreOptions) -> None:
    """Check or create the table (partitioned with ``partition_interval``) and
    make the partitions ahead (a lock held too long only warns: they are made
    at the next chance, or for the first row that finds none).

    Raises :exc:`DatabaseSetupError` when ``partition_interval`` is given for
    a table that is not partitioned by range of ``created_at``, and psycopg's
    errors.
    """
    interval = options.partition_interval
    ensure_schema(conn, partitioned=interval is not None)
    if interval is None:
        return
    if read_layout(conn) is None:
        raise DatabaseSetupError(
            f"partition_interval={interval!r}, but table {TABLE!r} exists and is not"
            " partitioned by range of created_at (see docs/fleets.md to convert it)"
        )
    try:
        make_partitions(
            conn,
            interval,
            [ahead_span(time.time(), interval)],
            lock_timeout_ms=max(1, round(options.busy_timeout * 1000)),
        )
    except psycopg.errors.LockNotAvailable as exc:
        # Busy (another session's schema change, a default partition being
        # read): not worth failing the open; the write path makes them later.
        log.warning("trio_failurelog: partitions ahead not made yet: %s", one_line(str(exc)))


_ROW_BY_ROW: Final = RowByRow(
    INSERT_SQL,
    savepoint="SAVEPOINT one_row",
    rollback="ROLLBACK TO SAVEPOINT one_row",
    release="RELEASE SAVEPOINT one_row",
)


def _refusal(error: Exception) -> str | None:
    """Why the server refused a row, or ``None`` for an error of the whole batch."""
    if isinstance(error, psycopg.Error) and _is_row_error(error):
        return f"{type(error).__name__}: {one_line(str(error))}"
    return None
