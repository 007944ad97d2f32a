"""Check the built distributions hold what they should, and nothing else.

Usage: ``python tools/check_dist.py DIST_DIR`` (``nox -s release`` runs it after
``python -m build``). DIST_DIR holds one wheel and one sdist. Exits 1 with one line
per problem.

- The wheel: every module of ``src/trio_failurelog`` and ``py.typed``, nothing more
  (no tests, no ``__pycache__``), the licence, the version of ``_version.py``, the
  ``trio-failurelog`` command and the pytest plugin as entry points.
- The sdist: exactly the files git tracks (it is the whole checkout, so that pytest
  runs inside it), plus what the build writes (``PKG-INFO``, ``setup.cfg``, the
  egg-info); when git is missing it compares with the files under the checkout.

Only the standard library is used: it runs in any environment.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "trio_failurelog"
ENTRY_POINTS = {
    "console_scripts": {"trio-failurelog": "trio_failurelog._cli:main"},
    "pytest11": {"trio_failurelog": "trio_failurelog.pytest_plugin"},
}
# What the sdist build adds to the tracked files.
SDIST_GENERATED_FILES = {"PKG-INFO", "setup.cfg"}
SDIST_GENERATED_DIR = "src/trio_failurelog.egg-info/"


def version() -> str:
    """``__version__`` as written in ``_version.py`` (read, not imported)."""
    tree = ast.parse((PACKAGE / "_version.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "__version__":
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    raise SystemExit("tools/check_dist.py: no __version__ in _version.py")


def package_files() -> set[str]:
    """The package's files as the wheel names them: modules and py.typed."""
    return {
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*")
        if path.is_file() and (path.suffix == ".py" or path.name == "py.typed")
    }


def tracked_files() -> set[str]:
    """The checkout's files: git's list, or every file outside ignored build output."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (an unpacked sdist, say): what is there, less what
        # builds, tests and tools leave behind and what the sdist build adds.
        skipped = {".git", ".nox", "dist", "build", "__pycache__", "_build", ".hypothesis"}
        skipped |= {".pytest_cache", ".mypy_cache", ".ruff_cache"}
        return {
            name
            for path in ROOT.rglob("*")
            if path.is_file()
            and not skipped.intersection(path.relative_to(ROOT).parts)
            and ".egg-info" not in str(path)
            and (name := str(path.relative_to(ROOT))) not in SDIST_GENERATED_FILES
        }
    return {name for name in listed.split("\0") if name}


def check_wheel(wheel: Path, expected_version: str) -> list[str]:
    problems: list[str] = []
    info = f"trio_failurelog-{expected_version}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = HeaderParser().parsestr(archive.read(f"{info}/METADATA").decode())
        entry_points = configparser.ConfigParser(delimiters=("=",))
        entry_points.optionxform = str  # type: ignore[assignment,method-assign]  # keep case
        entry_points.read_string(archive.read(f"{info}/entry_points.txt").decode())
        licence = archive.read(f"{info}/licenses/LICENSE").decode()
    modules = {name for name in names if not name.startswith(f"{info}/")}
    expected = package_files()
    for name in sorted(expected - modules):
        problems.append(f"wheel: missing {name}")
    for name in sorted(modules - expected):
        problems.append(f"wheel: unexpected {name}")
    meta_files = {name.removeprefix(f"{info}/") for name in names - modules}
    wanted_meta = {
        "METADATA",
        "WHEEL",
        "RECORD",
        "entry_points.txt",
        "top_level.txt",
        "licenses/LICENSE",
    }
    if meta_files != wanted_meta:
        problems.append(f"wheel: dist-info holds {sorted(meta_files)}, not {sorted(wanted_meta)}")
    if metadata["Version"] != expected_version:
        problems.append(
            f"wheel: version {metadata['Version']}, _version.py says {expected_version}"
        )
    if metadata["License-Expression"] != "MIT" or metadata["License-File"] != "LICENSE":
        problems.append("wheel: License-Expression MIT and License-File LICENSE missing")
    if licence != (ROOT / "LICENSE").read_text(encoding="utf-8"):
        problems.append("wheel: licenses/LICENSE differs from LICENSE")
    for group, wanted in ENTRY_POINTS.items():
        found = dict(entry_points[group]) if entry_points.has_section(group) else {}
        if found != wanted:
            problems.append(f"wheel: entry points [{group}] are {found}, not {wanted}")
    return problems


def check_sdist(sdist: Path, expected_version: str) -> list[str]:
    problems: list[str] = []
    top = f"trio_failurelog-{expected_version}/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.isfile()]
    names = set()
    for member in members:
        if not member.name.startswith(top):
            problems.append(f"sdist: {member.name} outside {top}")
            continue
        names.add(member.name.removeprefix(top))
    generated = {
        n for n in names if n in SDIST_GENERATED_FILES or n.startswith(SDIST_GENERATED_DIR)
    }
    if generated & SDIST_GENERATED_FILES != SDIST_GENERATED_FILES:
        problems.append(f"sdist: build files missing: {sorted(SDIST_GENERATED_FILES - generated)}")
    shipped = names - generated
    tracked = tracked_files()
    for name in sorted(tracked - shipped):
        problems.append(f"sdist: missing {name} (add it to MANIFEST.in)")
    for name in sorted(shipped - tracked):
        problems.append(f"sdist: unexpected {name} (not a tracked file)")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/check_dist.py DIST_DIR", file=sys.stderr)
        return 2
    dist = Path(argv[0])
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        print(f"tools/check_dist.py: {dist} must hold one wheel and one sdist", file=sys.stderr)
        return 1
    expected_version = version()
    problems = check_wheel(wheels[0], expected_version) + check_sdist(sdists[0], expected_version)
    for problem in problems:
        print(f"tools/check_dist.py: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"tools/check_dist.py: {wheels[0].name} and {sdists[0].name} hold what they should")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
