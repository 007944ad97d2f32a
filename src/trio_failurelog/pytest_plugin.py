"""The pytest plugin: fixtures for testing code that logs retrieval failures.

Registered through the ``pytest11`` entry point when the package is installed,
so the fixtures need no import. Both are for trio tests (pytest-trio's
``trio_mode``, or ``@pytest.mark.trio``), on the real clock or
``autojump_clock``.

* ``failure_logger``: a :class:`~trio_failurelog.RetrievalFailureLogger` opened
  with :func:`~trio_failurelog.open_failure_logger` on a new SQLite file in
  the test's ``tmp_path`` (its path is ``failure_logger.database_name``), closed
  after the test; rows can be read back with
  :func:`~trio_failurelog.open_failure_reader`.
* ``memory_failure_logger``: a :class:`~trio_failurelog.testing.MemoryFailureLogger`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ._lifetime import open_failure_logger
from ._logger import RetrievalFailureLogger
from .testing import MemoryFailureLogger

__all__ = ["failure_logger", "memory_failure_logger"]


@pytest.fixture
async def failure_logger(tmp_path: Path) -> AsyncIterator[RetrievalFailureLogger]:
    """A real logger on ``tmp_path / "failures.db"``, open for the test, closed after."""
    async with open_failure_logger(tmp_path / "failures.db") as logger:
        yield logger


@pytest.fixture
async def memory_failure_logger() -> AsyncIterator[MemoryFailureLogger]:
    """A :class:`MemoryFailureLogger`, closed after the test."""
    async with MemoryFailureLogger() as logger:
        yield logger
