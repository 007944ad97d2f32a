"""The nox route to the command line: no password on the command line nox prints,
relative paths from where the user stands."""

from __future__ import annotations

import urllib.parse

import noxfile
import psycopg.conninfo
from hypothesis import given
from hypothesis import strategies as st

_PASSWORDS = st.text(
    st.characters(codec="ascii", categories=("L", "N", "P", "S"), exclude_characters="/"),
    min_size=1,
    max_size=16,
)


@given(password=_PASSWORDS)
def test_a_password_goes_to_pgpassword_not_onto_the_command_line(password: str) -> None:
    encoded = urllib.parse.quote(password, safe="")
    for url, shown in (
        (
            f"postgresql://user:{encoded}@host:5432/db?sslmode=disable",
            "postgresql://user@host:5432/db?sslmode=disable",
        ),
        (
            f"postgres://user@host/db?password={encoded}&sslmode=disable",
            "postgres://user@host/db?sslmode=disable",
        ),
    ):
        args, env = noxfile._without_passwords(["report", url, "--since", "1h"])
        assert env == {"PGPASSWORD": password}
        assert args == ["report", shown, "--since", "1h"]
        # libpq reads the same connection, the password from the environment.
        expected = psycopg.conninfo.conninfo_to_dict(url)
        assert expected.pop("password") == password
        assert psycopg.conninfo.conninfo_to_dict(args[1]) == expected


def test_other_arguments_pass_as_they_are() -> None:
    argv = ["export", "failures.db", "-o", "postgresql.csv", "--strategy", "a:b@c"]
    assert noxfile._without_passwords(argv) == (argv, {})
    assert noxfile._without_passwords(["report", "postgresql://u@h/db"]) == (
        ["report", "postgresql://u@h/db"],
        {},
    )
