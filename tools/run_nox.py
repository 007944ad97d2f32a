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

Only the standard library is used here: it runs before anything is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".nox" / ".bootstrap"
# The nox this checkout's noxfile is written for; changing it reinstalls.
NOX_REQUIREMENT = "nox>=2025.10.14"  # nox.options.download_python
MARKER = VENV / "bootstrap-requirement.txt"
MINIMUM_PYTHON = (3, 11)

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


def main(argv: list[str]) -> int:  # noqa: RET503 (os.execv does not return)
    if sys.version_info < MINIMUM_PYTHON:
        wanted = ".".join(map(str, MINIMUM_PYTHON))
        print(f"tools/run_nox.py: error: Python {wanted} or newer is needed", file=sys.stderr)
        return 1
    try:
        if not ready():
            create()
    except BootstrapError as error:
        print(error, file=sys.stderr)
        return 1
    # nox runs every session in the noxfile's directory anyway; starting there
    # lets this script be called from anywhere in the checkout.
    os.environ["TRIO_FAILURELOG_INVOKED_FROM"] = os.getcwd()  # for the cli and demo sessions
    os.chdir(ROOT)
    command = [str(venv_python()), "-m", "nox", *argv]
    if os.name == "nt":
        return subprocess.run(command, check=False).returncode
    # Replaces this process: Ctrl-C and the exit status go straight to nox.
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
