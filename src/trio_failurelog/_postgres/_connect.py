"""Connecting to PostgreSQL, with errors that give the server's reason but never the password.

Needs the ``postgres`` extra (psycopg 3). Both the store and the read
connection open their connections here; everything blocks.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

import psycopg
import psycopg.conninfo

from .._conninfo import check_url, scrub
from .._database import StoreOptions
from .._errors import DatabaseSetupError

__all__ = [
    "FATAL_CONNECT_STATES",
    "ConnectError",
    "Connection",
    "connect",
    "connect_for_setup",
    "one_line",
    "setup_error",
    "sqlstate",
]

Connection = psycopg.Connection[tuple[Any, ...]]

# Refusals at connection time that no retry fixes: credentials, a missing database.
FATAL_CONNECT_STATES: Final = frozenset({"28000", "28P01", "3D000", "42501"})

KEEPALIVES: Final = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}

_WHITESPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """``text`` with every run of white space (a server message's newlines) as one space."""
    return _WHITESPACE.sub(" ", text).strip()


def sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a psycopg error, ``None`` for another error."""
    return getattr(error, "sqlstate", None)


class ConnectError(DatabaseSetupError):
    """Connecting failed; ``sqlstate`` and ``refused`` tell a retry from a lost cause."""

    def __init__(self, message: str, sqlstate: str | None, *, refused: bool) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.refused = refused


def setup_error(what: str, exc: BaseException, secrets: tuple[str, ...]) -> ConnectError:
    """A :exc:`DatabaseSetupError` for ``exc``, scrubbed of ``secrets``, with ``exc``
    as its ``__cause__`` only when that holds no secret either."""
    detail = scrub(one_line(str(exc)), secrets)
    refused = sqlstate(exc) in ("28P01", "28000") or "authentication failed" in detail
    if refused:
        detail = f"the server refused the user name or password ({detail})"
    error = ConnectError(f"{what}: {detail}", sqlstate(exc), refused=refused)
    if not any(secret in str(exc) or secret in repr(exc) for secret in secrets):
        error.__cause__ = exc
    return error


def connect_for_setup(
    url: str, name: str, secrets: tuple[str, ...], options: StoreOptions
) -> Connection:
    """:func:`connect` for opening a store or reader: its failure is raised as the
    public :exc:`DatabaseSetupError`, whose name tracebacks and ``repr()`` show
    (:class:`ConnectError` is for the store's own reconnects)."""
    try:
        return connect(url, name, secrets, options)
    except ConnectError as exc:
        raise DatabaseSetupError(str(exc)) from exc.__cause__


def connect(url: str, name: str, secrets: tuple[str, ...], options: StoreOptions) -> Connection:
    """Connect in autocommit mode within ``options.connect_timeout``.

    Raises :exc:`DatabaseSetupError` with the server's reason, scrubbed.
    """
    what = f"cannot connect to PostgreSQL database {name}"
    check_url(url)  # before libpq quotes the tail of a password as a host name
    try:
        params = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        error = setup_error(f"{what} (malformed URL)", exc, secrets)
        raise error from error.__cause__
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params:
        # libpq counts whole seconds, and treats less than 2 as 2.
        extra["connect_timeout"] = max(2, math.ceil(options.connect_timeout))
    if "application_name" not in params:
        extra["application_name"] = "trio-failurelog"
    # Both COPY forms send UTF-8 (the text form encodes it by hand); the
    # server converts to the database's encoding, and refuses a character
    # that encoding cannot hold (that row only). Whatever the URL says.
    extra["client_encoding"] = "UTF8"
    # A server that vanished without closing the connection (a network
    # partition, a crashed host) is noticed in about 25 s rather than hours:
    # the call then fails as a lost connection, which the writer retries.
    for key, value in KEEPALIVES.items():
        if key not in params:
            extra[key] = value
    try:
        conn: Connection = psycopg.connect(url, autocommit=True, **extra)
    except psycopg.Error as exc:
        error = setup_error(what, exc, secrets)
        raise error from error.__cause__
    return conn
