"""The readers' portable SQL: argument filters, the row ``SELECT`` and rows back to records.

Pure computation; the SQL written here runs on either backend through a
``ReadConnection`` (``?`` placeholders), and what differs between databases
is asked of its ``Dialect`` (``_protocols.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast

from ._record import FailureTypeName, RetrievalFailureRecord, RetrievalFailureType
from ._table import FIELDS, TABLE
from ._timetext import TimeBound, created_at_text

__all__ = [
    "FAILURE_TYPE_NAMES",
    "SELECT",
    "SQL_INT_MAX",
    "Choice",
    "FailureTypeChoice",
    "Filters",
    "check_count",
    "edge_types_tuple",
    "failure_type_name",
    "normalise_query",
    "row_to_record",
    "sql_limit",
    "where_clause",
]

#: What a filter on strategy accepts: one value or several.
Choice = str | Iterable[str]

#: What a filter on failure type accepts: one of the four or several, as the
#: enum or its text (a type checker flags a typo; at run time any ``str`` is
#: checked and a wrong one raises :exc:`ValueError`).
FailureTypeChoice = (
    RetrievalFailureType | FailureTypeName | Iterable[RetrievalFailureType | FailureTypeName]
)

SELECT: Final = f"SELECT {', '.join(FIELDS)} FROM {TABLE}"
_FAILURE_TYPES: Final = {member.value: member for member in RetrievalFailureType}


# --------------------------------------------------------------------------- filters


#: The largest value SQLite binds as an integer; larger limits mean "no limit".
SQL_INT_MAX: Final = 2**63 - 1
FAILURE_TYPE_NAMES: Final = tuple(_FAILURE_TYPES)


def failure_type_name(value: str, name: str = "failure_type") -> FailureTypeName:
    """``value`` if it is one of the four failure types (exact, case-sensitive),
    else :exc:`ValueError` naming ``name`` and the valid types."""
    if value not in _FAILURE_TYPES:
        hint = ""
        folded = value.strip().casefold().replace("-", "_")
        if folded in _FAILURE_TYPES:
            hint = f" (did you mean {folded!r}?)"
        elif folded.replace("_", "") in {t.replace("_", "") for t in _FAILURE_TYPES}:
            hint = f" (did you mean {_by_letters(folded)!r}?)"
        raise ValueError(
            f"{name}: unknown failure type {value!r}{hint}; "
            f"the failure types are {', '.join(FAILURE_TYPE_NAMES)}"
        )
    return cast(FailureTypeName, str(_FAILURE_TYPES[value].value))


def _by_letters(folded: str) -> str:
    letters = folded.replace("_", "")
    return next(t for t in _FAILURE_TYPES if t.replace("_", "") == letters)


def _choices(name: str, value: Choice | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a str or an iterable of str, not {type(value).__name__}")
    else:
        items = tuple(value)
    if not items:
        # IN () would match nothing, silently: almost certainly not what was meant.
        raise ValueError(f"{name} must name at least one value (None: no filter)")
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{name} must hold str values, not {type(item).__name__}")
    texts = tuple(str(item) for item in items)  # plain str, also for StrEnum members
    if name == "failure_type":
        texts = tuple(failure_type_name(text) for text in texts)
    return tuple(dict.fromkeys(texts))


def check_count(name: str, value: object, *, minimum: int = 0, optional: bool = False) -> None:
    """Raise TypeError/ValueError naming ``name`` unless ``value`` is an int >= ``minimum``
    (or None when ``optional``). Any size is fine: see :func:`sql_limit`."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an int or None" if optional else "an int"
        raise TypeError(f"{name} must be {kind}, not {type(value).__name__}")
    if value < minimum:
        bound = "negative" if minimum == 0 else f"less than {minimum}"
        raise ValueError(f"{name} must not be {bound}, got {value}")


def sql_limit(value: int) -> int:
    """A count as a LIMIT parameter: beyond what SQLite can bind means "all of them"."""
    return min(value, SQL_INT_MAX)


