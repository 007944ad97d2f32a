"""PostgreSQL URLs in messages: the password is hidden however libpq would read it."""

from __future__ import annotations

from pathlib import Path

import psycopg.conninfo
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_failurelog._conninfo import redact_url, scrub, url_secrets
from trio_failurelog._database import (
    database_label,
    describe_database,
    is_postgres_url,
    store_kind,
)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:se#cret@127.0.0.1:1/db",
        "postgresql://u:se?cret@127.0.0.1:1/db",
        "postgresql://u:s#e?c&r=e%25t@h/db?sslmode=disable",
        "postgres://u:pa:ss@h/db",
    ],
)
def test_a_password_libpq_reads_verbatim_is_hidden(url: str) -> None:
    password = psycopg.conninfo.conninfo_to_dict(url)["password"]
    assert isinstance(password, str)
    assert password in url_secrets(url)
    assert password not in redact_url(url)
    assert password not in describe_database(url)
    assert password not in database_label(url)
    assert password not in scrub(f"libpq said: {url}", url_secrets(url))


def test_a_malformed_userinfo_is_hidden_all_the_same() -> None:
    url = "postgresql://u:pass/word@h/db"  # libpq would refuse it; its text is still a secret
    assert "pass/word" not in redact_url(url)
    assert "pass/word" in url_secrets(url)


def test_the_scheme_is_matched_in_any_case() -> None:
    url = "POSTGRESQL://u:s3cret@h/db"
    assert is_postgres_url(url)
    assert store_kind(url) == "postgresql"
    assert "s3cret" not in describe_database(url)


@given(
    database=st.one_of(
        st.text(max_size=30).filter(lambda text: not is_postgres_url(text)),
        st.builds(lambda text: f"postgresql://u:{text}x@h/db", st.text(max_size=10)),
    )
)
def test_the_label_is_the_message_name_unquoted(database: str) -> None:
    # Messages quote the label (repr); an OpenTelemetry attribute takes it as it is.
    assert describe_database(database) == repr(database_label(database))
    if not is_postgres_url(database):
        assert database_label(database) == database
    assert database_label(Path("dir") / "f.db") == str(Path("dir") / "f.db")


_PASSWORD_CHARS = st.characters(
    codec="ascii", categories=("L", "N", "P", "S"), exclude_characters="@/"
)


@given(password=st.text(_PASSWORD_CHARS, min_size=4, max_size=20))
def test_any_password_in_any_place_is_hidden(password: str) -> None:
    for url, written in (
        (f"postgresql://user:{password}@host:5432/db", password),
        # In the query, "&" ends the value: only what libpq reads is the secret.
        (f"postgresql://user@host/db?password={password}", None),
    ):
        try:
            parsed = psycopg.conninfo.conninfo_to_dict(url).get("password")
        except (psycopg.ProgrammingError, UnicodeDecodeError):
            parsed = None  # libpq refuses the URL: what it holds is hidden all the same
        shown = redact_url(url)
        for secret in {written, parsed} - {None, ""}:
            assert isinstance(secret, str)
            if secret not in "postgresql://user:***@host:5432/db?password=***":
                assert secret not in shown, (url, shown)
