"""The value that is recorded: one failed recall.

Validation happens here, once, when a record is built, so that everything after
construction (``log()``, the writer thread, SQLite) can trust the record and stay
cheap. Bad input raises at construction with a message that names the field.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Literal, final

from ._timetext import format_created_at

__all__ = [
    "ERROR_CONTEXT_MAX_CHARS",
    "QUERY_TEXT_MAX_CHARS",
    "FailureTypeName",
    "RetrievalFailureRecord",
    "RetrievalFailureType",
]

#: A record keeps at most this many characters (code points) of ``query_text``.
QUERY_TEXT_MAX_CHARS: Final = 512
#: A record keeps at most this many characters (code points) of ``error_context``.
ERROR_CONTEXT_MAX_CHARS: Final = 256

# SQLite stores integers as signed 64-bit values; anything outside cannot be bound.
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1

# What the reference application writes (``datetime('now')``) plus our optional
# millisecond suffix. Both sort as text in time order, which its purge relies on.
_CREATED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?")


class RetrievalFailureType(StrEnum):
    """Why a recall failed. The values are what the ``failure_type`` column stores."""

    #: Nothing was found.
    NO_HIT = "no_hit"
    #: Results were found, but the best one scored under the confidence threshold.
    LOW_CONFIDENCE = "low_confidence"
    #: The recall took too long and was given up.
    TIMEOUT = "timeout"
    #: The retrieval backend raised an error.
    ERROR = "error"


#: The failure types as the strings a type checker can check: a typo such as
#: ``"nohit"`` is a type error, not only a ValueError at run time.
FailureTypeName = Literal["no_hit", "low_confidence", "timeout", "error"]

_FAILURE_TYPES: Final = {member.value: member for member in RetrievalFailureType}


def _repair_text(value: str) -> str:
    """Return ``value`` as an exact ``str`` that can always be encoded as UTF-8.

    Python strings may hold surrogate code points (from ``surrogateescape`` decoding
    or careless slicing of UTF-16 data) that no UTF-8 encoder accepts. A pair of
    surrogates is joined into the character it stands for; a lone one becomes
    U+FFFD. One odd string must never cost a whole batch at write time.
    """
    if type(value) is not str:
        # A str subclass may carry behaviour (a custom __str__, __eq__...) that the
        # database does not; store the plain text it holds.
        value = str.__str__(value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _text(field: str, value: object) -> str:
    if isinstance(value, str):
        return _repair_text(value)
    raise TypeError(f"{field} must be a str, not {type(value).__name__}")


def _integer(field: str, value: object, *, minimum: int = _INT64_MIN) -> int:
    # bool is an int subclass, but True as a count is always a bug.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{field} must be an int, not {type(value).__name__}")
    if type(value) is not int:
        value = int.__int__(value)  # a plain int, whatever the subclass overrides
    if value < minimum:
        if minimum == 0:
            raise ValueError(f"{field} must not be negative, got {value}")
        raise ValueError(f"{field} must be at least {minimum}, got {value}")
    if value > _INT64_MAX:
        raise ValueError(f"{field} must fit in a signed 64-bit integer, got {value}")
    return value


def _optional_score(field: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{field} must be a float or None, not {type(value).__name__}")
    try:
        score = float(value) if type(value) is not float else value
    except OverflowError:
        raise ValueError(f"{field} must be finite, got an integer too large for a float") from None
    if not math.isfinite(score):
        raise ValueError(f"{field} must be finite, got {score!r}")
    return score


def _latency(value: object) -> int:
    """``latency_ms``: an int, or a float (what ``(trio.current_time() - t0) * 1000`` gives),
    rounded to the nearest millisecond, halves to even."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"latency_ms must be finite, got {value!r}")
        if value < 0:
            raise ValueError(f"latency_ms must not be negative, got {value!r}")
        rounded = round(float(value))
        if rounded > _INT64_MAX:
            raise ValueError(f"latency_ms must fit in a signed 64-bit integer, got {value!r}")
        return rounded
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"latency_ms must be an int or float, not {type(value).__name__}")
    return _integer("latency_ms", value, minimum=0)


