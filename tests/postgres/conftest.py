"""Fixtures for the PostgreSQL tests: one real server per session, a database per test.

The server is started by the suite itself (see ``_server.py``). Where none can
be started (PostgreSQL or psycopg missing) the tests skip with the reason,
except under CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ._server import ROLE, PgServer, ServerUnavailable

if TYPE_CHECKING:  # psycopg is imported only once a server is known to be there
    from trio_failurelog._postgres import PostgresStore

HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.postgres)


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true, and the PostgreSQL tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A running PostgreSQL server, for the whole session."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        _unavailable(f"psycopg is not installed (pip install '.[postgres]'): {exc}")
    try:
        server = PgServer.start_new()
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        raise  # not reached
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_db(pg_server: PgServer) -> str:
    """The name of a fresh, empty database owned by the test role."""
    return pg_server.new_database()


@pytest.fixture
def pg_url(pg_server: PgServer, pg_db: str) -> str:
    """A TCP URL, with the test role's password, for the test's database."""
    return pg_server.url(pg_db)


@pytest.fixture
def admin(pg_server: PgServer, pg_db: str) -> Iterator[Any]:
    """A psycopg connection to the test's database (autocommit) as the test role,
    like the reference application sharing the database: what it creates, the
    logger's role owns too."""
    conn = pg_server.admin_connect(pg_db)
    conn.execute(f"SET ROLE {ROLE}")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def store(pg_url: str) -> Iterator[PostgresStore]:
    """A :class:`PostgresStore` open on the test's database, closed after."""
    from trio_failurelog._database import StoreOptions
    from trio_failurelog._postgres import PostgresStore

    opened = PostgresStore.open(pg_url, StoreOptions())
    try:
        yield opened
    finally:
        opened.close()
