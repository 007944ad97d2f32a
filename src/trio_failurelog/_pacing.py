"""How the manual purge sizes its chunks and spaces them, so that other writers get in between.

SQLite lets one connection write at a time, and hands the lock to nobody in
particular: a writer that finds it taken sleeps in SQLite's busy handler (1,
2, 5, 10, 15, 20, 25 ms, then 25, 50 and 100 ms apart) and tries again. A purge
that begins its next chunk as soon as the last one commits takes the lock back
within microseconds, so a waiting writer gets in only if one of its tries
happens to land in that instant: with chunks committed back to back, a logger
writing 2,000 records/s saw its commit p99 go from 22 ms to 354 ms (measured
on a 10M-row file; figure 8 in docs/performance.md measures it again).
So, between two chunks, the purge sleeps longer than the busy handler's
longest sleep of its first 100 ms (the logger's default ``busy_timeout``): a
writer that began waiting during a chunk tries again during the gap, and
waits at most about one chunk. Each chunk is sized to hold the lock about
:data:`CHUNK_SECONDS`, whatever the table's size and the disk's speed.

PostgreSQL needs neither: its row locks never keep an INSERT waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

__all__ = ["CHUNK_SECONDS", "WRITER_GAP", "ChunkPacer"]

#: How long one chunk should hold the write lock (seconds).
CHUNK_SECONDS: Final = 0.02
#: The pause between two chunks: longer than 25 ms, the busy handler's longest
#: sleep in its first 100 ms, so a waiting writer tries at least once in it.
WRITER_GAP: Final = 0.03
#: Bounds of a chunk sized by time, and how far one chunk may change the next.
_MIN_ROWS: Final = 100
_MAX_ROWS: Final = 100_000
_MAX_STEP: Final = 2.0


class ChunkPacer:
    """The row limit of the next chunk, and the pause after each.

    ``first`` rows in the first chunk; with ``by_time``, each next chunk is
    scaled (at most doubled or halved) so that it would have taken
    :data:`CHUNK_SECONDS`, between 100 and 100,000 rows; without, every chunk
    is ``first`` rows. :meth:`pause` sleeps ``gap`` seconds (blocking the
    calling thread; never interrupted but by a signal's exception).
    """

    __slots__ = ("_by_time", "_gap", "_sleep", "limit")

    def __init__(
        self,
        first: int,
        *,
        by_time: bool,
        gap: float,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if first < 1:
            raise ValueError(f"chunk_size must be at least 1, got {first}")
        if gap < 0:
            raise ValueError(f"pause must be at least 0, got {gap}")
        self.limit = first
        self._by_time = by_time
        self._gap = gap
        self._sleep = sleep

    def took(self, seconds: float) -> None:
        """The last chunk (of :attr:`limit` rows, all deleted) held the lock ``seconds``."""
        if not self._by_time:
            return
        factor = CHUNK_SECONDS / max(seconds, 1e-6)
        factor = min(_MAX_STEP, max(1 / _MAX_STEP, factor))
        self.limit = min(_MAX_ROWS, max(_MIN_ROWS, round(self.limit * factor)))

    def pause(self) -> None:
        """Let a waiting writer take the lock before the next chunk."""
        if self._gap:
            self._sleep(self._gap)