def _failure_type(value: object) -> RetrievalFailureType:
    if type(value) is str:
        member = _FAILURE_TYPES.get(value)
        if member is not None:
            return member
    if isinstance(value, RetrievalFailureType):
        return value
    if isinstance(value, str):
        member = _FAILURE_TYPES.get(str.__str__(value))
        if member is not None:
            return member
        allowed = ", ".join(repr(name) for name in _FAILURE_TYPES)
        raise ValueError(f"failure_type must be one of {allowed}, got {value!r}")
    raise TypeError(
        f"failure_type must be a RetrievalFailureType or str, not {type(value).__name__}"
    )


def _edge_types(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if type(value) is str:
        # A str is an Iterable[str] to a type checker, so it is taken, as one
        # edge type (not one per character).
        return (_repair_text(value),)
    if (
        type(value) is tuple
        and all(type(item) is str for item in value)
        and "".join(value).isascii()
    ):
        return value  # the common case, already as stored
    if isinstance(value, str):
        return (_repair_text(value),)
    if isinstance(value, bytes | bytearray) or not isinstance(value, Iterable):
        raise TypeError(
            f"edge_types must be a str, an iterable of str, or None, not {type(value).__name__}"
        )
    return tuple(_text("edge_types[]", item) for item in value)


def _created_at(value: object) -> str | None:
    """``created_at`` as stored: UTC text ``YYYY-MM-DD HH:MM:SS[.fff]``.

    Text already in that form is kept as it is. A :class:`~datetime.datetime`
    and other ISO 8601 text (``2024-05-01T12:00:00``, ``...+02:00``, ``...Z``,
    ``2024-05-01``) are converted: an aware time to UTC; a naive one is taken
    as UTC already, as the stored text and the readers' bounds are.
    """
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return _utc_text(value)
    if isinstance(value, datetime.date):
        raise TypeError("created_at must be a datetime or str, not a date (which time of day?)")
    text = _text("created_at", value)
    if _CREATED_AT.fullmatch(text):
        try:
            datetime.datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S")  # a real date and time
        except ValueError:
            pass
        else:
            return text
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            "created_at must be a UTC time as 'YYYY-MM-DD HH:MM:SS[.fff]', ISO 8601 text "
            f"(2024-05-01T12:00:00+02:00) or a datetime, got {text!r}"
        ) from None
    return _utc_text(moment)


def _utc_text(moment: datetime.datetime) -> str:
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        try:
            moment = moment.astimezone(datetime.UTC)
        except OverflowError:
            raise ValueError(
                f"created_at must fall in the years 0001 to 9999 in UTC, got {moment.isoformat()}"
            ) from None
    return format_created_at(moment)


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class _Draft:
    """A record's storage, writable: :class:`RetrievalFailureRecord` fills one
    with plain (fast) slot stores, then makes it a record, which is frozen."""

    __slots__ = (
        "confidence_threshold",
        "conversation_id",
        "created_at",
        "edge_types",
        "error_context",
        "failure_type",
        "id",
        "latency_ms",
        "query_len",
        "query_text",
        "result_count",
        "retrieval_strategy",
        "top_score",
        "turn_index",
    )

    failure_type: RetrievalFailureType
    retrieval_strategy: str
    query_text: str
    conversation_id: int | None
    turn_index: int
    query_len: int
    top_score: float | None
    confidence_threshold: float | None
    result_count: int
    latency_ms: int
    edge_types: tuple[str, ...] | None
    error_context: str | None
    id: int | None
    created_at: str | None


