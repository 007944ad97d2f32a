"""trio_failurelog.testing and the pytest plugin, as users have them."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import trio_failurelog.testing as testing_module
from trio_failurelog import RetrievalFailureLogger, RetrievalFailureRecord, open_failure_reader
from trio_failurelog.testing import FailureLog, MemoryFailureLogger


def record(i: int = 0) -> RetrievalFailureRecord:
    return RetrievalFailureRecord("no_hit", "semantic", f"query {i}")


def _docstring_example() -> str:
    doc = testing_module.__doc__
    assert doc is not None
    block = doc.split("A complete example test (run by the project's suite as written)::")[1]
    block = block.split("\n\nCode under test")[0]
    return "\n".join(line[4:] for line in block.splitlines())


@pytest.mark.parametrize("clock", ["real", "autojump"])
def test_the_documented_example_runs_and_passes(clock: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_docstring_example(), "testing-example", "exec"), namespace)
    test = namespace["test_a_miss_is_logged"]
    mock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(test, mock, clock=mock if clock == "autojump" else None)


async def test_memory_logger_counts_as_the_real_one_does() -> None:
    async with MemoryFailureLogger(capacity=3) as failures:
        assert failures.log(record(0))
        assert await failures.send(record(1))
        assert await trio.to_thread.run_sync(failures.log_threadsafe, record(2))
        assert not failures.log(record(3))  # full
        await failures.flush()
        stats = failures.statistics()
        assert (stats.accepted, stats.written, stats.dropped_full, stats.queued) == (3, 3, 1, 0)
        assert [r.query_text for r in failures.records] == ["query 0", "query 1", "query 2"]
    assert not failures.log(record(4))
    assert not failures.log_threadsafe(record(5))
    assert not await failures.send(record(6))
    stats = failures.statistics()
    assert (stats.dropped_closed, stats.closed) == (3, True)


async def test_memory_logger_send_waits_for_room(autojump_clock: trio.abc.Clock) -> None:
    failures = MemoryFailureLogger(capacity=1)
    failures.log(record(0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(failures.send, record(1))
        await trio.sleep(1)
        assert len(failures.records) == 1
        assert [r.query_text for r in failures.clear()] == ["query 0"]
    assert [r.query_text for r in failures.records] == ["query 1"]


def test_memory_logger_refuses_what_is_not_a_record() -> None:
    failures = MemoryFailureLogger()
    with pytest.raises(TypeError, match="RetrievalFailureRecord"):
        failures.log("no_hit")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="capacity"):
        MemoryFailureLogger(capacity=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        MemoryFailureLogger(capacity=0)


def test_both_loggers_are_a_failure_log() -> None:
    def takes(failures: FailureLog) -> FailureLog:
        return failures

    takes(MemoryFailureLogger())
    takes(RetrievalFailureLogger(":memory:"))


async def test_the_failure_logger_fixture_is_a_real_logger_on_a_temporary_file(
    failure_logger: RetrievalFailureLogger, tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    for i in range(700):
        failure_logger.log(record(i))
    await failure_logger.flush()
    assert failure_logger.statistics().written == 700
    assert Path(failure_logger.database_name.strip("'")).parent == tmp_path
    async with open_failure_reader(tmp_path / "failures.db") as reader:
        assert await reader.count() == 700


async def test_log_from_a_worker_thread_raises_in_the_fake_as_in_the_real_logger(
    failure_logger: RetrievalFailureLogger, memory_failure_logger: MemoryFailureLogger
) -> None:
    """A test that passes with the fake must not raise in production: log()
    from a worker thread (a sync recall run with to_thread) is refused by both,
    in the same words, and log_threadsafe() taken by both."""
    messages = []
    for failures in (failure_logger, memory_failure_logger):
        with pytest.raises(RuntimeError) as caught:
            await trio.to_thread.run_sync(failures.log, record(0))
        messages.append(str(caught.value))
        assert await trio.to_thread.run_sync(failures.log_threadsafe, record(1))
    assert messages[0] == messages[1]
    assert "log_threadsafe()" in messages[0]
    assert [r.query_text for r in memory_failure_logger.records] == ["query 1"]


async def test_the_memory_fixture(memory_failure_logger: MemoryFailureLogger) -> None:
    memory_failure_logger.log(record())
    await memory_failure_logger.flush()
    assert len(memory_failure_logger.records) == 1


def test_the_plugin_is_registered_by_the_entry_point() -> None:
    text = Path(__file__).parents[1].joinpath("pyproject.toml").read_text()
    section = re.search(r"\[project\.entry-points\.pytest11\]\n(.*)\n", text)
    assert section is not None
    assert section.group(1) == 'trio_failurelog = "trio_failurelog.pytest_plugin"'


def test_log_threadsafe_from_many_threads() -> None:
    failures = MemoryFailureLogger()
    threads = [
        threading.Thread(target=lambda: [failures.log_threadsafe(record(i)) for i in range(100)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures.statistics().accepted == 400
