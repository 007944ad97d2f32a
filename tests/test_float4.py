"""Float4 scores shown as the shortest decimal that is the same float4."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog._float4 import as_float4, shortest_float4


def bits(value: float) -> bytes:
    return struct.pack("<f", value)


@pytest.mark.parametrize(
    ("written", "shown"),
    [(0.42, 0.42), (0.7, 0.7), (0.65, 0.65), (0.1, 0.1), (-0.5, -0.5), (1e-45, 1e-45),
     (0.123456789, 0.12345679), (123456789.0, 123456790.0), (3.4e38, 3.4e38), (0.0, 0.0)],
)  # fmt: skip
def test_a_float4_shows_as_written(written: float, shown: float) -> None:
    stored = as_float4(written)
    assert shortest_float4(stored) == shown
    assert bits(shown) == bits(stored)


@given(st.integers(0, 2**32 - 1))
def test_every_float4_reads_back_the_same_from_its_shortest_decimal(pattern: int) -> None:
    (stored,) = struct.unpack("<f", pattern.to_bytes(4, "little"))
    shown = shortest_float4(stored)
    if not math.isfinite(stored):
        assert shown is stored or (math.isnan(shown) and math.isnan(stored))
        return
    assert bits(shown) == bits(stored)  # the same float4, -0.0 included
    # ...and never longer than the widened float4 itself.
    assert len(repr(shown)) <= len(repr(stored))
    # With one significant digit fewer, it would name another float4 (or be 0).
    mantissa = f"{abs(shown):.8e}".split("e")[0].rstrip("0").rstrip(".").replace(".", "")
    if len(mantissa) > 1:
        fewer = float(f"{stored:.{len(mantissa) - 2}e}")
        assert bits(fewer) != bits(stored)


@pytest.mark.parametrize("value", [math.inf, -math.inf, 1e300, -1e300])
def test_values_float4_cannot_hold_come_back_unchanged(value: float) -> None:
    assert shortest_float4(value) == value
    assert as_float4(value) == value
