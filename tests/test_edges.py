"""Small promises: log_threadsafe() on a closed logger, and a loop that is not trio's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from trio_failurelog import RetrievalFailureLogger, RetrievalFailureRecord, open_failure_logger


def record() -> RetrievalFailureRecord:
    return RetrievalFailureRecord("no_hit", "semantic", "q")


async def test_log_threadsafe_says_false_once_the_logger_is_closed(tmp_path: Path) -> None:
    async with open_failure_logger(tmp_path / "f.db") as failures:
        assert failures.log_threadsafe(record())
        assert await trio.to_thread.run_sync(failures.log_threadsafe, record())
        await failures.flush()
    # Closed, in the same run: from this thread and from another.
    assert not failures.log_threadsafe(record())
    assert not await trio.to_thread.run_sync(failures.log_threadsafe, record())
    stats = failures.statistics()
    assert (stats.accepted, stats.written, stats.dropped_closed) == (2, 2, 2)


async def test_log_threadsafe_says_false_after_aclose_with_run_in_a_nursery(
    tmp_path: Path,
) -> None:
    failures = RetrievalFailureLogger(tmp_path / "f.db")
    async with trio.open_nursery() as nursery:
        await nursery.start(failures.run)
        await failures.aclose()
        assert not await trio.to_thread.run_sync(failures.log_threadsafe, record())
    assert failures.statistics().dropped_closed == 1


def _message_under_asyncio(call: Callable[[], Awaitable[object]]) -> str:
    async def main() -> str:
        with pytest.raises(RuntimeError) as caught:
            await call()
        return str(caught.value)

    return asyncio.run(main())


def _says_trio_is_needed(message: str) -> None:
    assert "\n" not in message
    assert "needs trio" in message
    assert "anyio" in message
    assert "trio backend" in message


@pytest.mark.parametrize("method", ["open_failure_logger", "RetrievalFailureLogger"])
def test_under_asyncio_the_first_call_says_trio_is_needed(tmp_path: Path, method: str) -> None:
    async def build() -> object:
        if method == "open_failure_logger":
            async with open_failure_logger(tmp_path / "f.db"):
                pass
            return None  # noqa: ASYNC910  # not reached: entering raises
        # Construction raises before any await: the point of the test.
        return RetrievalFailureLogger(tmp_path / "f.db")  # noqa: ASYNC910

    _says_trio_is_needed(_message_under_asyncio(build))


@pytest.mark.parametrize("method", ["flush", "aclose", "send", "run"])
def test_under_asyncio_a_logger_built_outside_any_loop_says_trio_is_needed(
    tmp_path: Path, method: str
) -> None:
    failures = RetrievalFailureLogger(tmp_path / "f.db")
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "flush": failures.flush,
        "aclose": failures.aclose,
        "send": lambda: failures.send(record()),
        "run": failures.run,
    }
    _says_trio_is_needed(_message_under_asyncio(calls[method]))


def test_a_logger_built_outside_any_loop_is_fine(tmp_path: Path) -> None:
    failures = RetrievalFailureLogger(tmp_path / "f.db")
    assert failures.log(record())

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(failures.run)
            await failures.aclose()

    trio.run(main)
    assert failures.statistics().written == 1
