"""Run nox in a fresh clone with nothing installed but ``python3``.

Usage, from anywhere in the checkout: ``python3 tools/run_nox.py [nox arguments]``,
for example ``python3 tools/run_nox.py -s demo``.

Debian and Ubuntu refuse ``pip install`` into the system Python (PEP 668,
"externally managed"), so nox goes into a virtual environment of its own,
``.nox/.bootstrap``, made once with ``python3 -m venv`` and reused. Where the
venv module cannot install pip (Debian's ``python3-venv`` package missing), the
environment is made without pip and the system's pip, if there is one, installs
nox into it; otherwise this script says which package to install. Then it runs
nox with the same arguments and exits with nox's status.

Before that, each Python the noxfile tests on (``PYTHONS``) is found the way CI
finds it: from PATH, or else pyenv's newest build of that version
(``~/.pyenv/versions/X.Y.*/bin/pythonX.Y``), linked into ``.nox/.pythons``, which
goes first on PATH. A Python found nowhere is named; under ``CI=true`` it is an
error. After nox, one closing line says which sessions ran and which were skipped,
and why.

Only the standard library is used here: it runs before anything is installed.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".nox" / ".bootstrap"
# The nox this checkout's noxfile is written for; changing it reinstalls.
NOX_REQUIREMENT = "nox>=2025.10.14"  # nox.options.download_python
MARKER = VENV / "bootstrap-requirement.txt"
MINIMUM_PYTHON = (3, 11)
LINKS = ROOT / ".nox" / ".pythons"
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"

NO_PIP_HELP = """\
tools/run_nox.py: error: {python} cannot make a virtual environment with pip in it.
On Debian or Ubuntu, install the venv module (as root), then run this again:
    apt install python3-venv"""


class BootstrapError(Exception):
    """A step of the bootstrap failed; the message says what to do."""


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False)


def ready() -> bool:
    """Whether the environment exists with the nox this script asks for."""
    if not venv_python().exists() or not MARKER.exists():
        return False
    if MARKER.read_text(encoding="utf-8").strip() != NOX_REQUIREMENT:
        return False
    return run([str(venv_python()), "-c", "import nox"]).returncode == 0


def create() -> None:
    """Make the environment and install nox into it."""
    shutil.rmtree(VENV, ignore_errors=True)
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with_pip = run([sys.executable, "-m", "venv", str(VENV)])
    if with_pip.returncode == 0:
        install = [str(venv_python()), "-m", "pip", "install", "--quiet", NOX_REQUIREMENT]
    else:
        # Debian without python3-venv: venv works, ensurepip does not. The
        # system's pip (python3-pip) can still install into the environment.
        shutil.rmtree(VENV, ignore_errors=True)
        system_pip = run([sys.executable, "-m", "pip", "--version"]).returncode == 0
        bare = run([sys.executable, "-m", "venv", "--without-pip", str(VENV)])
        if not system_pip or bare.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            raise BootstrapError(NO_PIP_HELP.format(python=sys.executable))
        install = [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv_python()),
            "install",
            "--quiet",
            NOX_REQUIREMENT,
        ]
    print(f"tools/run_nox.py: installing {NOX_REQUIREMENT} into {VENV}", file=sys.stderr)
    installed = subprocess.run(install, check=False)
    if installed.returncode != 0:
        raise BootstrapError(
            f"tools/run_nox.py: error: could not install {NOX_REQUIREMENT} "
            f"(pip exited with {installed.returncode}; its output is above)"
        )
    MARKER.write_text(NOX_REQUIREMENT + "\n", encoding="utf-8")


def tested_pythons() -> list[str]:
    """The noxfile's ``PYTHONS`` (read, not imported: nox is not importable here)."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "PYTHONS":
            versions = ast.literal_eval(node.value)
            assert isinstance(versions, list)
            return [str(v) for v in versions]
    raise BootstrapError("tools/run_nox.py: error: no PYTHONS list in noxfile.py")


