"""ChunkPacer: chunks sized by time within bounds, a fixed size when asked, the pause between."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog._pacing import CHUNK_SECONDS, WRITER_GAP, ChunkPacer


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds}")


@given(
    first=st.integers(1, 200_000),
    took=st.lists(st.floats(0, 60, allow_nan=False), min_size=1, max_size=20),
)
def test_a_chunk_sized_by_time_changes_at_most_twofold_and_stays_in_bounds(
    first: int, took: list[float]
) -> None:
    def bounded(rows: float) -> int:
        return min(100_000, max(100, round(rows)))

    pacer = ChunkPacer(first, by_time=True, gap=0, sleep=_never_sleep)
    assert pacer.limit == first
    for seconds in took:
        before = pacer.limit
        pacer.took(seconds)
        # Never more than double or less than half the last one, and in bounds.
        assert bounded(before / 2) <= pacer.limit <= bounded(before * 2)


def test_a_chunk_sized_by_time_converges_on_the_target() -> None:
    pacer = ChunkPacer(1000, by_time=True, gap=0)
    for _ in range(10):  # the database deletes 50,000 rows a second
        pacer.took(pacer.limit / 50_000)
    assert pacer.limit == round(50_000 * CHUNK_SECONDS)
    for _ in range(10):  # slow disk: far slower chunks shrink to the floor, halving each time
        pacer.took(10.0)
    assert pacer.limit == 100


@given(first=st.integers(1, 10**6), seconds=st.floats(0, 100, allow_nan=False))
def test_a_fixed_chunk_size_stays_what_was_asked(first: int, seconds: float) -> None:
    pacer = ChunkPacer(first, by_time=False, gap=0)
    pacer.took(seconds)
    assert pacer.limit == first


def test_the_pause_sleeps_the_gap_and_a_zero_gap_does_not_sleep() -> None:
    slept: list[float] = []
    ChunkPacer(10, by_time=True, gap=WRITER_GAP, sleep=slept.append).pause()
    assert slept == [WRITER_GAP]
    ChunkPacer(10, by_time=True, gap=0, sleep=_never_sleep).pause()


def test_the_gap_outlasts_the_busy_handlers_longest_early_sleep() -> None:
    # SQLite's default busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms in its
    # first 100 ms (the logger's busy_timeout): a shorter gap can fall between
    # two of a waiting writer's tries.
    assert WRITER_GAP > 0.025


@pytest.mark.parametrize(
    ("first", "gap", "message"),
    [(0, 0.0, "chunk_size must be at least 1, got 0"), (1, -1.0, "pause must be at least 0")],
)
def test_bad_arguments_are_refused_naming_them(first: int, gap: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ChunkPacer(first, by_time=True, gap=gap)
