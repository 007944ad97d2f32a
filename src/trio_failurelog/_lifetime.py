"""``open_failure_logger``: the logger's writer in a nursery of its own, for one ``async with``.

Like trio-websocket's ``open_websocket``, it works so that the user never sees
an ExceptionGroup: setup errors and the block's own exception come out as
themselves, and a second Ctrl-C while draining comes out as KeyboardInterrupt.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import final

import trio

from ._database import Database, PartitionInterval, Synchronous
from ._logger import RetrievalFailureLogger
from ._redaction import Redactor
from ._settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BUSY_TIMEOUT,
    DEFAULT_CAPACITY,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_PARTITION_INTERVAL,
    DEFAULT_PURGE_EVERY,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_RETRY_TIMEOUT,
    DEFAULT_SYNCHRONOUS,
)

__all__ = ["open_failure_logger"]


@final
class _OpenFailureLogger(AbstractAsyncContextManager[RetrievalFailureLogger]):
    """What :func:`open_failure_logger` returns; see there."""

    def __init__(self, logger: RetrievalFailureLogger) -> None:
        self._logger = logger
        self._nursery_manager: AbstractAsyncContextManager[trio.Nursery] | None = None

    async def __aenter__(self) -> RetrievalFailureLogger:
        manager = trio.open_nursery()
        nursery = await manager.__aenter__()
        try:
            await nursery.start(self._run_writer)
        except BaseException as error:
            # The nursery is empty: leave it (at once), and let the setup error
            # come out as itself rather than in an ExceptionGroup.
            await _exit_nursery(manager, pending=error)  # noqa: ASYNC102
            raise
        self._nursery_manager = manager
        return self._logger

    # The logger's run() calls started() through the wrapper; only __aenter__'s
    # nursery.start() runs this.
    async def _run_writer(  # noqa: ASYNC114, ASYNC128
        self, *, task_status: trio.TaskStatus[None]
    ) -> None:
        """The logger's ``run``, out of reach of the block's cancellation once started.

        Opening can be cancelled (a server that does not answer). Once open,
        the writer is shielded: a cancellation of the scope around the block
        reaches the block's own code, whose cleanup (``except trio.Cancelled``,
        ``finally``) may still log, and the logger closes when the block is
        left, in ``__aexit__``, not when the cancellation arrives. The shield
        cannot hold the block up: ``__aexit__`` closes the logger, whose drain
        is bounded by ``drain_timeout``, and a second Ctrl-C aborts it.
        """
        with trio.CancelScope() as scope:
            await self._logger.run(task_status=_ShieldWhenStarted(scope, task_status))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        manager = self._nursery_manager
        assert manager is not None
        try:
            # Shielded: the drain is bounded by drain_timeout, and the logger's
            # aclose() honours it, so this cannot hang on a stuck database.
            with trio.CancelScope(shield=True):
                await self._logger.aclose()
        except BaseException as interrupt:  # KeyboardInterrupt again, while draining
            self._logger._abort()
            # The abort cancelled the writer's every scope: the nursery closes at once.
            await _exit_nursery(manager, pending=interrupt)  # noqa: ASYNC102
            raise
        # The writer has finished, so the nursery closes at once.
        await _exit_nursery(manager, pending=exc)


@final
class _ShieldWhenStarted(trio.TaskStatus[None]):
    """Passes ``started()`` on, and shields the writer's scope from then on."""

    def __init__(self, scope: trio.CancelScope, status: trio.TaskStatus[None]) -> None:
        self._scope = scope
        self._status = status

    def started(self, value: None = None) -> None:
        self._scope.shield = True
        self._status.started(value)


async def _exit_nursery(
    manager: AbstractAsyncContextManager[trio.Nursery], pending: BaseException | None
) -> None:
    """Exit a nursery whose tasks are done (or told to stop) without handing it ``pending``.

    ``pending`` is the exception already on its way out of our context
    manager. With strict exception groups the nursery would wrap it, and it
    must come out as itself. A cancellation raised by the exit itself yields to
    it: the enclosing scope delivers its cancellation again at its next
    checkpoint anyway.
    """
    try:
        await manager.__aexit__(None, None, None)
    except BaseException as error:
        if pending is not None and _is_cancellation(error):
            # Swallowed on purpose, see above: the enclosing scope delivers it again.
            return  # noqa: ASYNC910, ASYNC104
        if isinstance(error, BaseExceptionGroup):  # the writer crashed: a bug
            raise _sole_exception(error) from None  # noqa: ASYNC104  # the same error, unwrapped
        raise


def _is_cancellation(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_is_cancellation(inner) for inner in error.exceptions)
    return isinstance(error, trio.Cancelled)


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException:
    while len(group.exceptions) == 1 and isinstance(group.exceptions[0], BaseExceptionGroup):
        group = group.exceptions[0]
    return group.exceptions[0] if len(group.exceptions) == 1 else group


def open_failure_logger(
    database: Database,
    *,
    capacity: int = DEFAULT_CAPACITY,
    batch_size: int = DEFAULT_BATCH_SIZE,
    flush_interval: float = DEFAULT_FLUSH_INTERVAL,
    retention_days: float | None = DEFAULT_RETENTION_DAYS,
    purge_every: int = DEFAULT_PURGE_EVERY,
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT,
    synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    partition_interval: PartitionInterval | None = DEFAULT_PARTITION_INTERVAL,
    redact: Redactor | None = None,
) -> AbstractAsyncContextManager[RetrievalFailureLogger]:
    """Open a :class:`RetrievalFailureLogger` whose writer runs for the ``async with`` block.

    ::

        async with open_failure_logger("failures.db") as failures:
            failures.log(RetrievalFailureRecord("no_hit", "semantic", query))

    Entering opens (and creates when missing) the database, its table and
    indexes, and starts the writer task in a nursery the logger owns. It
    raises :exc:`TypeError`/:exc:`ValueError` for bad arguments and
    :exc:`DatabaseSetupError`/:exc:`IncompatibleSchemaError` when the database
    cannot be used, each as itself, not in an ExceptionGroup.

    The logger stays open for as long as the block runs, even when the scope
    around it is cancelled: what the block's own cleanup logs (in ``except
    trio.Cancelled`` or ``finally``) is accepted and written. Leaving closes
    the send channel and blocks until what is queued is written and the
    database closed, for at most ``drain_timeout`` seconds (the rest counts as
    failed and is reported in one warning), even when the block is cancelled
    or raises: the drain is shielded. A KeyboardInterrupt during the
    drain stops it at once and comes out as itself. An exception from the
    block comes out as itself. Storage errors never raise here; see
    :meth:`RetrievalFailureLogger.statistics`.

    The arguments are those of :class:`RetrievalFailureLogger`.
    """
    return _OpenFailureLogger(
        RetrievalFailureLogger(
            database,
            capacity=capacity,
            batch_size=batch_size,
            flush_interval=flush_interval,
            retention_days=retention_days,
            purge_every=purge_every,
            drain_timeout=drain_timeout,
            busy_timeout=busy_timeout,
            retry_timeout=retry_timeout,
            synchronous=synchronous,
            connect_timeout=connect_timeout,
            partition_interval=partition_interval,
            redact=redact,
        )
    )