@final
@dataclass(frozen=True, init=False)
class RetrievalFailureRecord(_Draft):
    """One failed recall, as one row of ``memory_retrieval_failures``.

    Fields are named as the table's columns. ``failure_type``,
    ``retrieval_strategy`` and ``query_text`` may be given by position; the rest
    are keyword-only.

    Construction validates every field and raises :exc:`TypeError` or
    :exc:`ValueError` naming the field for a wrong type (a ``bool`` is not an
    ``int``), an unknown failure type (the match is exact and case-sensitive),
    a negative count, length, index or latency, an integer outside SQLite's
    signed 64-bit range, or a NaN or infinite score or latency. Values are
    normalised: ``str``/``int``/``float`` subclasses become the plain type,
    ``int`` scores become ``float``, a ``float`` ``latency_ms`` (what
    ``(trio.current_time() - t0) * 1000`` gives) is rounded to the nearest
    millisecond (halves to even), any iterable of ``str`` for ``edge_types``
    becomes a tuple and a single ``str`` is one edge type, and text that UTF-8
    cannot encode (lone surrogates) is repaired with U+FFFD. The parameters'
    types say the same: what a type checker accepts, construction accepts.

    A record holds what will be stored, so that memory per queued record is
    bounded: ``query_text`` is cut to :data:`QUERY_TEXT_MAX_CHARS` (512)
    characters and ``error_context`` to :data:`ERROR_CONTEXT_MAX_CHARS` (256),
    counted in characters (code points), not bytes. ``query_len`` left as
    ``None`` becomes the UTF-8 byte length of the *original* ``query_text``, so
    after construction it is always an ``int`` and still tells how long the
    query was. Give it explicitly when ``query_text`` is already a cut-down copy
    of a longer query.

    ``id`` and ``created_at`` are filled in on records read back from a
    database. When logging, ``id`` is ignored (the database assigns it) and a
    ``created_at`` left as ``None`` is stamped with the time of the ``log()``
    call; an explicit one is kept, which lets you import historical failures.
    It may be text in the stored form (UTC, ``YYYY-MM-DD HH:MM:SS[.fff]``,
    kept as it is), other ISO 8601 text (``2024-05-01T12:00:00``,
    ``2024-05-01T14:00:00+02:00``, ``...Z``), or a :class:`~datetime.datetime`;
    these are stored as UTC in the stored form. An aware time is converted to
    UTC; a naive one (text without an offset, or a naive ``datetime``) is
    taken as UTC already, as the stored text and the readers' time bounds are:
    pass ``datetime.now(UTC)``, not the local ``datetime.now()``.

    Construction never blocks and has no side effects.
    """

    # The fields live in _Draft's slots; no defaults here, which would shadow them.
    __slots__ = ()

    failure_type: RetrievalFailureType
    retrieval_strategy: str
    query_text: str
    conversation_id: int | None
    turn_index: int
    query_len: int
    top_score: float | None
    confidence_threshold: float | None
    result_count: int
    latency_ms: int
    edge_types: tuple[str, ...] | None
    error_context: str | None
    id: int | None
    created_at: str | None

    # Construction is on the recall path, so it is written by hand: a fast path
    # for the common plain values, each slot stored once into a writable draft
    # that then becomes the frozen record (one __class__ switch). Setting the
    # frozen class's slots one by one through their descriptors costs about
    # 0.5 us more per record (measured).
    def __new__(
        cls,
        failure_type: RetrievalFailureType | FailureTypeName,
        retrieval_strategy: str,
        query_text: str,
        *,
        conversation_id: int | None = None,
        turn_index: int = 0,
        query_len: int | None = None,
        top_score: float | None = None,
        confidence_threshold: float | None = None,
        result_count: int = 0,
        latency_ms: float = 0,
        edge_types: Iterable[str] | None = None,
        error_context: str | None = None,
        id: int | None = None,
        created_at: str | datetime.datetime | None = None,
    ) -> RetrievalFailureRecord:
        draft = _new_draft(_Draft)
        if type(failure_type) is not RetrievalFailureType:
            member = _FAILURE_TYPES.get(failure_type) if type(failure_type) is str else None
            failure_type = member if member is not None else _failure_type(failure_type)
        draft.failure_type = failure_type
        draft.retrieval_strategy = (
            retrieval_strategy
            if type(retrieval_strategy) is str and retrieval_strategy.isascii()
            else _text("retrieval_strategy", retrieval_strategy)
        )
        if type(query_text) is str and query_text.isascii():
            if query_len is None:
                query_len = len(query_text)  # ASCII: one byte a character
        else:
            query_text = _text("query_text", query_text)
        if query_len is None:
            query_len = _utf8_length(query_text)  # of the whole query, before the cut
        elif type(query_len) is not int or not 0 <= query_len <= _INT64_MAX:
            query_len = _integer("query_len", query_len, minimum=0)
        draft.query_len = query_len
        draft.query_text = (
            query_text
            if len(query_text) <= QUERY_TEXT_MAX_CHARS
            else query_text[:QUERY_TEXT_MAX_CHARS]
        )
        draft.conversation_id = (
            conversation_id
            if conversation_id is None
            or (type(conversation_id) is int and _INT64_MIN <= conversation_id <= _INT64_MAX)
            else _integer("conversation_id", conversation_id)
        )
        draft.turn_index = (
            turn_index
            if type(turn_index) is int and 0 <= turn_index <= _INT64_MAX
            else _integer("turn_index", turn_index, minimum=0)
        )
        draft.top_score = (
            top_score
            if top_score is None or (type(top_score) is float and math.isfinite(top_score))
            else _optional_score("top_score", top_score)
        )
        draft.confidence_threshold = (
            confidence_threshold
            if confidence_threshold is None
            or (type(confidence_threshold) is float and math.isfinite(confidence_threshold))
            else _optional_score("confidence_threshold", confidence_threshold)
        )
        draft.result_count = (
            result_count
            if type(result_count) is int and 0 <= result_count <= _INT64_MAX
            else _integer("result_count", result_count, minimum=0)
        )
        draft.latency_ms = (
            latency_ms
            if type(latency_ms) is int and 0 <= latency_ms <= _INT64_MAX
            else _latency(latency_ms)
        )
        draft.edge_types = None if edge_types is None else _edge_types(edge_types)
        if error_context is not None:
            if type(error_context) is not str or not error_context.isascii():
                error_context = _text("error_context", error_context)
            if len(error_context) > ERROR_CONTEXT_MAX_CHARS:
                error_context = error_context[:ERROR_CONTEXT_MAX_CHARS]
        draft.error_context = error_context
        draft.id = None if id is None else _integer("id", id)
        draft.created_at = None if created_at is None else _created_at(created_at)
        draft.__class__ = RetrievalFailureRecord
        return draft  # type: ignore[return-value]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        raise TypeError("RetrievalFailureRecord cannot be subclassed")

    def __reduce__(self) -> tuple[Any, ...]:
        # The default would rebuild through __new__ without arguments.
        return (_restore, (tuple(getattr(self, name) for name in _FIELD_NAMES),))

    @classmethod
    def _from_trusted(cls, **values: Any) -> RetrievalFailureRecord:
        """Build a record from values that need no validation (rows we read back).

        Used by readers so that a row written by another application with looser
        rules can still be returned as it is stored.
        """
        draft = _new_draft(_Draft)
        values = {**_DEFAULTS, **values}
        for name in _FIELD_NAMES:
            setattr(draft, name, values[name])
        draft.__class__ = RetrievalFailureRecord
        return draft  # type: ignore[return-value]


_new_draft = object.__new__
_FIELD_NAMES: Final = tuple(field.name for field in dataclasses.fields(RetrievalFailureRecord))
_DEFAULTS: Final[dict[str, Any]] = {
    "conversation_id": None,
    "turn_index": 0,
    "query_len": 0,
    "top_score": None,
    "confidence_threshold": None,
    "result_count": 0,
    "latency_ms": 0,
    "edge_types": None,
    "error_context": None,
    "id": None,
    "created_at": None,
}


def _restore(values: tuple[Any, ...]) -> RetrievalFailureRecord:
    return RetrievalFailureRecord._from_trusted(**dict(zip(_FIELD_NAMES, values, strict=True)))
