"""The retention purge and its advisory lock; the missing extra; URL secrets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from typing import Any

import pytest
import trio

from trio_failurelog import RetrievalFailureRecord, open_failure_logger
from trio_failurelog._backends import open_store
from trio_failurelog._conninfo import redact_url, scrub, url_secrets
from trio_failurelog._database import StoreOptions
from trio_failurelog._postgres._schema import ADVISORY_CLASS, PURGE_LOCK
from trio_failurelog._table import TABLE

from ._server import PASSWORD


def insert_rows(admin: Any, count: int, age_days: float, tag: str) -> None:
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
        " SELECT 'no_hit', 'theirs', %s || i, now() - make_interval(secs => %s)"
        " FROM generate_series(1, %s) AS i",
        (tag, age_days * 86400, count),
    )


def count(admin: Any, tag: str) -> int:
    (found,) = admin.execute(
        f"SELECT count(*) FROM {TABLE} WHERE query_text LIKE %s", (tag + "%",)
    ).fetchone()
    return int(found)


def test_purge_in_chunks(pg_url: str, admin: Any) -> None:
    store = open_store(pg_url, StoreOptions())
    try:
        insert_rows(admin, 2500, 100, "old")
        insert_rows(admin, 10, 1, "new")
        cutoff = time.time() - 90 * 86400
        assert [store.purge_chunk(cutoff, 1000) for _ in range(4)] == [1000, 1000, 500, 0]
        assert (count(admin, "old"), count(admin, "new")) == (0, 10)
    finally:
        store.close()


def test_only_one_process_purges_at_a_time(pg_url: str, admin: Any) -> None:
    store = open_store(pg_url, StoreOptions())
    try:
        insert_rows(admin, 30, 100, "old")
        cutoff = time.time() - 90 * 86400
        # Another process of the fleet is purging: it holds the purge lock.
        admin.execute("SELECT pg_advisory_lock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK))
        assert store.purge_chunk(cutoff, 1000) == 0  # skips this round, at once
        assert count(admin, "old") == 30
        admin.execute("SELECT pg_advisory_unlock(%s, %s)", (ADVISORY_CLASS, PURGE_LOCK))
        assert store.purge_chunk(cutoff, 1000) == 30
    finally:
        store.close()


async def test_the_logger_purges_on_start(pg_url: str, admin: Any) -> None:
    open_store(pg_url, StoreOptions()).close()
    insert_rows(admin, 1500, 100, "old")
    insert_rows(admin, 5, 10, "recent")
    with trio.fail_after(30):
        async with open_failure_logger(pg_url, retention_days=90) as failures:
            failures.log(RetrievalFailureRecord("no_hit", "s", "new"))
            await failures.flush()  # closing would end the purge after its chunk
        stats = failures.statistics()
    assert stats.purged == 1500
    assert (count(admin, "old"), count(admin, "recent"), count(admin, "new")) == (0, 5, 1)


# ---------------------------------------------------------------- the missing extra

_BLOCK = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {blocked!r} or name.startswith({blocked!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Block())
"""

_OPEN = """
import trio
from trio_failurelog import DatabaseSetupError, open_failure_logger

async def main():
    async with open_failure_logger({url!r}):
        pass

try:
    trio.run(main)
except DatabaseSetupError as exc:
    print("SETUP:", exc)
except ImportError as exc:
    print("IMPORT:", exc)
"""


def _run_blocked(blocked: str, url: str) -> str:
    code = textwrap.dedent(_BLOCK.format(blocked=blocked)) + textwrap.dedent(_OPEN.format(url=url))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("blocked", ["psycopg", "psycopg_binary"])
def test_missing_driver_names_the_extra(blocked: str) -> None:
    # Without psycopg_binary (and no libpq on the system) psycopg itself cannot
    # load; with libpq installed it may, so only psycopg is certain to fail.
    out = _run_blocked(blocked, f"postgresql://u:{PASSWORD}@127.0.0.1:1/x")
    if blocked == "psycopg":
        assert out.startswith("SETUP:"), out
    if out.startswith("SETUP:") and "extra" in out:
        assert "(psycopg 3): pip install 'psycopg[binary]>=" in out
    assert PASSWORD not in out


def test_an_import_error_of_ours_is_not_called_a_missing_extra() -> None:
    out = _run_blocked("trio_failurelog._postgres._schema", "postgresql://u@127.0.0.1:1/x")
    assert out.startswith("IMPORT:"), out
    assert "_postgres._schema" in out


# ---------------------------------------------------------------- URL secrets


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("postgresql://u:s3cret@h/db", {"s3cret"}),
        ("postgres://u:p%40ss%3Aw@h:5432/db", {"p%40ss%3Aw", "p@ss:w"}),
        ("postgresql://u@h/db?password=qs-secret&sslmode=disable", {"qs-secret"}),
        ("postgresql://u@h/db?sslpassword=key%20pw", {"key pw", "key%20pw"}),
        ("postgresql://u@h/db", set()),
    ],
)
def test_url_secrets_and_redaction(url: str, secrets: set[str]) -> None:
    assert set(url_secrets(url)) == secrets
    redacted = redact_url(url)
    text = f"failed: {url} / {redacted}"
    scrubbed = scrub(text, url_secrets(url))
    for secret in secrets:
        assert secret not in redacted
        assert secret not in scrubbed
