"""Claim 4: hostile input, driven by hypothesis.

Every value is either rejected at construction with a message naming the field,
or stored and read back faithfully (after the documented truncation and the
documented repair of lone surrogates). No batch is ever lost because of one
record: every accepted record of every generated batch is written.
"""

from __future__ import annotations

import json
import math
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import (
    ERROR_CONTEXT_MAX_CHARS,
    QUERY_TEXT_MAX_CHARS,
    TABLE,
    RetrievalFailureRecord,
    RetrievalFailureType,
    open_failure_logger,
)

from ._helpers import column

SQL_SHAPED = [
    "'); DROP TABLE memory_retrieval_failures; --",
    "Robert'); DROP TABLE students;--",
    '" OR 1=1 --',
    "%' OR '1'='1",
    "x'||(SELECT sqlite_version())||'",
    "?",
    ":name",
    "\\'; DELETE FROM memory_retrieval_failures WHERE 1=1; --",
]


class Text(str):
    """A str subclass with behaviour the database must not see."""

    def __str__(self) -> str:
        return "not the text"


class Number(int):
    def __int__(self) -> int:
        return -1


# Any code point, lone surrogates and NUL included.
any_char = st.characters(codec=None, categories=None)
text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(any_char, min_size=500, max_size=600),
    st.sampled_from(SQL_SHAPED),
    st.sampled_from(["\0", "\ud800", "a\udfffb", "\ud83d\ude00", "\x00\ud800\x00"]),
    st.builds(
        lambda c, n: c * n,
        st.text(any_char, min_size=1, max_size=2),
        st.sampled_from([257, 513, 100_000]),
    ),
    st.builds(Text, st.text(any_char, max_size=20)),
)
wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.binary(max_size=4),
    st.floats(allow_nan=True),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
