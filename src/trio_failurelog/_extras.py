"""What to install for an optional extra, read from the installed package's metadata."""

from __future__ import annotations

import importlib.metadata
import re

__all__ = ["install_hint"]

_DISTRIBUTION = "trio-failurelog"


def _requirements(extra: str) -> list[str]:
    """The requirements ``extra`` adds, as pyproject.toml declares them (markers
    dropped); empty when the package's metadata cannot be read (run from a source
    tree that was never installed)."""
    try:
        declared = importlib.metadata.requires(_DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return []
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    return [req.split(";", 1)[0].strip() for req in declared if marker.search(req)]


def install_hint(extra: str) -> str:
    """The pip command that adds the ``extra`` extra, true wherever the package came from.

    Installing the extra's own requirements works from a checkout, an installed
    wheel and a package index alike, so that is what is named (the floors read from
    the metadata, written once in pyproject.toml). Never blocks on anything but
    reading the metadata; never raises.
    """
    requirements = _requirements(extra)
    if not requirements:
        return f"from a checkout of trio-failurelog, pip install '.[{extra}]'"
    return "pip install " + " ".join(f"'{requirement}'" for requirement in requirements)
