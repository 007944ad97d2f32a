"""What the command line writes: files owner-only, colour when asked, help that is
true, log output that never lands on top of the live status line."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_failurelog import _cli
from trio_failurelog._cli import build_parser, main
from trio_failurelog._console import Console, rich_available
from trio_failurelog._export import write_jsonl

from ._failuredb import make_db, row
from ._helpers import run_cli as run

PRIVATE = 0o600


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return make_db(
        tmp_path / "data" / "o.db",
        [
            row("no_hit", "semantic", "my secret question", f"2024-01-01 00:00:{i:02d}")
            for i in range(30)
        ],
    )


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for output files, under the umask most systems use (022): a
    file opened plainly for writing would be readable by everyone."""
    directory = tmp_path / "out"
    directory.mkdir()
    old = os.umask(0o022)
    try:
        yield directory
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


OUTPUTS = {
    "html": ["report", "{db}", "--html", "{target}"],
    "jsonl": ["export", "{db}", "-o", "{target}"],
    "csv": ["export", "{db}", "--format", "csv", "-o", "{target}"],
}


def output_argv(kind: str, db: Path, target: Path) -> list[str]:
    return [arg.format(db=db, target=target) for arg in OUTPUTS[kind]]


# ------------------------------------------------------------------ item 10: privacy


@pytest.mark.parametrize("kind", OUTPUTS)
def test_output_files_are_created_owner_only(
    capsys: pytest.CaptureFixture[str], db: Path, out_dir: Path, kind: str
) -> None:
    target = out_dir / f"report.{kind}"
    code, _, err = run(capsys, *output_argv(kind, db, target))
    assert code == 0, err
    assert "my secret question" in target.read_text(encoding="utf-8")
    assert mode(target) == PRIVATE
    assert sorted(p.name for p in out_dir.iterdir()) == [target.name]  # no temporary left


@pytest.mark.parametrize("kind", OUTPUTS)
def test_an_existing_world_readable_file_is_replaced_not_reused(
    capsys: pytest.CaptureFixture[str], db: Path, out_dir: Path, kind: str
) -> None:
    target = out_dir / f"old.{kind}"
    target.write_text("old contents\n")
    target.chmod(0o644)
    # Someone opened the file while it was readable; permissions are checked at open
    # only, so writing the new text into this file would show it to them.
    with target.open(encoding="utf-8") as earlier_reader:
        code, _, err = run(capsys, *output_argv(kind, db, target))
        assert code == 0, err
        assert earlier_reader.read() == "old contents\n"
    assert mode(target) == PRIVATE
    assert "my secret question" in target.read_text(encoding="utf-8")


def test_no_moment_where_exported_text_is_world_readable(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, int]] = []
    real = write_jsonl

    def watching(records: Any, stream: Any, on_row: Any) -> int:
        def check(count: int) -> None:
            stream.flush()
            seen.extend((p.name, mode(p)) for p in out_dir.iterdir())
            on_row(count)

        return real(records, stream, check)

    monkeypatch.setattr(_cli, "write_jsonl", watching)
    code, _, err = run(capsys, "export", str(db), "-o", str(out_dir / "x.jsonl"))
    assert code == 0, err
    assert len(seen) == 30  # one file, looked at after every row
    assert {m for _, m in seen} == {PRIVATE}


