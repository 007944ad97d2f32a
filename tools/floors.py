"""Print pip's ``==`` pins for the lowest versions pyproject.toml declares.

Usage: ``python tools/floors.py EXTRA...`` prints one requirement a line: each
dependency of the project and of the named extras whose version is given as
``>=X``, pinned to ``==X`` (extras and markers kept). ``nox -s lowest`` installs
the project with these as constraints, so each floor is written once, in
pyproject.toml, and tested.

Only the standard library is used: it runs in nox's own environment.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# name[extras] >=version ; marker  (the forms pyproject.toml uses)
REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9._-]+)(?P<extras>\[[^\]]*\])?\s*"
    r"(?P<spec>[^;]*?)\s*(?P<marker>;.*)?$"
)


def floors(requirements: list[str]) -> list[str]:
    """``requirements`` whose only bound is ``>=X``, as ``name[extras]==X; marker``.

    Raises ValueError for a requirement with no ``>=`` floor: every dependency
    must have one, or the lowest-versions run would not be the lowest.
    """
    pins = []
    for requirement in requirements:
        found = REQUIREMENT.match(requirement)
        if found is None:
            raise ValueError(f"cannot read the requirement {requirement!r}")
        floor = re.fullmatch(r">=\s*([0-9][0-9A-Za-z.]*)", found["spec"])
        if floor is None:
            raise ValueError(f"{requirement!r} has no '>=' floor")
        pins.append(f"{found['name']}{found['extras'] or ''}=={floor[1]}{found['marker'] or ''}")
    return pins


def main(argv: list[str]) -> int:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    extras = project["optional-dependencies"]
    for extra in argv:
        if extra not in extras:
            print(f"tools/floors.py: error: no extra {extra!r} in pyproject.toml", file=sys.stderr)
            return 2
        requirements += extras[extra]
    try:
        pins = floors(requirements)
    except ValueError as exc:
        print(f"tools/floors.py: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(pins))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