def _works(command: str, path: str) -> bool:
    """Whether ``command`` runs: a pyenv shim for a version pyenv has not selected
    is on PATH and fails, so finding it is not enough."""
    found = shutil.which(command, path=path)
    return found is not None and run([found, "--version"]).returncode == 0


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in path.parents[1].name.split(".") if part.isdigit())


def find_pythons(
    versions: list[str], pyenv: Path = PYENV_VERSIONS, links: Path = LINKS
) -> list[str]:
    """Put each of ``versions`` on PATH (this process's, which nox inherits),
    linking pyenv's newest build of it (in ``pyenv``) into ``links`` where PATH
    has none that works; return the versions found nowhere."""
    links.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join([str(links), os.environ.get("PATH", "")])
    os.environ["PATH"] = path
    missing = []
    for version in versions:
        command = f"python{version}"
        if _works(command, path):
            continue
        builds = sorted(
            (
                build
                for build in pyenv.glob(f"{version}.*/bin/{command}")
                if build.parents[1].name.removeprefix(version + ".").isdigit()
            ),
            key=_version_key,
        )
        if builds:
            link = links / command
            link.unlink(missing_ok=True)
            link.symlink_to(builds[-1])
        if not _works(command, path):
            missing.append(version)
    return missing


def closing_line(report: Path, missing: list[str]) -> str:
    """What ran and what was skipped, and why, from nox's JSON report."""
    try:
        sessions = json.loads(report.read_text(encoding="utf-8"))["sessions"]
    except (OSError, ValueError, KeyError):
        return "tools/run_nox.py: nox wrote no report (see its output above)"
    by_result: dict[str, list[str]] = {}
    for session in sessions:
        by_result.setdefault(session["result"], []).append(session["signatures"][0])
    parts = []
    for result in ("success", "failed", "aborted"):
        if by_result.get(result):
            parts.append(f"{result}: {', '.join(by_result[result])}")
    skipped = []
    for name in by_result.get("skipped", []):
        version = name.rsplit("-", 1)[-1]
        if version in missing:
            skipped.append(f"{name} (no python{version} on PATH or in {PYENV_VERSIONS})")
        else:
            skipped.append(f"{name} (the session skipped itself: see its output above)")
    parts.append("skipped: " + (", ".join(skipped) if skipped else "no session"))
    return (
        "tools/run_nox.py: "
        + "; ".join(parts)
        + ". Tests that pytest skipped are named, with the reason, in its summary above."
    )


def main(argv: list[str]) -> int:
    if sys.version_info < MINIMUM_PYTHON:
        wanted = ".".join(map(str, MINIMUM_PYTHON))
        print(f"tools/run_nox.py: error: Python {wanted} or newer is needed", file=sys.stderr)
        return 1
    try:
        if not ready():
            create()
        missing = find_pythons(tested_pythons())
    except BootstrapError as error:
        print(error, file=sys.stderr)
        return 1
    if missing:
        names = ", ".join(f"python{v}" for v in missing)
        if os.environ.get("CI", "").lower() == "true":
            print(
                f"tools/run_nox.py: error: {names} not found on PATH or in {PYENV_VERSIONS} "
                "(CI=true: every Python in the noxfile's PYTHONS is tested)",
                file=sys.stderr,
            )
            return 1
        print(
            f"tools/run_nox.py: {names} not found on PATH or in {PYENV_VERSIONS}: "
            "sessions on it are skipped",
            file=sys.stderr,
        )
    # nox runs every session in the noxfile's directory anyway; starting there
    # lets this script be called from anywhere in the checkout.
    os.environ["TRIO_FAILURELOG_INVOKED_FROM"] = os.getcwd()  # for the cli and demo sessions
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="run_nox-") as scratch:
        report = Path(scratch) / "report.json"
        command = [str(venv_python()), "-m", "nox", *argv, "--report", str(report)]
        try:
            # Not exec: the closing line comes after nox. Ctrl-C reaches nox too
            # (same process group); this script waits for it to finish.
            status = subprocess.run(command, check=False).returncode
        except KeyboardInterrupt:
            return 130
        if not any(arg in ("-l", "--list", "--list-sessions", "-h", "--help") for arg in argv):
            print(closing_line(report, missing), file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