def test_an_interrupted_export_leaves_the_old_file_and_no_debris(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    out_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = out_dir / "keep.jsonl"
    target.write_text("previous export\n")
    real = write_jsonl

    def interrupted(records: Any, stream: Any, on_row: Any) -> int:
        def stop(count: int) -> None:
            if count == 10:
                raise KeyboardInterrupt

        return real(records, stream, stop)

    monkeypatch.setattr(_cli, "write_jsonl", interrupted)
    code, _, _ = run(capsys, "export", str(db), "-o", str(target))
    assert code == 130
    assert target.read_text() == "previous export\n"
    assert [p.name for p in out_dir.iterdir()] == ["keep.jsonl"]


def test_a_link_to_a_file_is_followed_and_kept(
    capsys: pytest.CaptureFixture[str], db: Path, out_dir: Path
) -> None:
    real = out_dir / "real.jsonl"
    real.write_text("")
    link = out_dir / "link.jsonl"
    link.symlink_to(real)
    code, _, err = run(capsys, "export", str(db), "-o", str(link))
    assert code == 0, err
    assert link.is_symlink()
    assert len(real.read_text().splitlines()) == 30
    assert mode(real) == PRIVATE


def test_a_device_is_written_in_place(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = os.stat(os.devnull)
    code, _, err = run(capsys, "export", str(db), "-o", os.devnull)
    assert code == 0, err
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)


@pytest.mark.parametrize("kind", OUTPUTS)
def test_an_output_path_that_is_a_directory_is_one_line(
    capsys: pytest.CaptureFixture[str], db: Path, out_dir: Path, kind: str
) -> None:
    code, out, err = run(capsys, *output_argv(kind, db, out_dir))
    assert (code, out) == (1, "")
    assert err == f"trio-failurelog: error: cannot write {str(out_dir)!r}: Is a directory\n"


# ------------------------------------------------------------------ item 9: --color, --help


@pytest.fixture
def rich_installed() -> None:
    pytest.importorskip("rich")


@pytest.mark.usefixtures("rich_installed")
@pytest.mark.parametrize(
    "environment", [{}, {"NO_COLOR": "1"}, {"TERM": "dumb"}, {"TERM": "dumb", "NO_COLOR": "1"}]
)
def test_color_always_colours_piped_output(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run(capsys, "--color", "always", "report", str(db))
    assert code == 0
    assert "\x1b[" in out  # an ANSI colour sequence, though stdout is no terminal


@pytest.mark.usefixtures("rich_installed")
@pytest.mark.parametrize("choice", ["auto", "never"])
def test_no_colour_when_piped_or_refused(
    capsys: pytest.CaptureFixture[str], db: Path, choice: str
) -> None:
    code, out, _ = run(capsys, "--color", choice, "report", str(db))
    assert code == 0
    assert "\x1b" not in out


@pytest.mark.usefixtures("rich_installed")
def test_color_is_taken_after_the_command_too(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    for argv, coloured in (
        (["report", str(db), "--color", "always"], True),
        (["--color", "always", "report", str(db), "--color", "never"], False),
        (["--color", "always", "report", str(db)], True),  # kept: the command gave none
        (["tail", str(db), "-n", "1", "--color", "always"], True),
    ):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_cli, "sleep", _interrupt)
            code, out, _ = run(capsys, *argv)
        assert code in (0, 130), argv
        assert ("\x1b[" in out) is coloured, argv


def _interrupt(seconds: float) -> None:
    raise KeyboardInterrupt


def _positional_help(command: str) -> str:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    sub = subparsers.choices[command]  # type: ignore[index]
    return next(a.help for a in sub._actions if a.dest == "database") or ""


def test_help_says_what_each_command_does_to_the_database() -> None:
    for command in ("report", "tail", "export"):
        assert "read-only" in _positional_help(command)
    purge = _positional_help("purge")
    assert "deleted" in purge
    assert "opened read-only)" not in purge.replace("--dry-run opens it read-only", "")


# ------------------------------------------------------------------ item 9: log output vs status


class Terminal:
    """stdout and stderr of one terminal: the text as a terminal would show it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._line: list[str] = []
        self._column = 0

    def write(self, text: str) -> None:
        for char in text:
            if char == "\r":
                self._column = 0
            elif char == "\n":
                self.lines.append("".join(self._line).rstrip())
                self._line, self._column = [], 0
            else:
                if self._column < len(self._line):
                    self._line[self._column] = char
                else:
                    self._line.append(char)
                self._column += 1

    def screen(self) -> list[str]:
        return [*self.lines, "".join(self._line).rstrip()]


class TTY(io.StringIO):
    def __init__(self, terminal: Terminal) -> None:
        super().__init__()
        self.terminal = terminal

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.terminal.write(text)
        return len(text)


def test_a_warning_ends_the_status_line_first() -> None:
    terminal = Terminal()
    out = Console(TTY(terminal), use_rich=False)
    with _cli._library_log_to(TTY(terminal)):
        out.status("  1.0 s  requests 300/s  logged 75/s")
        logging.getLogger("trio_failurelog").warning("dropping records: buffer full")
        out.status("  2.0 s  requests 290/s  logged 80/s")
    assert terminal.screen() == [
        "trio-failurelog: dropping records: buffer full",
        "  2.0 s  requests 290/s  logged 80/s",
    ]


def test_the_demo_warning_does_not_land_on_the_progress_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real time, 1.5 s: a progress line at 1 s, then the closing summary warning
    # (records were dropped: the buffer holds one) while that line is still shown.
    terminal = Terminal()
    monkeypatch.setattr(sys, "stdout", TTY(terminal))
    monkeypatch.setattr(sys, "stderr", TTY(terminal))
    db = tmp_path / "demo.db"
    code = main(
        ["--color", "never", "demo", "--db", str(db), "--duration", "1.5", "--rate", "2000",
         "--capacity", "1", "--seed", "1"]
    )  # fmt: skip
    assert code == 0
    screen = terminal.screen()
    warnings = [line for line in screen if line.startswith("trio-failurelog: ")]
    assert any("dropped" in line for line in warnings), screen
    assert all("requests" not in line for line in warnings), screen
    assert not any("trio-failurelog: " in line[1:] for line in screen), screen


def test_warnings_still_reach_other_handlers(
    capsys: pytest.CaptureFixture[str], db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with _cli._library_log_to(sys.stderr):
        logging.getLogger("trio_failurelog").warning("seen twice")
    assert "seen twice" in caplog.text
    assert capsys.readouterr().err == "trio-failurelog: seen twice\n"


# ------------------------------------------------------------ stored text on a terminal

_SGR = re.compile(r"\x1b\[[0-9;]*m")  # rich's own colour sequences (--color always)
#: Characters a terminal may act on rather than show: controls, format characters.
_ACTED_ON = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_TYPED = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30)  # no surrogates


def _shown_everything(argv: list[str]) -> str:
    """stdout of a report, or of a tail's first look (then Ctrl-C), in this process."""
    stdout, stderr = io.StringIO(), io.StringIO()

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        patch.setattr(_cli, "sleep", interrupt)
        code = main(argv)
    assert code in (0, 130), stderr.getvalue()
    return stdout.getvalue()


def _acted_on(text: str) -> list[str]:
    return [char for char in text if char != "\n" and unicodedata.category(char) in _ACTED_ON]


@settings(max_examples=40, deadline=None)
@given(query=_TYPED, strategy=_TYPED, context=_TYPED)
def test_what_users_typed_reaches_the_terminal_as_text(
    tmp_path_factory: pytest.TempPathFactory, query: str, strategy: str, context: str
) -> None:
    """Escape sequences (cursor moves, a cleared screen, a window title), bidi
    overrides and the like in any stored text column are shown escaped by
    report and tail, in plain and in rich output, never sent to the terminal."""
    rows = [
        row("error", strategy, query, "2024-06-01 00:00:00", error_context=context),
        row("low_confidence", strategy, query, "2024-06-01 00:00:01", top_score=0.2, threshold=0.5),
    ]
    db = str(make_db(tmp_path_factory.mktemp("typed") / "f.db", rows))
    for argv in (
        ["--color", "never", "report", db],
        ["--color", "never", "tail", db],
        *(
            (["--color", "always", "report", db], ["--color", "always", "tail", db])
            if rich_available()
            else ()
        ),
    ):
        shown = _SGR.sub("", _shown_everything(argv))
        assert _acted_on(shown) == [], argv


@pytest.mark.usefixtures("rich_installed")
def test_rich_markup_in_stored_text_is_shown_as_written(tmp_path: Path) -> None:
    markup = "[bold red]boom[/bold red]"
    rows = [row("no_hit", markup, markup, "2024-06-01 00:00:00")] * 2  # a repeated query too
    db = str(make_db(tmp_path / "f.db", rows))
    for command in ("report", "tail"):
        shown = _SGR.sub("", _shown_everything(["--color", "always", command, db]))
        assert markup in shown, command
