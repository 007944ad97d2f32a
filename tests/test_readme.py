"""The README and the docs stay true: their examples run and pass ``mypy --strict``.

Also checked: the Quickstart's check command is what CI runs, the sessions it
names exist, every test a guarantee points at exists, every public name is in
the API reference, and the demo's "Next:" commands run from the shell that
started it.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import trio_failurelog

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def fenced(path: Path, language: str) -> list[str]:
    """The fenced code blocks of ``path`` in ``language``, in order."""
    text = path.read_text(encoding="utf-8")
    return [body for lang, body in FENCE.findall(text) if lang == language]


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_pages_have_python_examples() -> None:
    # The extraction itself must find something, or every test below passes vacuously.
    assert len(fenced(README, "python")) >= 3
    assert all(ast.parse(block) for page in PAGES for block in fenced(page, "python"))


@pytest.mark.parametrize("page", [p for p in PAGES if fenced(p, "python")], ids=page_id)
def test_python_examples_run(page: Path, tmp_path: Path) -> None:
    # In order, in one directory: a later example reads what an earlier one wrote.
    for number, block in enumerate(fenced(page, "python"), 1):
        script = tmp_path / f"example_{number}.py"
        script.write_text(block, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-W", "error", str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{page_id(page)} example {number}:\n{done.stderr}"


def test_python_examples_pass_mypy_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:
        if os.environ.get("CI"):
            pytest.fail("mypy is not installed: the examples cannot be type-checked")
        pytest.skip("mypy is not installed (nox -s tests installs it)")
    files: dict[str, str] = {}
    for page in PAGES:
        for number, block in enumerate(fenced(page, "python"), 1):
            name = f"{page.stem.lower()}_{number}.py"
            (tmp_path / name).write_text(block, encoding="utf-8")
            files[name] = f"{page_id(page)} example {number}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            os.devnull,
            *files,
        ],
        cwd=tmp_path,
        env=mypy_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = done.stdout
    for name, where in files.items():
        report = report.replace(name, where)
    assert done.returncode == 0, report


def mypy_environment() -> dict[str, str]:
    """mypy does not follow an editable install's path hook: when the package comes
    from src it is pointed there; an installed wheel it finds by itself (and refuses
    site-packages in MYPYPATH)."""
    package_dir = Path(trio_failurelog.__file__).resolve().parents[1]
    if package_dir == ROOT / "src":
        return {**os.environ, "MYPYPATH": str(package_dir)}
    return dict(os.environ)


def session_names() -> set[str]:
    noxfile = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {
        node.name
        for node in noxfile.body
        if isinstance(node, ast.FunctionDef)
        and any("nox.session" in ast.unparse(d) for d in node.decorator_list)
    }


def test_quickstart_runs_what_ci_runs() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line.strip() for line in script if "nox" in line and not line.startswith("#")]
    assert len(commands) == 1, commands
    ci_command = commands[0]
    assert ci_command.startswith("python3 tools/run_nox.py -s ")
    quickstart = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    quickstart = quickstart.split("\n## ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in fenced_text(quickstart, "console")]
    assert ci_command in lines
    for line in lines:
        words = shlex.split(line)
        assert words[:3] == ["python3", "tools/run_nox.py", "-s"], line
        # "tests-3.12" is one Python's run of the session "tests".
        assert {word.split("-")[0] for word in words[3:]} <= session_names(), line


def fenced_text(text: str, language: str) -> list[str]:
    return [
        line
        for lang, body in FENCE.findall(text)
        if lang == language
        for line in body.splitlines()
        if line.strip()
    ]


def test_every_nox_command_in_the_pages_names_a_session() -> None:
    sessions = session_names()
    commands = 0
    for page in PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            for found in re.finditer(r"(?:tools/run_nox\.py|\bnox) -s ([^`#]*)", line):
                commands += 1
                for word in found[1].split():
                    if word.startswith("-"):  # "--" and nox's own options end the list
                        break
                    # "tests-3.13" is one Python's run of the session "tests".
                    assert word.split("-")[0] in sessions, (page_id(page), line)
    assert commands >= 5


def test_every_test_a_guarantee_points_at_exists() -> None:
    text = (DOCS / "guarantees.md").read_text(encoding="utf-8")
    references = re.findall(r"`((?:tests/[\w/]*)?test_\w+\.py)(?:::(\w+))?`", text)
    assert len(references) >= 10
    for path, name in references:
        found = list((ROOT / "tests").rglob(Path(path).name))
        assert found, path
        if name:
            assert any(
                re.search(rf"^(async )?def {name}\(", f.read_text(), re.MULTILINE) for f in found
            ), f"{path}::{name}"
    # A bare name after a comma continues the previous file's list.
    for name in re.findall(r",\s*`(test_\w+)`", text):
        assert any(
            re.search(rf"^(async )?def {name}\(", f.read_text(), re.MULTILINE)
            for f in (ROOT / "tests").rglob("test_*.py")
        ), name


def test_every_public_name_is_in_the_api_reference() -> None:
    api = (DOCS / "api.rst").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\.\. auto\w+:: (\w+)", api, re.MULTILINE))
    assert set(trio_failurelog.__all__) <= documented, set(trio_failurelog.__all__) - documented


def test_the_demo_suggests_commands_that_run_from_its_shell(tmp_path: Path) -> None:
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    # The demo session names tools/run_nox.py as seen from where the user stands
    # (here, the checkout's root).
    found = re.search(r'"TRIO_FAILURELOG_PROG"\] = f"python3 \{[^}]+\}( -s cli --)"', noxfile)
    assert found is not None
    prefix = ["", "python3 tools/run_nox.py" + found[1]]
    database = tmp_path / "demo.db"
    demo = subprocess.run(
        [sys.executable, "-m", "trio_failurelog", "demo", "--duration", "1", "--db", database],
        env={**os.environ, "TRIO_FAILURELOG_PROG": prefix[1]},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    hints = [line for line in demo.stdout.splitlines() if line.startswith("Next:")]
    assert len(hints) == 1
    commands = [c.strip() for c in hints[0].removeprefix("Next:").split("|")]
    assert len(commands) == 2
    # The prefix runs the nox session "cli", which hands what follows "--" to
    # trio-failurelog; what follows must work there.
    cli_session = re.search(r"def cli\(session.*?\n\n\n", noxfile, re.DOTALL)
    assert cli_session is not None
    assert 'session.run("trio-failurelog", *args, env=env)' in cli_session[0]
    for command in commands:
        assert command.startswith(prefix[1] + " "), command
        words = shlex.split(command.removeprefix(prefix[1]))
        if words[0] == "tail":
            words[1:1] = ["--lines", "1"]
            with subprocess.Popen(
                [sys.executable, "-m", "trio_failurelog", *words],
                stdout=subprocess.PIPE,
                text=True,
            ) as tail:
                assert tail.stdout is not None
                assert tail.stdout.readline().strip()  # a row, then it follows
                tail.kill()
            continue
        subprocess.run(
            [sys.executable, "-m", "trio_failurelog", *words],
            capture_output=True,
            timeout=60,
            check=True,
        )


def test_the_readme_links_work_on_a_package_index_page() -> None:
    # The README is also the package's page on an index, where a link relative to
    # the repository (docs/x.md, #anchor) leads nowhere: every link is absolute.
    text = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.M)
    assert len(targets) >= 2  # the extraction finds links at all
    relative = [t for t in targets if not t.startswith("https://")]
    assert relative == []