integer = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=2**63, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.builds(Number, st.integers(min_value=0, max_value=2**40)),
)
score = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**1100), max_value=2**1100),
)
failure_type = st.one_of(
    st.sampled_from(list(RetrievalFailureType)),
    st.sampled_from([t.value for t in RetrievalFailureType]),
    st.sampled_from([t.value.upper() for t in RetrievalFailureType]),
    st.sampled_from([t.value.title() for t in RetrievalFailureType]),
    st.builds(Text, st.sampled_from([t.value for t in RetrievalFailureType])),
    text,
    wrong,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's hostile values, or a wrong type now and then."""
    return st.one_of(strategy, wrong)


fields = st.fixed_dictionaries(
    {
        "failure_type": failure_type,
        "retrieval_strategy": _maybe(text),
        "query_text": _maybe(text),
    },
    optional={
        "conversation_id": _maybe(integer),
        "turn_index": _maybe(integer),
        "query_len": _maybe(integer),
        "top_score": _maybe(score),
        "confidence_threshold": _maybe(score),
        "result_count": _maybe(integer),
        "latency_ms": _maybe(integer),
        "edge_types": st.one_of(st.none(), st.lists(text, max_size=3), text, wrong),
        "error_context": st.one_of(st.none(), text, wrong),
        "created_at": st.one_of(
            st.none(),
            st.sampled_from(["2024-02-29 23:59:59", "2024-01-01 00:00:00.123456"]),
            text,
        ),
    },
)


def _build(kwargs: dict[str, Any]) -> RetrievalFailureRecord | None:
    """The record, or None when construction refused it naming the field."""
    try:
        return RetrievalFailureRecord(**kwargs)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        assert any(message.startswith(name) for name in kwargs), (kwargs.keys(), message)
        return None


def _expected(record: RetrievalFailureRecord) -> tuple[object, ...]:
    stored = record  # a record holds what is stored: its texts are already cut
    assert len(stored.query_text) <= QUERY_TEXT_MAX_CHARS
    assert stored.error_context is None or len(stored.error_context) <= ERROR_CONTEXT_MAX_CHARS
    return (
        stored.conversation_id,
        stored.turn_index,
        stored.failure_type.value,
        stored.retrieval_strategy,
        stored.query_text,
        stored.query_len,
        stored.top_score,
        stored.confidence_threshold,
        stored.result_count,
        stored.latency_ms,
        None if stored.edge_types is None else list(stored.edge_types),
        stored.error_context,
    )


def _stored(database: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT conversation_id, turn_index, failure_type, retrieval_strategy, query_text,"
            " query_len, top_score, confidence_threshold, result_count, latency_ms,"
            f" edge_types, error_context, created_at FROM {TABLE} ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    return [(*row[:10], None if row[10] is None else json.loads(row[10]), row[11]) for row in rows]


async def _write(database: Path, records: list[RetrievalFailureRecord]) -> None:
    async with open_failure_logger(database, batch_size=64) as logger:
        for record in records:
            assert logger.log(record)
        await logger.flush()
        stats = logger.statistics()
    assert (stats.written, stats.failed) == (len(records), 0), stats


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _check_batch(scratch: Path, batch: list[dict[str, Any]]) -> None:
    records = [record for record in map(_build, batch) if record is not None]
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".db", delete=False) as file:
        database = Path(file.name)
    database.unlink()
    trio.run(_write, database, records)
    assert _stored(database) == [_expected(record) for record in records]
    for record, created_at in zip(records, column(database, "created_at"), strict=True):
        if record.created_at is not None:
            assert created_at == record.created_at
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def test_hostile_records_are_refused_by_name_or_stored_faithfully(
    scratch: Path, stress: bool
) -> None:
    @settings(
        max_examples=2000 if stress else 120,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=st.lists(fields, min_size=1, max_size=12))
    def check(batch: list[dict[str, Any]]) -> None:
        _check_batch(scratch, batch)

    check()


async def test_ten_megabyte_strings_in_every_text_field(db_path: Path) -> None:
    huge = "\0\ud800é" + "x" * 10_000_000 + "\udc00"
    record = RetrievalFailureRecord("error", huge, huge, edge_types=(huge, "b"), error_context=huge)
    await _write(db_path, [record, RetrievalFailureRecord("no_hit", "s", "small")])
    stored = _stored(db_path)
    assert stored == [_expected(record), _expected(RetrievalFailureRecord("no_hit", "s", "small"))]
    repaired = huge.replace("\ud800", "\ufffd").replace("\udc00", "\ufffd")
    assert stored[0][3] == repaired  # retrieval_strategy is not cut
    assert stored[0][4] == repaired[:QUERY_TEXT_MAX_CHARS]
    assert stored[0][5] == len(repaired.encode("utf-8"))  # the original query's length
    assert stored[0][10] == [repaired, "b"]
    assert stored[0][11] == repaired[:ERROR_CONTEXT_MAX_CHARS]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_type": "NO_HIT"}, "failure_type"),
        ({"failure_type": "No_Hit"}, "failure_type"),
        ({"failure_type": b"no_hit"}, "failure_type"),
        ({"query_text": b"bytes"}, "query_text"),
        ({"turn_index": 2**63}, "turn_index"),
        ({"conversation_id": -(2**63) - 1}, "conversation_id"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"result_count": True}, "result_count"),
        ({"top_score": math.nan}, "top_score"),
        ({"confidence_threshold": -math.inf}, "confidence_threshold"),
        ({"top_score": 10**400}, "top_score"),
        ({"edge_types": b"mentions"}, "edge_types"),
        ({"edge_types": ["ok", 3]}, "edge_types"),
        ({"created_at": "yesterday'); DROP TABLE x; --"}, "created_at"),
    ],
)
def test_rejections_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    values: dict[str, Any] = {
        "failure_type": "no_hit",
        "retrieval_strategy": "semantic",
        "query_text": "q",
        **kwargs,
    }
    with pytest.raises((TypeError, ValueError), match=f"^{field}"):
        RetrievalFailureRecord(**values)


async def test_sql_shaped_text_in_every_field_is_stored_verbatim(db_path: Path) -> None:
    records = [
        RetrievalFailureRecord(
            "timeout",
            shaped,
            shaped,
            edge_types=(shaped, shaped),
            error_context=shaped,
        )
        for shaped in SQL_SHAPED
    ]
    await _write(db_path, records)
    assert _stored(db_path) == [_expected(record) for record in records]


async def test_a_row_the_database_refuses_costs_only_that_row(db_path: Path) -> None:
    # The application sharing the file has a trigger that refuses some rows.
    await _write(db_path, [])
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} WHEN NEW.query_text = 'poison'"
            " BEGIN SELECT RAISE(ABORT, 'poison refused'); END"
        )
    conn.close()
    texts = [f"q{n}" for n in range(99)]
    texts.insert(40, "poison")
    async with open_failure_logger(db_path) as logger:
        for query in texts:
            logger.log(RetrievalFailureRecord("no_hit", "semantic", query))
        await logger.flush()
        stats = logger.statistics()
    assert (stats.written, stats.failed) == (99, 1), stats
    assert stats.last_error is not None
    assert "poison refused" in stats.last_error
    assert column(db_path, "query_text") == [t for t in texts if t != "poison"]
