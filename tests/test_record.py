"""RetrievalFailureRecord: validation, normalisation, truncation."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import math
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog import (
    ERROR_CONTEXT_MAX_CHARS,
    QUERY_TEXT_MAX_CHARS,
    RetrievalFailureRecord,
    RetrievalFailureType,
)

INT64_MAX = 2**63 - 1


def make(**overrides: Any) -> RetrievalFailureRecord:
    values: dict[str, Any] = {
        "failure_type": "no_hit",
        "retrieval_strategy": "semantic",
        "query_text": "where did I park",
    }
    values.update(overrides)
    return RetrievalFailureRecord(**values)


def test_defaults_and_derived_query_len() -> None:
    record = make(query_text="héllo")
    assert record.failure_type is RetrievalFailureType.NO_HIT
    assert record.query_len == len("héllo".encode())  # bytes, not characters
    assert record.conversation_id is None
    assert record.turn_index == 0
    assert record.result_count == 0
    assert record.latency_ms == 0
    assert record.top_score is None
    assert record.edge_types is None
    assert record.id is None
    assert record.created_at is None


def test_is_frozen_slotted_and_hashable() -> None:
    record = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.query_text = "other"  # type: ignore[misc]
    assert not hasattr(record, "__dict__")
    assert record == make()
    assert hash(record) == hash(make())


def test_pickles_copies_and_replaces_as_a_value() -> None:
    record = make(edge_types=("a",), top_score=0.5, created_at="2026-01-02 03:04:05")
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record
    changed = dataclasses.replace(record, latency_ms=9)
    assert changed.latency_ms == 9
    assert changed.query_text == record.query_text
    with pytest.raises(ValueError, match="latency_ms"):
        dataclasses.replace(record, latency_ms=-1)  # replace validates too
    assert [f.name for f in dataclasses.fields(record)][:3] == [
        "failure_type",
        "retrieval_strategy",
        "query_text",
    ]
    assert "query_text='where did I park'" in repr(record)


def test_cannot_be_subclassed() -> None:
    with pytest.raises(TypeError, match="subclassed"):

        class Mine(RetrievalFailureRecord):  # type: ignore[misc]
            pass


def test_positional_required_and_keyword_only_rest() -> None:
    record = RetrievalFailureRecord(RetrievalFailureType.TIMEOUT, "graph", "q", latency_ms=3)
    assert record.failure_type == "timeout"
    with pytest.raises(TypeError):
        RetrievalFailureRecord("timeout", "graph", "q", None)  # type: ignore[call-arg]


@pytest.mark.parametrize("value", list(RetrievalFailureType))
def test_failure_type_accepts_enum_and_its_string(value: RetrievalFailureType) -> None:
    assert make(failure_type=value).failure_type is value
    assert make(failure_type=value.value).failure_type is value


@pytest.mark.parametrize("bad", ["NO_HIT", "No_Hit", "nohit", "", "miss"])
def test_failure_type_is_exact(bad: str) -> None:
    with pytest.raises(ValueError, match="failure_type"):
        make(failure_type=bad)


@pytest.mark.parametrize("bad", [None, 1, b"no_hit", ["no_hit"]])
def test_failure_type_wrong_type(bad: object) -> None:
    with pytest.raises(TypeError, match="failure_type"):
        make(failure_type=bad)


@pytest.mark.parametrize("field", ["retrieval_strategy", "query_text", "error_context"])
@pytest.mark.parametrize("bad", [b"bytes", 3, 1.5])
def test_text_fields_reject_non_str(field: str, bad: object) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: bad})


@pytest.mark.parametrize(
    "field", ["turn_index", "result_count", "latency_ms", "query_len", "conversation_id", "id"]
)
@pytest.mark.parametrize("bad", [True, False, "3"])
def test_integer_fields_reject_bool_str(field: str, bad: object) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: bad})


# latency_ms takes a float (rounded); the other integers do not, as their types say.
@pytest.mark.parametrize(
    "field", ["turn_index", "result_count", "query_len", "conversation_id", "id"]
)
@pytest.mark.parametrize("bad", [1.0, 2.5])
def test_integer_fields_reject_float(field: str, bad: object) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: bad})


@pytest.mark.parametrize("field", ["turn_index", "result_count", "latency_ms", "query_len"])
def test_counts_must_not_be_negative(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make(**{field: -1})
    assert getattr(make(**{field: 0}), field) == 0


@pytest.mark.parametrize(
    "field",
    ["turn_index", "result_count", "latency_ms", "query_len", "conversation_id", "id"],
)
def test_integers_must_fit_sqlite(field: str) -> None:
    assert getattr(make(**{field: INT64_MAX}), field) == INT64_MAX
    with pytest.raises(ValueError, match=field):
        make(**{field: INT64_MAX + 1})


def test_conversation_id_may_be_negative_down_to_int64_min() -> None:
    assert make(conversation_id=-(2**63)).conversation_id == -(2**63)
    with pytest.raises(ValueError, match="conversation_id"):
        make(conversation_id=-(2**63) - 1)


@pytest.mark.parametrize("field", ["top_score", "confidence_threshold"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_scores_must_be_finite(field: str, bad: float) -> None:
    with pytest.raises(ValueError, match=field):
        make(**{field: bad})


@pytest.mark.parametrize("field", ["top_score", "confidence_threshold"])
def test_scores_types(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        make(**{field: True})
    with pytest.raises(TypeError, match=field):
        make(**{field: "0.5"})
    with pytest.raises(ValueError, match=field):
        make(**{field: 10**400})  # an int too large for a float
    value = make(**{field: 1}).__getattribute__(field)
    assert value == 1.0
    assert type(value) is float


def test_subclasses_become_plain_values() -> None:
    class Text(str):
        def __str__(self) -> str:
            return "something else"

    class Count(int):
        def __int__(self) -> int:
            return 999

    class Score(float):
        pass

    record = make(
        retrieval_strategy=Text("semantic"),
        query_text=Text("q"),
        latency_ms=Count(7),
        top_score=Score(0.25),
        failure_type=Text("timeout"),
    )
    assert type(record.retrieval_strategy) is str
    assert record.retrieval_strategy == "semantic"
    assert type(record.query_text) is str
    assert type(record.latency_ms) is int
    assert record.latency_ms == 7
    assert type(record.top_score) is float
    assert record.failure_type is RetrievalFailureType.TIMEOUT


def test_edge_types() -> None:
    assert make(edge_types=["causes", "mentions"]).edge_types == ("causes", "mentions")
    assert make(edge_types=()).edge_types == ()
    assert make(edge_types="causes").edge_types == ("causes",)  # one edge type, as typed
    with pytest.raises(TypeError, match="edge_types"):
        make(edge_types=b"causes")
    with pytest.raises(TypeError, match="edge_types"):
        make(edge_types=["ok", 3])
    with pytest.raises(TypeError, match="edge_types"):
        make(edge_types=5)


def test_created_at_format() -> None:
    assert make(created_at="2026-01-02 03:04:05").created_at == "2026-01-02 03:04:05"
    assert make(created_at="2026-01-02 03:04:05.123").created_at == "2026-01-02 03:04:05.123"
    assert make(created_at="2026-01-02T03:04:05").created_at == "2026-01-02 03:04:05"
    assert make(created_at="2026-01-02 03:04:05Z").created_at == "2026-01-02 03:04:05"
    assert make(created_at="2026-01-02").created_at == "2026-01-02 00:00:00"
    for bad in [
        "yesterday",
        "1999-02-30 00:00:00",  # no such day
        "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
        "2024-99-99 99:99:99",
        "\u0662\u0660\u0662\u0664-01-02 03:04:05",  # Arabic-Indic digits sort wrongly
    ]:
        with pytest.raises(ValueError, match="created_at"):
            make(created_at=bad)


def test_lone_surrogates_are_repaired_and_pairs_joined() -> None:
    record = make(query_text="a\ud800b\ud83d\ude00", error_context="\udfff")
    assert record.query_text == "a\ufffdb\U0001f600"
    assert record.error_context == "\ufffd"
    record.query_text.encode("utf-8")  # always encodable now
    assert record.query_len == len(record.query_text.encode("utf-8"))


def test_long_text_is_cut_at_construction_keeping_the_original_length() -> None:
    query = "é" * (QUERY_TEXT_MAX_CHARS + 10)
    context = "x" * (ERROR_CONTEXT_MAX_CHARS + 1)
    record = make(query_text=query, error_context=context, latency_ms=9)
    assert record.query_text == "é" * QUERY_TEXT_MAX_CHARS
    assert record.error_context == "x" * ERROR_CONTEXT_MAX_CHARS
    assert record.query_len == len(query.encode())  # bytes of the original query
    assert record.latency_ms == 9


def test_text_at_the_bounds_is_kept_whole() -> None:
    record = make(
        query_text="q" * QUERY_TEXT_MAX_CHARS, error_context="e" * ERROR_CONTEXT_MAX_CHARS
    )
    assert len(record.query_text) == QUERY_TEXT_MAX_CHARS
    assert record.error_context is not None
    assert len(record.error_context) == ERROR_CONTEXT_MAX_CHARS


def test_explicit_query_len_is_kept() -> None:
    assert make(query_text="short", query_len=4096).query_len == 4096


text = st.text(st.characters(codec=None, exclude_categories=()), max_size=700)


@given(query=text, context=st.none() | text, strategy=text)
def test_any_text_is_accepted_encodable_and_cut_to_bounds(
    query: str, context: str | None, strategy: str
) -> None:
    record = make(query_text=query, error_context=context, retrieval_strategy=strategy)
    for value in (record.query_text, record.error_context or "", record.retrieval_strategy):
        value.encode("utf-8")
    assert len(record.query_text) <= QUERY_TEXT_MAX_CHARS
    assert record.error_context is None or len(record.error_context) <= ERROR_CONTEXT_MAX_CHARS
    # Surrogate pairs are joined and lone surrogates become U+FFFD, then the text is cut.
    whole = query.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    assert record.query_text == whole[:QUERY_TEXT_MAX_CHARS]
    assert record.query_len == len(whole.encode("utf-8"))


@given(
    value=st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.text(max_size=5)
    | st.none()
)
def test_latency_is_valid_or_rejected_naming_the_field(value: object) -> None:
    try:
        record = make(latency_ms=value)
    except (TypeError, ValueError) as exc:
        assert "latency_ms" in str(exc)
    else:
        assert type(record.latency_ms) is int
        assert 0 <= record.latency_ms <= INT64_MAX
        assert isinstance(value, int | float)
        assert not isinstance(value, bool)
        assert record.latency_ms == round(value)
        assert abs(record.latency_ms - value) <= 0.5


@given(value=st.floats() | st.integers(min_value=-(10**400), max_value=10**400))
def test_scores_are_finite_floats_or_rejected(value: float) -> None:
    try:
        record = make(top_score=value)
    except ValueError as exc:
        assert "top_score" in str(exc)
        if isinstance(value, float):
            assert not math.isfinite(value)
        else:
            with pytest.raises(OverflowError):
                float(value)
    else:
        assert record.top_score is not None
        assert math.isfinite(record.top_score)
        assert record.top_score == float(value)


# ---------------------------------------------------------------- natural values


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_float_latency_is_rounded_or_refused_naming_the_field(value: float) -> None:
    try:
        record = make(latency_ms=value)
    except ValueError as exc:
        assert str(exc).startswith("latency_ms")
        assert not math.isfinite(value) or value < 0 or round(value) > INT64_MAX
    else:
        assert type(record.latency_ms) is int
        assert record.latency_ms == round(value)


def test_latency_from_the_trio_clock_is_taken() -> None:
    t0 = 1234.5678
    now = t0 + 0.0127
    assert make(latency_ms=(now - t0) * 1000).latency_ms == 13
    assert make(latency_ms=12.5).latency_ms == 12  # halves to even
    assert make(latency_ms=-0.0).latency_ms == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.5])
def test_bad_float_latency_is_refused_naming_the_field(bad: float) -> None:
    with pytest.raises(ValueError, match=r"^latency_ms"):
        make(latency_ms=bad)


_UTC_RANGE = st.datetimes(
    min_value=datetime.datetime(1, 1, 2), max_value=datetime.datetime(9999, 12, 30)
)


def _stored_moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


@given(moment=_UTC_RANGE, zone=st.timezones())
def test_an_aware_datetime_is_stored_as_the_same_instant_in_utc(
    moment: datetime.datetime, zone: datetime.tzinfo
) -> None:
    aware = moment.replace(tzinfo=zone)
    stored = make(created_at=aware).created_at
    assert stored is not None
    assert stored[10] == " "
    assert _stored_moment(stored) == aware


@given(moment=_UTC_RANGE, offset_minutes=st.integers(-23 * 60 - 59, 23 * 60 + 59))
def test_iso_text_with_t_or_offset_is_the_same_instant(
    moment: datetime.datetime, offset_minutes: int
) -> None:
    zone = datetime.timezone(datetime.timedelta(minutes=offset_minutes))
    aware = moment.replace(tzinfo=zone)
    for text in (aware.isoformat(), aware.isoformat(sep=" ")):
        stored = make(created_at=text).created_at
        assert stored is not None
        assert _stored_moment(stored) == aware
    naive_text = moment.isoformat()  # with a T, no offset: UTC
    stored = make(created_at=naive_text).created_at
    assert stored is not None
    assert _stored_moment(stored) == moment.replace(tzinfo=datetime.UTC)


@given(moment=_UTC_RANGE)
def test_a_naive_datetime_is_taken_as_utc(moment: datetime.datetime) -> None:
    stored = make(created_at=moment).created_at
    assert stored is not None
    assert _stored_moment(stored) == moment.replace(tzinfo=datetime.UTC)
    # The same text as the aware UTC datetime, so they sort and compare alike.
    assert stored == make(created_at=moment.replace(tzinfo=datetime.UTC)).created_at


def test_created_at_refuses_a_date_and_other_types_naming_the_field() -> None:
    with pytest.raises(TypeError, match=r"^created_at"):
        make(created_at=datetime.date(2024, 5, 1))
    with pytest.raises(TypeError, match=r"^created_at"):
        make(created_at=1714564800)


@given(edge=st.text(max_size=20))
def test_a_str_edge_types_is_one_edge_type(edge: str) -> None:
    record = make(edge_types=edge)
    assert record.edge_types is not None
    assert len(record.edge_types) == 1


def test_what_the_types_accept_construction_accepts() -> None:
    # tests/typecheck_values.py is checked by mypy --strict: its accepted lines
    # pass the checker, its "type: ignore" lines fail it. Here they run.
    from tests import typecheck_values

    assert len(typecheck_values.accepted()) == typecheck_values.ACCEPTED_LINES
    for build in typecheck_values.REFUSED:
        with pytest.raises((TypeError, ValueError)):
            build()
