"""Float4 (PostgreSQL ``REAL``) values shown as people wrote them.

A score of 0.42 stored in a ``REAL`` column is the float4 nearest 0.42,
0.4199999868869781494140625; as a Python float it prints as
0.41999998688697815. The shortest decimal that reads back as the same float4
is 0.42: that is what the reader's records, ``--json``, the export and the
what-if thresholds show. It names the same stored value (converting it back
to float4 gives the stored bits exactly); the value the server compares in
SQL is still the float4. Pure functions; nothing here blocks.
"""

from __future__ import annotations

import math
import struct

__all__ = ["as_float4", "shortest_float4"]

_FLOAT4 = struct.Struct("<f")


def as_float4(value: float) -> float:
    """``value`` rounded to the nearest float4 (as a Python float), or ``value``
    itself when it is not finite or out of float4's range."""
    try:
        rounded: float = _FLOAT4.unpack(_FLOAT4.pack(value))[0]
    except OverflowError:
        return value
    return rounded


def shortest_float4(value: float) -> float:
    """The float with the fewest significant digits that rounds to the same float4
    as ``value`` does: 0.41999998688697815 gives 0.42.

    For a float4 value (one read from a ``REAL`` column) the result converts
    back to exactly that float4. Values that are not finite, or too large for
    float4, come back unchanged. Never raises for a float.
    """
    if not math.isfinite(value):
        return value
    try:
        target = _FLOAT4.pack(value)
    except OverflowError:
        return value
    # 9 significant digits always tell float4 values apart.
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        try:
            if _FLOAT4.pack(candidate) == target:
                return candidate
        except OverflowError:
            continue
    return value  # pragma: no cover - 9 digits always suffice
