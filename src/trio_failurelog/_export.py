"""Writing records out as JSON Lines or CSV, one row at a time (constant memory).

Both writers block on the stream they write to. JSON Lines is exact: reading
it back gives every value as stored. CSV writes ``NULL`` as an empty field, so
an empty ``error_context`` and a missing one look the same there; ``edge_types``
is the JSON array text in both formats' terms (a list in JSON Lines).

CSV files are opened in spreadsheets, and ``query_text`` is what end users
typed: a cell such as ``=HYPERLINK(...)`` would run as a formula there. So, as
OWASP recommends against CSV injection, a *text* cell that begins with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is written with a single quote
(``'``) in front, which spreadsheets show as text. The numeric columns (``id``,
the counts, ``latency_ms``, the scores) are numbers, not text: ``-0.5`` is
written as it is (a spreadsheet reads it as the number it is, never as a
formula). ``neutralise=False`` writes every cell as stored. JSON Lines is
never changed: nothing evaluates it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TextIO

from ._record import RetrievalFailureRecord
from ._table import FIELDS

__all__ = [
    "EXPORT_FIELDS",
    "FORMULA_STARTS",
    "neutralise_cell",
    "record_to_dict",
    "write_csv",
    "write_jsonl",
]

#: The exported fields, in order: the table's columns, ``id`` first.
EXPORT_FIELDS: Final = FIELDS


#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: str) -> str:
    """``value`` with a ``'`` in front when a spreadsheet would take it for a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def record_to_dict(record: RetrievalFailureRecord) -> dict[str, Any]:
    """The record as JSON-ready values: ``failure_type`` as text, ``edge_types`` as a list."""
    data: dict[str, Any] = {name: getattr(record, name) for name in EXPORT_FIELDS}
    data["failure_type"] = str(record.failure_type)
    if record.edge_types is not None:
        data["edge_types"] = list(record.edge_types)
    return data


def _counted(
    records: Iterable[RetrievalFailureRecord], on_row: Callable[[int], object] | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each record as ``(number, dict)``, calling ``on_row(number)`` once it is written."""
    for count, record in enumerate(records, 1):
        yield count, record_to_dict(record)
        if on_row is not None:
            on_row(count)


def write_jsonl(
    records: Iterable[RetrievalFailureRecord],
    stream: TextIO,
    on_row: Callable[[int], object] | None = None,
) -> int:
    """Write one JSON object per line; return how many. Calls ``on_row(count)`` per row."""
    count = 0
    for count, data in _counted(records, on_row):  # noqa: B007 - count is the result
        stream.write(json.dumps(data, ensure_ascii=False) + "\n")
    return count


def write_csv(
    records: Iterable[RetrievalFailureRecord],
    stream: TextIO,
    on_row: Callable[[int], object] | None = None,
    *,
    neutralise: bool = True,
) -> int:
    """Write a header and one CSV row per record; return how many rows.

    ``stream`` should be opened with ``newline=""``. ``NULL`` becomes an empty
    field, ``edge_types`` its JSON array text, floats their shortest exact form.
    With ``neutralise`` (the default), text cells a spreadsheet would run as a
    formula get a ``'`` in front (see the module's docstring). Blocks on
    ``stream``; raises what writing to it raises.
    """
    writer = csv.writer(stream)
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for count, data in _counted(records, on_row):  # noqa: B007 - count is the result
        edge_types = data["edge_types"]
        if edge_types is not None:
            data["edge_types"] = json.dumps(edge_types, ensure_ascii=False)
        cells = ["" if data[name] is None else data[name] for name in EXPORT_FIELDS]
        if neutralise:
            cells = [neutralise_cell(c) if isinstance(c, str) else c for c in cells]
        writer.writerow(cells)
    return count
