"""Any text a record can hold goes through COPY's text format and reads back the same."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import RetrievalFailureRecord
from trio_failurelog._postgres import PostgresStore
from trio_failurelog._table import TABLE

# COPY's own delimiters and escapes, and the characters around them, often.
_TRICKY = st.sampled_from(["\t", "\n", "\r", "\\", "\\.", "\\N", "\x00", "\u2028", "é", "\x7f"])
texts = st.lists(st.one_of(st.text(max_size=8), _TRICKY), max_size=6).map("".join)


def _stored(text: str) -> str:
    """What PostgreSQL keeps of ``text``: everything, but U+0000 (it cannot)."""
    return text.replace("\x00", "\ufffd")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(
            texts.filter(bool),
            texts,
            st.none() | texts,
            st.none() | st.lists(texts, max_size=3).map(tuple),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_text_round_trips_through_copy(
    store: PostgresStore, admin: Any, rows: list[tuple[str, str, str | None, Any]]
) -> None:
    admin.execute(f"TRUNCATE {TABLE}")
    records = [
        RetrievalFailureRecord("error", strategy, query, error_context=context, edge_types=edges)
        for strategy, query, context, edges in rows
    ]
    now = time.time()
    outcome = store.write_batch([(record, now) for record in records])
    assert (outcome.written, outcome.rejected) == (len(records), [])
    found = admin.execute(
        f"SELECT retrieval_strategy, query_text, error_context, edge_types FROM {TABLE} ORDER BY id"
    ).fetchall()
    expected = [
        (
            _stored(record.retrieval_strategy),
            _stored(record.query_text),
            None if record.error_context is None else _stored(record.error_context),
            None if record.edge_types is None else list(record.edge_types),
        )
        for record in records
    ]
    assert [(s, q, c, None if e is None else json.loads(e)) for s, q, c, e in found] == expected
