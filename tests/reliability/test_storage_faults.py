"""Claim 3: storage faults at run time.

The disk fills up, the file becomes read-only, its directory disappears, the
file is overwritten with garbage. In every case the application keeps running,
the lost records are counted as failed with the reason in ``last_error``, one
warning is logged, and where the fault clears writing resumes without a restart.

These run in-process on the real clock (the writer's thread does real I/O)
without sleeping: ``flush()`` is what moves each step along.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from trio_failurelog import (
    RetrievalFailureLogger,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._sqlite import SQLiteStore

from ._helpers import assert_accounting, column, integrity, row_count, warnings_containing

BATCH = 40
FAILURE_WARNING = "could not write"


async def _log_batch(logger: RetrievalFailureLogger, tag: str, size: int = BATCH) -> None:
    """Log ``size`` records tagged ``tag`` and wait until they are settled."""
    for n in range(size):
        assert logger.log(RetrievalFailureRecord("no_hit", "semantic", f"{tag} {n} " + "x" * 400))
    await logger.flush()
    assert_accounting(logger.statistics())


def _tagged(database: Path, tag: str) -> int:
    return sum(1 for text in column(database, "query_text") if str(text).startswith(f"{tag} "))


def _sqlite_connection(logger: RetrievalFailureLogger) -> sqlite3.Connection:
    """The writer's own connection (the writer is idle between flushes)."""
    store = logger._writer.store
    assert isinstance(store, SQLiteStore)
    conn = store._conn
    assert conn is not None
    return conn


def _checkpoint(database: Path) -> None:
    conn = sqlite3.connect(database)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()


class FaultRun:
    """Runs the common shape: write, break, write (fails), write (fails), repair, write."""

    def __init__(self, logger: RetrievalFailureLogger, lib_log: pytest.LogCaptureFixture) -> None:
        self.logger = logger
        self.lib_log = lib_log

    async def fail_twice(self, *reasons: str) -> None:
        """Two batches during the fault: both lost, counted, one warning, reason kept.

        ``last_error`` holds the reason of the latest failure, which is one of
        ``reasons`` (the second batch may fail reopening the file rather than
        writing to it).
        """
        before = self.logger.statistics()
        self.lib_log.clear()
        await _log_batch(self.logger, "during-1")
        await _log_batch(self.logger, "during-2")
        stats = self.logger.statistics()
        assert stats.failed - before.failed == 2 * BATCH, stats
        assert stats.written == before.written, stats
        assert stats.last_error is not None
        assert any(reason in stats.last_error for reason in reasons), stats.last_error
        assert len(warnings_containing(self.lib_log.records, FAILURE_WARNING)) == 1
        assert not stats.closed

    async def resume(self) -> None:
        before = self.logger.statistics()
        await _log_batch(self.logger, "after")
        stats = self.logger.statistics()
        assert stats.written - before.written == BATCH, stats
        assert stats.failed == before.failed, stats


async def test_disk_full_via_max_page_count(
    db_path: Path, lib_log: pytest.LogCaptureFixture
) -> None:
    async with open_failure_logger(db_path) as logger:
        run = FaultRun(logger, lib_log)
        await _log_batch(logger, "before")
        conn = _sqlite_connection(logger)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        await run.fail_twice("database or disk is full")
        conn.execute("PRAGMA max_page_count = 1000000")  # space freed
        await run.resume()
    assert integrity(db_path) == ["ok"]
    assert (_tagged(db_path, "before"), _tagged(db_path, "after")) == (BATCH, BATCH)
    assert _tagged(db_path, "during-1") == _tagged(db_path, "during-2") == 0


