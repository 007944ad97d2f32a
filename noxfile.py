"""The project's one entry point. CI runs ``nox -s lint typecheck tests-3.12 release lowest docs``.

In a fresh clone with nothing but ``python3``, ``python3 tools/run_nox.py ARGS``
installs nox into ``.nox/.bootstrap`` first and then runs ``nox ARGS``.

CI sessions: ``lint``, ``typecheck``, ``tests-3.12`` (the suite on an editable
install), ``release`` (on 3.13: builds and checks the sdist and the wheel, then
runs the suite against the installed wheel), ``lowest`` (on 3.11: the suite on
the lowest versions pyproject.toml allows), ``docs``: each supported Python runs
the suite once, each run meaning something. ``tests`` alone runs on every Python
in ``PYTHONS``. A missing Python is skipped locally (tools/run_nox.py names it at
the end) and an error when ``CI`` is set. By hand: ``bench`` (full benchmarks),
``demo``, ``cli`` (the command line, arguments after ``--``), ``screenshot`` (HTML
report in headless Chromium), ``stress`` and ``soak`` (long reliability runs).

An optional extra is tested by adding it to ``TEST_EXTRAS``; a step that needs
a service (a PostgreSQL server, say) belongs in ``.ci/run`` before nox.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shlex
import shutil
from pathlib import Path
from typing import Any

import nox

nox.options.sessions = ["lint", "typecheck", "tests-3.12", "release", "lowest", "docs"]
nox.options.reuse_existing_virtualenvs = True
# virtualenv brings its own pip, so sessions work where Debian's python3 lacks
# ensurepip (no python3-venv package); nox depends on it anyway.
nox.options.default_venv_backend = "virtualenv"
# Interpreters come from PATH or pyenv; never download one.
nox.options.download_python = "never"


def _not_uv_missing(record: logging.LogRecord) -> bool:
    # nox looks for uv whenever it makes an environment, and logs "uv binary not
    # found." when there is none, which is expected here (the virtualenv backend is
    # chosen above, and download_python is "never"). It has no option to stop
    # looking, so that one line is filtered out of its log.
    return record.getMessage() != "uv binary not found."


logging.getLogger("nox").addFilter(_not_uv_missing)

PYTHONS = ["3.11", "3.12", "3.13"]
# The release is checked on the newest Python; the floors on the oldest they support.
RELEASE_PYTHON = PYTHONS[-1]
LOWEST_PYTHON = PYTHONS[0]
# Extras installed for the test suite and the type check.
TEST_EXTRAS = ["test", "cli", "otel", "postgres"]
BENCH_DEPS = ["aiosqlite>=0.20"]
# mypy checks the README's and the docs' examples inside the test suite.
TYPECHECK_DEPS = ["mypy>=1.10"]
# pyright --verifytypes: the public API's completeness, as trio checks its own; the
# nodejs extra brings node as a wheel, so nothing is downloaded at run time.
PYRIGHT = "pyright[nodejs]>=1.1.380"
RELEASE_DEPS = ["build>=1.2", "twine>=5"]
# Set by the release session: tests/conftest.py then checks that trio_failurelog is
# imported from the installed wheel, not from src.
INSTALLED_ENV = "TRIO_FAILURELOG_TEST_INSTALLED"
DOCS_DEPS = ["sphinx>=7.3", "myst-parser>=3", "furo>=2024.5"]
LINT_DEPS = ["ruff>=0.6", "flake8>=7", "flake8-async>=24.9"]

# flake8 runs for flake8-async alone (ruff covers the rest). Every rule is on,
# the opt-in ASYNC9xx checkpoint rules included: with flake8, --enable=ASYNC
# enables them, and --select=ASYNC keeps flake8's own checks out.
FLAKE8_ASYNC = [
    "--select=ASYNC",
    "--enable=ASYNC",
    # The library's long-running tasks take task_status: ASYNC113 then checks
    # they are started with nursery.start, not start_soon, in context managers.
    "--startable-in-context-manager=run",
    # Opening an sqlite3 connection inside an async function blocks the event
    # loop: the library does it on its worker thread only.
    "--async200-blocking-calls=sqlite3.connect->trio.to_thread.run_sync",
]
LINTED = ["src", "tests", "benchmarks", "tools", "docs", "noxfile.py"]
# Tests open plain sqlite3 connections inside async tests on purpose (to hold
# a lock, or look at the file), and a test's event loop has nothing to stall.
FLAKE8_ASYNC_IGNORED = {"tests/*": "ASYNC200"}


def per_file_ignores() -> str:
    """flake8's --per-file-ignores value, from :data:`FLAKE8_ASYNC_IGNORED`."""
    return ",".join(f"{path}:{codes}" for path, codes in FLAKE8_ASYNC_IGNORED.items())


def install_project(session: nox.Session, *extras: str) -> None:
    """The project in editable mode with ``extras``."""
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite, with a tiny smoke run of the benchmarks and the docs' examples."""
    install_project(session, *TEST_EXTRAS)
    # nox: tests/test_cli_nox.py imports this file to test the cli and demo sessions.
    session.install(*BENCH_DEPS, *TYPECHECK_DEPS, "nox")
    session.run("pytest", *session.posargs)


