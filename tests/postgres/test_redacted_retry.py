"""A redacted batch retried after an unanswered COMMIT is settled, not written twice."""

from __future__ import annotations

from typing import Any

import pytest

from trio_failurelog._postgres import PostgresStore, PostgresStoreError
from trio_failurelog._writer import _Outgoing

from .test_faults import batch, count_rows, proxied_store, proxy  # noqa: F401  # fixtures

pytestmark = pytest.mark.postgres


def test_a_redacted_batch_is_not_written_twice_when_its_commit_went_unanswered(
    proxied_store: PostgresStore,  # noqa: F811
    proxy: Any,  # noqa: F811
    admin: Any,
) -> None:
    outgoing = _Outgoing(batch(50))  # what the writer hands the store, attempt after attempt

    def redact(text: str) -> str:
        return text.upper()

    proxy.cut = "after_commit"
    proxy.refuse = True
    with pytest.raises(PostgresStoreError) as caught:
        outgoing.write(proxied_store, redact)  # the first attempt: COMMIT unanswered
    assert proxied_store.is_transient(caught.value)  # so the writer retries
    assert count_rows(admin) == (50, 50)  # it did commit
    proxy.refuse = False
    outcome = outgoing.write(proxied_store, redact)  # the writer's retry
    assert outcome.written == 50
    assert count_rows(admin) == (50, 50)  # settled as written, not written again
