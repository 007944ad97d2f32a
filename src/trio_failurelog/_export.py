"""Writing failures out as JSON Lines or CSV, one row at a time (constant memory).

The writers take the readers' rows, not records: building a record per row
cost more than the rest of an export together. What they write is what the
record of each row gives (:func:`record_to_dict`), byte for byte. Both
writers block on the stream they write to. JSON Lines is exact: reading
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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, TextIO

from ._readsql import edge_types_tuple as _edge_types
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


_EDGE_TYPES: Final = EXPORT_FIELDS.index("edge_types")
_FAILURE_TYPE: Final = EXPORT_FIELDS.index("failure_type")
_FORMULA_FIRST: Final = frozenset(FORMULA_STARTS)
#: Distinct stored ``edge_types`` texts whose exported forms are remembered
#: (a handful in practice); past this, the memo starts afresh: memory stays flat.
_EDGE_MEMO_SIZE: Final = 4096
_json_line = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(..., ensure_ascii=False)


class _EdgeTypes:
    """The exported forms of stored ``edge_types`` texts, as a record shows
    them (``row_to_record``'s tolerant reading), remembered per text: the
    same few texts repeat on every row."""

    def __init__(self) -> None:
        self._lists: dict[object, list[str]] = {}
        self._texts: dict[object, str] = {}

    def as_list(self, raw: object) -> list[str]:
        """JSON Lines' value: a fresh list (the caller's to keep)."""
        found = self._lists.get(raw)
        if found is None:
            if len(self._lists) >= _EDGE_MEMO_SIZE:
                self._lists.clear()
            found = self._lists[raw] = list(_edge_types(raw) or ())
        return list(found)

    def as_text(self, raw: object) -> str:
        """CSV's cell: the list as JSON text."""
        found = self._texts.get(raw)
        if found is None:
            if len(self._texts) >= _EDGE_MEMO_SIZE:
                self._texts.clear()
            found = self._texts[raw] = json.dumps(list(_edge_types(raw) or ()), ensure_ascii=False)
        return found


def write_jsonl(
    rows: Iterable[Sequence[Any]],
    stream: TextIO,
    on_row: Callable[[int], object] | None = None,
) -> int:
    """Write one JSON object per row; return how many. Calls ``on_row(count)`` per row.

    ``rows`` are rows of the readers' ``SELECT`` (:data:`EXPORT_FIELDS`, values
    as the read connection gives them); each line is the JSON of
    :func:`record_to_dict` of the record the reader would build from it.
    Blocks on ``stream``; raises what writing to it raises.
    """
    edges = _EdgeTypes()
    write = stream.write
    count = 0
    for count, row in enumerate(rows, 1):
        data = dict(zip(EXPORT_FIELDS, row, strict=True))
        failure_type = row[_FAILURE_TYPE]
        if failure_type.__class__ is not str:
            data["failure_type"] = str(failure_type)
        raw_edges = row[_EDGE_TYPES]
        if raw_edges is not None:
            data["edge_types"] = edges.as_list(raw_edges)
        write(_json_line(data) + "\n")
        if on_row is not None:
            on_row(count)
    return count


def write_csv(
    rows: Iterable[Sequence[Any]],
    stream: TextIO,
    on_row: Callable[[int], object] | None = None,
    *,
    neutralise: bool = True,
) -> int:
    """Write a header and one CSV row per row; return how many rows.

    ``rows`` as for :func:`write_jsonl`. ``stream`` should be opened with
    ``newline=""``. ``NULL`` becomes an empty field, ``edge_types`` its JSON
    array text, floats their shortest exact form. With ``neutralise`` (the
    default), text cells a spreadsheet would run as a formula get a ``'`` in
    front (see the module's docstring). Blocks on ``stream``; raises what
    writing to it raises.
    """
    writer = csv.writer(stream)
    writer.writerow(EXPORT_FIELDS)
    writerow = writer.writerow
    edges = _EdgeTypes()
    first = _FORMULA_FIRST
    count = 0
    for count, row in enumerate(rows, 1):
        raw_edges = row[_EDGE_TYPES]
        if neutralise:
            # A str cell only (a number is never a formula); csv.writer writes
            # None as an empty field and other values as str() (floats as repr()).
            cells = [
                "'" + cell if cell.__class__ is str and cell[:1] in first else cell for cell in row
            ]
        else:
            cells = list(row)
        if raw_edges is not None:
            cells[_EDGE_TYPES] = edges.as_text(raw_edges)  # "[...": never a formula
        failure_type = row[_FAILURE_TYPE]
        if failure_type.__class__ is not str:  # shown as text, as a record's is
            failure_type = str(failure_type)
            cells[_FAILURE_TYPE] = neutralise_cell(failure_type) if neutralise else failure_type
        writerow(cells)
        if on_row is not None:
            on_row(count)
    return count