@contextlib.contextmanager
def _small_filesystem(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (
            exc.stderr.decode().strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        )
        pytest.skip(f"cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN): {detail}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as file:
        with contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * 4096)
                file.flush()
        with contextlib.suppress(OSError):
            file.close()
    return filler


async def test_disk_full_on_a_real_small_filesystem(
    tmp_path: Path, lib_log: pytest.LogCaptureFixture
) -> None:
    with _small_filesystem(tmp_path / "mnt", "2m") as mount:
        database = mount / "failures.db"
        async with open_failure_logger(database) as logger:
            run = FaultRun(logger, lib_log)
            await _log_batch(logger, "before")
            filler = _fill(mount)
            await run.fail_twice("full")
            filler.unlink()  # space freed
            await run.resume()
        assert integrity(database) == ["ok"]
        assert (_tagged(database, "before"), _tagged(database, "after")) == (BATCH, BATCH)
        assert _tagged(database, "during-1") == 0


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


def _immutable_supported(probe: Path) -> bool:
    probe.write_bytes(b"probe")
    try:
        _chattr("+i", probe)
    except (OSError, subprocess.CalledProcessError):
        return False
    try:
        with open(probe, "ab") as file:
            file.write(b"x")
    except PermissionError:
        return True
    finally:
        _chattr("-i", probe)
    return False


@pytest.mark.parametrize("which", ["database and wal", "database only"])
async def test_file_becomes_read_only(
    tmp_path: Path, db_path: Path, lib_log: pytest.LogCaptureFixture, which: str
) -> None:
    # As root, permission bits do not stop writes (and no one's writes through
    # a descriptor already open). The immutable attribute stops everyone's.
    if not _immutable_supported(tmp_path / "probe"):
        pytest.skip("chattr +i is not supported on this filesystem, or does not stop writes")
    wal = db_path.with_name(db_path.name + "-wal")
    frozen = [db_path, wal] if which == "database and wal" else [db_path]
    async with open_failure_logger(db_path) as logger:
        run = FaultRun(logger, lib_log)
        await _log_batch(logger, "before")
        _chattr("+i", *frozen)
        try:
            if which == "database and wal":
                await run.fail_twice("I/O error", "readonly database")
            else:
                # Commits only append to the WAL, which is still writable: nothing
                # is lost, only the checkpoints into the frozen file wait.
                await _log_batch(logger, "during")
                stats = logger.statistics()
                assert (stats.written, stats.failed) == (2 * BATCH, 0), stats
        finally:
            _chattr("-i", *frozen)  # permission restored
        await run.resume()
        stats = logger.statistics()
    assert integrity(db_path) == ["ok"]
    assert row_count(db_path) == stats.written
    assert (_tagged(db_path, "before"), _tagged(db_path, "after")) == (BATCH, BATCH)


async def test_directory_disappears(db_path: Path, lib_log: pytest.LogCaptureFixture) -> None:
    async with open_failure_logger(db_path) as logger:
        run = FaultRun(logger, lib_log)
        await _log_batch(logger, "before")
        shutil.rmtree(db_path.parent)
        await run.fail_twice("was removed", "No such file or directory")
        db_path.parent.mkdir()  # the directory is back: a new file is created there
        await run.resume()
        stats = logger.statistics()
    assert integrity(db_path) == ["ok"]
    assert row_count(db_path) == _tagged(db_path, "after") == BATCH
    assert stats.written == 2 * BATCH


async def test_file_removed_is_created_again_without_loss(
    db_path: Path, lib_log: pytest.LogCaptureFixture
) -> None:
    async with open_failure_logger(db_path) as logger:
        await _log_batch(logger, "before")
        os.unlink(db_path)
        await _log_batch(logger, "after")
        stats = logger.statistics()
        assert (stats.written, stats.failed) == (2 * BATCH, 0), stats
    assert row_count(db_path) == _tagged(db_path, "after") == BATCH
    assert os.stat(db_path).st_mode & 0o777 == 0o600


def _overwrite_in_place(path: Path, data: bytes) -> None:
    with open(path, "r+b") as file:
        file.write(data)
        file.truncate()


def _contents(path: Path) -> bytes:
    return path.read_bytes()


def _replace(path: Path, data: bytes) -> None:
    temporary = path.with_name("incoming")
    temporary.write_bytes(data)
    temporary.replace(path)


@pytest.mark.parametrize("overwrite", [_overwrite_in_place, _replace])
async def test_file_overwritten_with_garbage(
    db_path: Path,
    lib_log: pytest.LogCaptureFixture,
    overwrite: Callable[[Path, bytes], None],
) -> None:
    garbage = os.urandom(64 * 1024)
    async with open_failure_logger(db_path) as logger:
        run = FaultRun(logger, lib_log)
        await _log_batch(logger, "before")
        _checkpoint(db_path)  # everything in the file itself, as after any checkpoint
        backup = _contents(db_path)
        overwrite(db_path, garbage)
        await run.fail_twice("file is not a database")
        # The foreign file is refused without being modified.
        assert _contents(db_path) == garbage
        overwrite(db_path, backup)  # restored from the backup
        await run.resume()
    assert integrity(db_path) == ["ok"]
    assert (_tagged(db_path, "before"), _tagged(db_path, "after")) == (BATCH, BATCH)
