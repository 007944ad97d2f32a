"""PostgreSQL URLs in messages: the password is hidden however libpq would read it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import psycopg.conninfo
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_failurelog import (
    DatabaseSetupError,
    FailureReader,
    RetrievalFailureLogger,
    open_failure_logger,
)
from trio_failurelog._cli import main
from trio_failurelog._conninfo import check_url, redact_url, scrub, url_secrets
from trio_failurelog._database import (
    database_label,
    describe_database,
    is_postgres_url,
    postgres_url,
    store_kind,
    url_scheme,
)
from trio_failurelog._purge import purge_older_than


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
        # Neither a URL nor a password= (both shown without their passwords).
        st.text(max_size=30).filter(
            lambda text: url_scheme(text) is None and "password" not in text.lower()
        ),
        st.builds(lambda text: f"postgresql://u:{text}x@h/db", st.text(max_size=10)),
    )
)
def test_the_label_is_the_message_name_unquoted(database: str) -> None:
    # Messages quote the label (repr); an OpenTelemetry attribute takes it as it is.
    assert describe_database(database) == repr(database_label(database))
    if url_scheme(database) is None:
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


# ------------------------------------------------------------------ an unencoded "@"

_AT_PASSWORD = st.builds(
    lambda parts: "@".join(parts),
    st.lists(
        st.text(
            st.characters(codec="ascii", categories=("L", "N", "P", "S"), exclude_characters="@/"),
            min_size=1,
            max_size=8,
        ),
        min_size=2,
        max_size=4,
    ),
)


def _refusal(shown: str) -> str:
    return (
        f"database: {shown!r} has more than one '@' before its host: "
        "write an '@' in the user name or password as %40"
    )


@given(password=_AT_PASSWORD)
def test_a_password_with_an_unencoded_at_is_hidden_and_refused(password: str) -> None:
    url = f"postgresql://user:{password}@host:5432/db"
    # Hidden: nothing between the user name and the last "@" is shown.
    assert redact_url(url) == "postgresql://user:***@host:5432/db"
    assert describe_database(url) == "'postgresql://user:***@host:5432/db'"
    assert password in url_secrets(url)
    for piece in password.split("@"):
        assert piece in url_secrets(url)
    # Refused, in one line that says what to write instead.
    with pytest.raises(ValueError, match="%40") as caught:
        check_url(url)
    assert str(caught.value) == _refusal("postgresql://user:***@host:5432/db")
    # The encoded form is what libpq reads right, and is accepted.
    encoded = f"postgresql://user:{password.replace('%', '%25').replace('@', '%40')}@host/db"
    check_url(encoded)
    assert psycopg.conninfo.conninfo_to_dict(encoded)["host"] == "host"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@x@h/db",
        "postgresql://u@x:p@h/db",  # an "@" in the user name
        "postgresql://u:p@x@h",  # no path
        "postgres://u:p@x@h1,h2:5433/db?sslmode=disable",
    ],
)
def test_check_url_refuses_every_place_of_a_second_at(url: str) -> None:
    with pytest.raises(ValueError, match="%40"):
        check_url(url)
    assert "p@x" not in redact_url(url)
    assert "x:p" not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p%40x@h/db",
        "postgresql://h/db?user=a@b",  # an "@" after the path is no userinfo
        "postgresql://u@h/db",
        "postgresql:///db",
    ],
)
def test_check_url_accepts_urls_libpq_reads_as_written(url: str) -> None:
    check_url(url)


@settings(max_examples=15, deadline=None)
@given(password=_AT_PASSWORD)
def test_every_way_in_refuses_the_url_without_showing_the_password(password: str) -> None:
    """The logger (at construction and from open_failure_logger, unwrapped), the reader,
    purge and every command: one line, no piece of the password, nothing connected."""
    # Port 1 on this machine: were anything to connect, it would fail another way.
    url = f"postgresql://user:{password}@127.0.0.1:1/db"
    expected = _refusal("postgresql://user:***@127.0.0.1:1/db")

    def hidden(error: BaseException) -> None:
        # Whole-text equality: a search for each piece of the password found
        # one-letter pieces in the words around it (a piece "V" in "ValueError").
        assert str(error) == expected
        assert repr(error) == f"{type(error).__name__}({expected!r})"

    with pytest.raises(ValueError, match="%40") as caught:
        RetrievalFailureLogger(url)
    hidden(caught.value)

    async def open_it() -> None:
        async with open_failure_logger(url):
            pass  # pragma: no cover - refused before

    with pytest.raises(ValueError, match="%40") as caught:
        trio.run(open_it)
    hidden(caught.value)
    with pytest.raises(ValueError, match="%40") as caught:
        FailureReader(url)
    hidden(caught.value)
    with pytest.raises(ValueError, match="%40") as caught:
        purge_older_than(url, "2024-01-01")
    hidden(caught.value)
    for argv in (
        ["report", url],
        ["export", url],
        ["tail", url],
        ["purge", url, "--older-than", "30d"],
    ):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
        assert code == 2
        assert stdout.getvalue() == ""
        assert stderr.getvalue() == f"trio-failurelog: error: {argv[0]}: {expected} (see --help)\n"


def test_sqlalchemy_style_postgresql_urls_are_postgresql_urls() -> None:
    """``postgresql+psycopg://`` (SQLAlchemy's spelling, natural in Python
    settings) is taken: the driver suffix is dropped for libpq, the password
    hidden (tests/postgres/test_interface.py writes and reads through one)."""
    for url in ("postgresql+psycopg://u:s3cretpw@h/db", "POSTGRES+psycopg2://u:s3cretpw@h/db"):
        assert is_postgres_url(url)
        assert store_kind(url) == "postgresql"
        assert postgres_url(url) in ("postgresql://u:s3cretpw@h/db", "postgres://u:s3cretpw@h/db")
        assert describe_database(url) == repr(url.replace("s3cretpw", "***"))


@pytest.mark.parametrize(
    ("database", "shown", "why"),
    [
        ("mysql://user:s3cretpw@127.0.0.1:1/db", "mysql://user:***@127.0.0.1:1/db", "a mysql"),
        ("MSSQL+pyodbc://u:s3cretpw@h/db?x=1", "MSSQL+pyodbc://u:***@h/db?x=1", "a mssql+pyodbc"),
        ("sqlite:///failures.db", "sqlite:///failures.db", "a sqlite"),
        ("redis://h/0?password=s3cretpw", "redis://h/0?password=***", "a redis"),
        ("host=127.0.0.1 port=1 password=s3cretpw dbname=db", None, "libpq"),
        ("dbname=db PASSWORD = 's3cretpw x'", None, "libpq"),
    ],
)
def test_a_database_of_another_kind_is_refused_everywhere_without_its_password(
    database: str, shown: str | None, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another URL scheme, or a libpq key=value string, was taken for an SQLite
    file name: created by the logger, and shown, password and all, in every
    message. Now each way in refuses it in one message that names the field
    and hides the password, and no file is made."""
    monkeypatch.chdir(tmp_path)
    label = database_label(database)
    if shown is not None:
        assert label == shown
    assert "s3cret" not in label
    if why == "libpq":
        expected = (
            f"database: {label!r} looks like a libpq key=value connection string; "
            "trio-failurelog takes a postgresql:// URL (or the path of an SQLite file)"
        )
    else:
        expected = (
            f"database: {label!r} is {why}:// URL; trio-failurelog takes the path of an "
            "SQLite file or a postgresql:// URL"
        )

    async def open_it() -> None:
        async with open_failure_logger(database):
            pass  # pragma: no cover - refused before

    for attempt, error in (
        (lambda: RetrievalFailureLogger(database), ValueError),
        (lambda: trio.run(open_it), ValueError),
        (lambda: FailureReader(database), DatabaseSetupError),
        (lambda: purge_older_than(database, "2024-01-01"), DatabaseSetupError),
    ):
        with pytest.raises(error) as caught:
            attempt()
        assert type(caught.value) is error
        assert str(caught.value) == expected
    for argv in (
        ["report", database],
        ["export", database],
        ["tail", database],
        ["purge", database, "--older-than", "30d"],
        ["demo", "--db", database, "--duration", "0.1"],
    ):
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(argv)
        assert "s3cret" not in stdout.getvalue() + stderr.getvalue(), argv
        assert stdout.getvalue() == "", argv
        if argv[0] == "demo":  # a value the library refuses: a usage error
            assert (code, stderr.getvalue()) == (
                2,
                f"trio-failurelog: error: demo: {expected} (see --help)\n",
            )
        else:
            assert (code, stderr.getvalue()) == (1, f"trio-failurelog: error: {expected}\n")
    assert list(tmp_path.iterdir()) == []  # nothing was taken for a file name


def test_a_failed_connection_is_the_public_error_by_name() -> None:
    """Tracebacks and repr() show the exception's class: never a private one."""
    url = "postgresql://u:s3cret@127.0.0.1:1/db"  # nothing listens on port 1

    async def open_it() -> None:
        async with open_failure_logger(url, connect_timeout=2):
            pass  # pragma: no cover - refused

    for attempt in (lambda: FailureReader(url), lambda: trio.run(open_it)):
        with pytest.raises(DatabaseSetupError) as caught:
            attempt()
        assert type(caught.value) is DatabaseSetupError
        # The class and the message, whichever quotes repr picks (libpq's text may
        # hold either kind, depending on the psycopg/libpq version).
        assert repr(caught.value) == f"DatabaseSetupError({str(caught.value)!r})"
        assert str(caught.value).startswith("cannot connect to PostgreSQL")
        assert "s3cret" not in repr(caught.value)
