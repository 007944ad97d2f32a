"""tools/floors.py and tools/check_dist.py: the release session's own checks fail
when they should."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import check_dist  # noqa: E402
import floors  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def test_floors_pin_every_lower_bound() -> None:
    assert floors.floors(
        ["trio>=0.28", "psycopg[binary]>=3.1.4", 'tomli>=2; python_version < "3.11"']
    ) == ["trio==0.28", "psycopg[binary]==3.1.4", 'tomli==2; python_version < "3.11"']


@pytest.mark.parametrize("requirement", ["trio", "trio<1", "trio>=0.28,<1", "trio==0.28"])
def test_a_dependency_without_a_floor_is_refused(requirement: str) -> None:
    with pytest.raises(ValueError, match="floor"):
        floors.floors([requirement])


def test_floors_of_the_project() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "floors.py"), "cli", "otel", "postgres"],
        capture_output=True,
        text=True,
        check=True,
    )
    pins = done.stdout.split()
    assert any(pin.startswith("trio==") for pin in pins)
    assert any(pin.startswith("outcome==") for pin in pins)
    assert "psycopg[binary]==3.1.4" in pins
    assert all("==" in pin for pin in pins)


def _sdist(path: Path, names: set[str]) -> Path:
    top = f"trio_failurelog-{check_dist.version()}/"
    with tarfile.open(path, "w:gz") as archive:
        for name in sorted(names):
            info = tarfile.TarInfo(top + name)
            info.size = 0
            archive.addfile(info, io.BytesIO(b""))
    return path


def test_an_incomplete_sdist_fails_the_check(tmp_path: Path) -> None:
    tracked = check_dist.tracked_files()
    assert "tests/conftest.py" in tracked
    generated = {"PKG-INFO", "setup.cfg", "src/trio_failurelog.egg-info/PKG-INFO"}
    version = check_dist.version()
    complete = _sdist(tmp_path / "complete.tar.gz", tracked | generated)
    assert check_dist.check_sdist(complete, version) == []
    missing = _sdist(tmp_path / "missing.tar.gz", (tracked - {"tests/conftest.py"}) | generated)
    assert check_dist.check_sdist(missing, version) == [
        "sdist: missing tests/conftest.py (add it to MANIFEST.in)"
    ]
    cache = "tests/__pycache__/conftest.cpython-312.pyc"
    extra = _sdist(tmp_path / "extra.tar.gz", tracked | generated | {cache})
    assert check_dist.check_sdist(extra, version) == [
        f"sdist: unexpected {cache} (not a tracked file)"
    ]


def test_a_wheel_with_tests_or_without_a_module_fails_the_check(tmp_path: Path) -> None:
    version = check_dist.version()
    info = f"trio_failurelog-{version}.dist-info"
    metadata = f"Version: {version}\nLicense-Expression: MIT\nLicense-File: LICENSE\n"
    entry_points = (
        "[console_scripts]\ntrio-failurelog = trio_failurelog._cli:main\n\n"
        "[pytest11]\ntrio_failurelog = trio_failurelog.pytest_plugin\n"
    )

    def wheel(name: str, modules: set[str]) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for module in modules:
                archive.writestr(module, "")
            archive.writestr(f"{info}/METADATA", metadata)
            archive.writestr(f"{info}/entry_points.txt", entry_points)
            archive.writestr(f"{info}/licenses/LICENSE", (ROOT / "LICENSE").read_text())
            for other in ("WHEEL", "RECORD", "top_level.txt"):
                archive.writestr(f"{info}/{other}", "")
        return path

    modules = check_dist.package_files()
    assert {"trio_failurelog/py.typed", "trio_failurelog/_sqlite/_store.py"} <= modules
    assert check_dist.check_wheel(wheel("good.whl", modules), version) == []
    problems = check_dist.check_wheel(
        wheel("bad.whl", (modules - {"trio_failurelog/py.typed"}) | {"tests/test_cli.py"}),
        version,
    )
    assert problems == [
        "wheel: missing trio_failurelog/py.typed",
        "wheel: unexpected tests/test_cli.py",
    ]