@dataclass(frozen=True, slots=True)
class Filters:
    """Which rows a read looks at; every value reaches SQL as a bound parameter."""

    since: str | None = None
    until: str | None = None
    failure_types: tuple[str, ...] | None = None
    strategies: tuple[str, ...] | None = None
    conversation_id: int | None = None

    @classmethod
    def build(
        cls,
        *,
        since: TimeBound | None = None,
        until: TimeBound | None = None,
        failure_type: Choice | None = None,
        strategy: Choice | None = None,
        conversation_id: int | None = None,
    ) -> Filters:
        """Validate and normalise the public filter arguments.

        Raises :exc:`TypeError`/:exc:`ValueError` naming the argument: a bound
        that is no time, a failure type that is not one of the four, an empty
        list of choices, a conversation id that is no 64-bit int.
        """
        now = datetime.now(UTC)
        if conversation_id is not None:
            check_count("conversation_id", conversation_id, minimum=-(2**63))
            if conversation_id > SQL_INT_MAX:
                raise ValueError(
                    f"conversation_id must fit in 64 bits (SQLite's INTEGER), got {conversation_id}"
                )
        return cls(
            since=None if since is None else created_at_text(since, now=now, name="since"),
            until=None if until is None else created_at_text(until, now=now, name="until"),
            failure_types=_choices("failure_type", failure_type),
            strategies=_choices("strategy", strategy),
            conversation_id=conversation_id,
        )

    @property
    def narrowed(self) -> bool:
        """Whether any filter is set (a time bound included)."""
        return any(
            value is not None
            for value in (
                self.since,
                self.until,
                self.failure_types,
                self.strategies,
                self.conversation_id,
            )
        )

    def where(self, *, index_on_time: bool = False) -> tuple[list[str], list[object]]:
        """SQL conditions (to be joined with AND) and their parameters.

        With ``index_on_time``, the conditions on the other indexed columns are
        written as ``+column`` so that SQLite walks the ``created_at`` index: a
        paged read in time order then costs one pass over the table in total,
        instead of a sort of every matching row for each page.
        """
        plus = "+" if index_on_time else ""
        conditions: list[str] = []
        params: list[object] = []
        if self.since is not None:
            conditions.append("created_at >= ?")
            params.append(self.since)
        if self.until is not None:
            conditions.append("created_at < ?")
            params.append(self.until)
        for column, values in (
            ("failure_type", self.failure_types),
            ("retrieval_strategy", self.strategies),
        ):
            if values is not None:
                conditions.append(f"{plus}{column} IN ({', '.join('?' for _ in values)})")
                params.extend(values)
        if self.conversation_id is not None:
            conditions.append(f"{plus}conversation_id = ?")
            params.append(self.conversation_id)
        return conditions, params


def where_clause(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


# --------------------------------------------------------------------------- rows


def edge_types_tuple(raw: object) -> tuple[str, ...] | None:
    """The stored JSON array as a tuple; tolerant of what other applications wrote.

    ``NULL`` stays ``None``; a JSON array becomes a tuple of its items (non-text
    items as their JSON text); a JSON string becomes a 1-tuple; anything else,
    invalid JSON included, becomes a 1-tuple holding the stored text unchanged.
    """
    if raw is None:
        return None
    text = raw if isinstance(raw, str) else str(raw)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return (text,)
    if isinstance(value, list):
        return tuple(
            item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)
            for item in value
        )
    if isinstance(value, str):
        return (value,)
    return (text,)


def row_to_record(row: tuple[Any, ...]) -> RetrievalFailureRecord:
    """Build a record from a row of :data:`SELECT`, trusting the values as stored."""
    values = dict(zip(FIELDS, row, strict=True))
    failure_type = values["failure_type"]
    values["failure_type"] = _FAILURE_TYPES.get(failure_type, failure_type)
    values["edge_types"] = edge_types_tuple(values["edge_types"])
    return RetrievalFailureRecord._from_trusted(**values)


def normalise_query(text: object) -> str | None:
    """The key under which failing queries are counted as repeats: case and spaces folded."""
    if not isinstance(text, str):
        return None
    return " ".join(text.casefold().split())
