"""Writing records out as JSON Lines or CSV, one row at a time (constant memory).

Both writers block on the stream they write to. JSON Lines is exact: reading
it back gives every value as stored. CSV writes ``NULL`` as an empty field, so
an empty ``error_context`` and a missing one look the same there; ``edge_types``
is the JSON array text in both formats' terms (a list in JSON Lines).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, TextIO

from ._record import RetrievalFailureRecord
from ._table import FIELDS

__all__ = ["EXPORT_FIELDS", "record_to_dict", "write_csv", "write_jsonl"]

#: The exported fields, in order: the table's columns, ``id`` first.
EXPORT_FIELDS: Final = FIELDS


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
) -> int:
    """Write a header and one CSV row per record; return how many rows.

    ``stream`` should be opened with ``newline=""``. ``NULL`` becomes an empty
    field, ``edge_types`` its JSON array text, floats their shortest exact form.
    """
    writer = csv.writer(stream)
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for count, data in _counted(records, on_row):  # noqa: B007 - count is the result
        edge_types = data["edge_types"]
        if edge_types is not None:
            data["edge_types"] = json.dumps(edge_types, ensure_ascii=False)
        writer.writerow(["" if data[name] is None else data[name] for name in EXPORT_FIELDS])
    return count