@nox.session(python=RELEASE_PYTHON, reuse_venv=False)
def release(session: nox.Session) -> None:
    """Build the sdist and the wheel, ``twine check`` them, check what they hold
    (tools/check_dist.py), then run the suite against the wheel installed (not
    editable) in a fresh environment. The distributions are left in ``dist/``."""
    dist = Path("dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.install(*RELEASE_DEPS)
    session.run("python", "-m", "build", "--outdir", str(dist))
    built = sorted(str(path) for path in dist.iterdir())
    session.run("twine", "check", "--strict", *built)
    session.run("python", "tools/check_dist.py", str(dist))
    (wheel,) = dist.glob("*.whl")
    session.install(f"{wheel}[{','.join(TEST_EXTRAS)}]")
    session.install(*BENCH_DEPS, *TYPECHECK_DEPS, "nox")
    session.run("pytest", *session.posargs, env={INSTALLED_ENV: "1"})


@nox.session(python=LOWEST_PYTHON)
def lowest(session: nox.Session) -> None:
    """The suite on the lowest versions pyproject.toml declares: every ``>=`` floor
    of the dependencies and the cli, otel and postgres extras, pinned to ``==`` by
    tools/floors.py (the test tools stay current)."""
    extras = [extra for extra in TEST_EXTRAS if extra != "test"]
    pins = session.run("python", "tools/floors.py", *extras, silent=True)
    assert isinstance(pins, str)
    # One resolution, so that what depends on a pinned package (opentelemetry-sdk
    # on opentelemetry-api, say) comes in a version that works with the pin.
    session.install("-e", f".[{','.join(TEST_EXTRAS)}]", *pins.splitlines())
    session.install(*BENCH_DEPS, *TYPECHECK_DEPS, "nox")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check``, ``ruff format --check`` and flake8-async over the whole tree."""
    session.install(*LINT_DEPS)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("flake8", *FLAKE8_ASYNC, f"--per-file-ignores={per_file_ignores()}", *LINTED)


@nox.session
def typecheck(session: nox.Session) -> None:
    """``mypy --strict`` over src, tests, benchmarks, tools, docs/conf.py and this file;
    ``pyright --verifytypes``: every public name fully typed (100%, or it fails)."""
    install_project(session, *TEST_EXTRAS)
    session.install(*BENCH_DEPS, *TYPECHECK_DEPS, "nox", PYRIGHT)
    session.run("mypy")
    # An editable install is a path hook pyright does not follow: it is pointed at src.
    session.run(
        "pyright",
        "--verifytypes",
        "trio_failurelog",
        "--ignoreexternal",
        env={"PYTHONPATH": "src"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation, HTML in docs/_build/html; any Sphinx warning is an error."""
    install_project(session)
    session.install(*DOCS_DEPS)
    session.run(
        "sphinx-build",
        "-W",  # warnings are errors, so a broken reference fails CI
        "--keep-going",  # but report all of them at once
        "-n",  # and every cross-reference must resolve
        "-b",
        "html",
        "-d",
        "docs/_build/doctrees",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """All benchmarks: prints one table, writes bench-results.json."""
    install_project(session, "postgres")  # for figure 6: --only postgres
    session.install(*BENCH_DEPS)
    session.run("python", "-m", "benchmarks", *session.posargs)


def _conninfo() -> Any:
    """The library's URL helpers, loaded from their file: they need nothing but the
    standard library, while importing the package would need trio in nox's venv."""
    path = Path(__file__).parent / "src" / "trio_failurelog" / "_conninfo.py"
    spec = importlib.util.spec_from_file_location("_trio_failurelog_conninfo", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _user_directory(session: nox.Session) -> str:
    """Where the user typed the command: tools/run_nox.py moves to the checkout
    first and says where it came from; nox itself remembers its own start."""
    return os.environ.get("TRIO_FAILURELOG_INVOKED_FROM") or session.invoked_from


def _without_passwords(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """``args`` with the password taken out of any postgresql:// URL, and the
    environment that gives it to libpq instead (PGPASSWORD): nox prints every
    command it runs (twice when it fails), and the password must not be shown."""
    conninfo = _conninfo()
    env: dict[str, str] = {}
    cleaned = []
    for arg in args:
        if arg[:13].lower().startswith(("postgresql://", "postgres://")):
            arg, password = conninfo.without_password(arg)
            if password is not None:
                env["PGPASSWORD"] = password
        cleaned.append(arg)
    return cleaned, env


@nox.session
def demo(session: nox.Session) -> None:
    """The library at work: a simulated retrieval service logging its failures.
    Relative paths are taken from where you stand, as with any command."""
    install_project(session, "cli", "postgres")
    args, env = _without_passwords(session.posargs)
    here = _user_directory(session)
    run_nox = Path(__file__).parent / "tools" / "run_nox.py"
    shown = os.path.relpath(run_nox, here)
    if shown.startswith(".."):
        shown = str(run_nox)
    # The demo's "Next:" hints name the command line as this shell can run it,
    # from the directory it stands in.
    env["TRIO_FAILURELOG_PROG"] = f"python3 {shlex.quote(shown)} -s cli --"
    session.chdir(here)
    session.run("trio-failurelog", "demo", *args, env=env)


@nox.session
def cli(session: nox.Session) -> None:
    """The command line: ``python3 tools/run_nox.py -s cli -- report failures.db``.

    Relative paths are taken from where you stand; a password in a
    postgresql:// URL goes to the command through PGPASSWORD, never on the
    command line nox prints."""
    install_project(session, "cli", "postgres")
    args, env = _without_passwords(session.posargs)
    session.chdir(_user_directory(session))
    session.run("trio-failurelog", *args, env=env)


@nox.session
def screenshot(session: nox.Session) -> None:
    """Render the HTML report in headless Chromium (Debian's ``chromium``) to a PNG."""
    install_project(session, "cli")
    session.run("python", "tools/screenshot_report.py", *session.posargs)


@nox.session
def stress(session: nox.Session) -> None:
    """The long reliability tests (many SIGKILL trials, heavy contention)."""
    install_project(session, *TEST_EXTRAS)
    session.run("pytest", "tests/reliability", "--stress", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Ten minutes at a steady rate with retention purges; reports RSS and file size."""
    install_project(session)
    session.run("python", "tools/soak.py", *session.posargs)
