"""The install hints name what pyproject.toml declares for each extra."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from trio_failurelog._extras import install_hint

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "optional-dependencies"
]


@pytest.mark.parametrize("extra", ["cli", "otel", "postgres"])
def test_the_hint_installs_the_extras_own_requirements(extra: str) -> None:
    hint = install_hint(extra)
    # What the package was installed with (an editable install keeps the metadata
    # of its install time, which may trail pyproject.toml: the names cannot).
    declared = [
        requirement.split(";", 1)[0].strip()
        for requirement in importlib.metadata.requires("trio-failurelog") or []
        if f'extra == "{extra}"' in requirement
    ]
    assert declared
    assert hint == "pip install " + " ".join(f"'{r}'" for r in declared)
    for requirement in EXTRAS[extra]:
        name = requirement.split(">=", 1)[0]
        assert f"'{name}>=" in hint, (hint, requirement)
    # Never the package itself: it is on no index yet, and from a wheel '.' means nothing.
    assert "trio-failurelog" not in hint
    assert "'.[" not in hint


def test_an_unknown_extra_falls_back_to_the_checkout() -> None:
    assert install_hint("nonexistent") == (
        "from a checkout of trio-failurelog, pip install '.[nonexistent]'"
    )
