"""Figure 1: what ``log()`` costs the recall path.

Every contender is a tight loop over ``hot_calls`` prebuilt objects, timed with
``perf_counter_ns`` in chunks of half the library's default capacity (so that the
buffer never holds more than a real one would, and the garbage collector sees a
realistic heap); the buffers are emptied between chunks, untimed. The cost of
the bare ``for`` loop, measured the same way, is subtracted, so the figures are
per call. Each repeat runs every contender once, in rotated order; the figure is
the median over repeats. The harness's prebuilt objects are frozen out of the
garbage collector's sight and a collection runs (untimed) before each
measurement, so that a contender pays for the collections its own allocations
cause and for no other's.

* bare ``send_nowait``: a prebuilt object on a trio memory channel, accepted
  (buffer with room) and refused (buffer full, ``trio.WouldBlock`` caught);
* ``log()``: a prebuilt record, accepted (buffer with room) and dropped (buffer
  full), on a running logger (``":memory:"`` database; the writer cannot run
  during the loop, which has no checkpoint);
* constructing a record from plain values, with its validation;
* constructing a record and ``log()``-ing it, accepted;
* ``await send()``, accepted (never waiting for room), as the library does it
  (a schedule point every 128 calls), beside the same call followed by a full
  ``trio.lowlevel.checkpoint()`` (what a send that always checkpoints costs,
  the writer's work at those checkpoints included), and trio's own
  ``MemorySendChannel.send`` of a prebuilt object, which always checkpoints.

Between measurements (untimed) the buffers are emptied or refilled, and the
logger's counters are checked: every timed call was accepted, or dropped.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio

from trio_failurelog import RetrievalFailureLogger, RetrievalFailureRecord, open_failure_logger

from ._common import (
    DEFAULTS,
    Arguments,
    Params,
    construct_each,
    frozen_heap,
    make_arguments,
    make_records,
    median,
    rotated,
)

__all__ = ["run"]

#: The contenders, in the order of the table.
NAMES: Final = (
    "loop_overhead",
    "send_nowait_accepted",
    "log_accepted",
    "send_nowait_full",
    "log_dropped",
    "construct",
    "construct_and_log",
    "channel_send",
    "send",
    "send_checkpointed",
)

Contender = Callable[[list[RetrievalFailureRecord], list[Arguments]], Awaitable[int]]


def run(params: Params) -> dict[str, Any]:
    """Run figure 1; per-call nanoseconds (median over repeats) and every sample."""
    return trio.run(_measure, params)


async def _measure(params: Params) -> dict[str, Any]:
    calls = params.hot_calls
    records = make_records(calls)
    arguments = make_arguments(calls)
    samples: dict[str, list[float]] = {name: [] for name in NAMES}

    chunk = max(1, DEFAULTS["capacity"] // 2)
    bare_send, bare_receive = trio.open_memory_channel[object](chunk)
    full_send, _full_receive = trio.open_memory_channel[object](1)
    full_send.send_nowait(None)
    marker = object()

    async with (
        open_failure_logger(":memory:", retention_days=None) as accepting,
        open_failure_logger(":memory:", retention_days=None) as dropping,
    ):

        async def loop_overhead(records: list[RetrievalFailureRecord], _: list[Arguments]) -> int:  # noqa: ASYNC124  # timed without an await, on purpose
            start = time.perf_counter_ns()
            for _record in records:
                pass
            return time.perf_counter_ns() - start  # noqa: ASYNC910  # timed without an await, on purpose

        async def send_nowait_accepted(  # noqa: ASYNC124  # timed without an await, on purpose
            records: list[RetrievalFailureRecord], _: list[Arguments]
        ) -> int:
            send = bare_send.send_nowait
            start = time.perf_counter_ns()
            for _record in records:
                send(marker)
            elapsed = time.perf_counter_ns() - start
            for _record in records:
                bare_receive.receive_nowait()
            return elapsed  # noqa: ASYNC910  # timed without an await, on purpose

        async def send_nowait_full(  # noqa: ASYNC124  # timed without an await, on purpose
            records: list[RetrievalFailureRecord], _: list[Arguments]
        ) -> int:
            send = full_send.send_nowait
            start = time.perf_counter_ns()
            for _record in records:
                # Not contextlib.suppress: the baseline is the cheapest way to call it.
                try:  # noqa: SIM105
                    send(marker)
                except trio.WouldBlock:
                    pass
            return time.perf_counter_ns() - start  # noqa: ASYNC910  # timed without an await, on purpose

        async def log_accepted(records: list[RetrievalFailureRecord], _: list[Arguments]) -> int:
            log = accepting.log
            before = accepting.statistics().accepted
            start = time.perf_counter_ns()
            for record in records:
                log(record)
            elapsed = time.perf_counter_ns() - start
            _check(accepting.statistics().accepted - before, len(records), "accepted")
            await accepting.flush()
            return elapsed

        async def log_dropped(records: list[RetrievalFailureRecord], _: list[Arguments]) -> int:  # noqa: ASYNC124  # timed without an await, on purpose
            log = dropping.log
            while log(records[0]):  # fill the buffer (the writer may have emptied it)
                pass
            before = dropping.statistics().dropped_full
            start = time.perf_counter_ns()
            for record in records:
                log(record)
            elapsed = time.perf_counter_ns() - start
            _check(dropping.statistics().dropped_full - before, len(records), "dropped")
            return elapsed  # noqa: ASYNC910  # timed without an await, on purpose

        async def construct(_: list[RetrievalFailureRecord], arguments: list[Arguments]) -> int:  # noqa: ASYNC124  # timed without an await, on purpose
            built: list[RetrievalFailureRecord] = []
            start = time.perf_counter_ns()
            construct_each(arguments, built.append)
            return time.perf_counter_ns() - start  # noqa: ASYNC910  # timed without an await, on purpose

        async def construct_and_log(
            _: list[RetrievalFailureRecord], arguments: list[Arguments]
        ) -> int:
            before = accepting.statistics().accepted
            start = time.perf_counter_ns()
            construct_each(arguments, accepting.log)
            elapsed = time.perf_counter_ns() - start
            _check(accepting.statistics().accepted - before, len(arguments), "accepted")
            await accepting.flush()
            return elapsed

        async def channel_send(records: list[RetrievalFailureRecord], _: list[Arguments]) -> int:
            send = bare_send.send
            start = time.perf_counter_ns()
            for _record in records:
                await send(marker)
            elapsed = time.perf_counter_ns() - start
            for _record in records:
                bare_receive.receive_nowait()
            return elapsed  # noqa: ASYNC910  # timed without an await, on purpose

        async def send(records: list[RetrievalFailureRecord], _: list[Arguments]) -> int:
            send = accepting.send
            before = accepting.statistics().accepted
            start = time.perf_counter_ns()
            for record in records:
                await send(record)
            elapsed = time.perf_counter_ns() - start
            _check(accepting.statistics().accepted - before, len(records), "accepted")
            await accepting.flush()
            return elapsed

        async def send_checkpointed(
            records: list[RetrievalFailureRecord], _: list[Arguments]
        ) -> int:
            send = accepting.send
            checkpoint = trio.lowlevel.checkpoint
            before = accepting.statistics().accepted
            start = time.perf_counter_ns()
            for record in records:
                await send(record)
                await checkpoint()
            elapsed = time.perf_counter_ns() - start
            _check(accepting.statistics().accepted - before, len(records), "accepted")
            await accepting.flush()
            return elapsed

        contenders: dict[str, Contender] = {
            "loop_overhead": loop_overhead,
            "send_nowait_accepted": send_nowait_accepted,
            "log_accepted": log_accepted,
            "send_nowait_full": send_nowait_full,
            "log_dropped": log_dropped,
            "construct": construct,
            "construct_and_log": construct_and_log,
            "channel_send": channel_send,
            "send": send,
            "send_checkpointed": send_checkpointed,
        }
        chunks = [
            (records[start : start + chunk], arguments[start : start + chunk])
            for start in range(0, calls, chunk)
        ]

        async def measure(name: str) -> float:
            """Nanoseconds per call over all ``calls``, timed chunk by chunk."""
            gc.collect()  # no contender pays for the garbage of the one before
            elapsed = 0
            for chunk_records, chunk_arguments in chunks:
                elapsed += await contenders[name](chunk_records, chunk_arguments)
            return elapsed / calls  # noqa: ASYNC910  # timed without an await, on purpose

        # The first drop logs a warning (the library's, silenced by the harness);
        # take it, and warm every contender up once, before timing.
        for name in NAMES:
            await measure(name)
        with frozen_heap():
            for repeat in range(params.hot_repeats):
                for name in rotated(NAMES, repeat):
                    samples[name].append(await measure(name))
                await trio.lowlevel.checkpoint()
    totals = _statistics_of(accepting, dropping)  # once closed: all written

    gross = {name: median(values) for name, values in samples.items()}
    overhead = gross["loop_overhead"]
    net = {name: gross[name] - overhead for name in NAMES if name != "loop_overhead"}
    return {
        "unit": "ns per call",
        "calls_per_measurement": calls,
        "calls_per_timed_chunk": chunk,
        "repeats": params.hot_repeats,
        "loop_overhead_ns": overhead,
        "gross_ns": gross,
        "net_ns": net,
        "samples_ns": samples,
        "ratios": {
            "log_accepted_vs_send_nowait": net["log_accepted"] / net["send_nowait_accepted"],
            "log_dropped_vs_send_nowait_full": net["log_dropped"] / net["send_nowait_full"],
            "send_checkpointed_vs_send": net["send_checkpointed"] / net["send"],
            "send_vs_channel_send": net["send"] / net["channel_send"],
        },
        "logger_statistics": totals,
    }


def _check(counted: int, expected: int, what: str) -> None:
    if counted != expected:
        raise RuntimeError(f"hot path: {counted} of {expected} timed log() calls were {what}")


def _statistics_of(*loggers: RetrievalFailureLogger) -> list[dict[str, Any]]:
    return [
        {
            "accepted": stats.accepted,
            "dropped_full": stats.dropped_full,
            "written": stats.written,
            "failed": stats.failed,
        }
        for stats in (logger.statistics() for logger in loggers)
    ]
