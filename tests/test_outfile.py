"""Output files of ``report --html`` and ``export -o``: never through a link another user
planted in a shared directory, never over the database being read (by any name)."""

from __future__ import annotations

import os
import pwd
import sqlite3
from pathlib import Path

import pytest

from ._failuredb import make_db, row
from ._helpers import run_cli as run

OUTPUTS = {
    "html": ["report", "{db}", "--html", "{target}"],
    "jsonl": ["export", "{db}", "-o", "{target}"],
    "csv": ["export", "{db}", "--format", "csv", "-o", "{target}"],
}


def argv(kind: str, db: Path | str, target: Path | str) -> list[str]:
    return [arg.format(db=db, target=target) for arg in OUTPUTS[kind]]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    return make_db(
        tmp_path / "data" / "f.db",
        [row("no_hit", "semantic", f"question {i}", f"2024-01-01 00:00:{i:02d}") for i in range(5)],
    )


def rows_in(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM memory_retrieval_failures").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def nobody() -> int:
    """The uid of another user, to own a planted link (chown needs root: CI runs as root)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run as root to chown a link to another user")
        pytest.skip("needs root to give a link to another user")
    return pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A directory like /tmp: world-writable and sticky, owned by us."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    return directory


def plant(link: Path, target: Path, uid: int) -> Path:
    link.symlink_to(target)
    os.lchown(link, uid, -1)
    return link


# ------------------------------------------------------------------ planted links


@pytest.mark.parametrize("kind", OUTPUTS)
def test_a_link_another_user_planted_in_a_sticky_directory_is_not_followed(
    capsys: pytest.CaptureFixture[str],
    db: Path,
    tmp_path: Path,
    shared: Path,
    nobody: int,
    kind: str,
) -> None:
    victim = tmp_path / "victim.conf"
    victim.write_text("precious\n")
    link = plant(shared / f"report.{kind}", victim, nobody)
    code, out, err = run(capsys, *argv(kind, db, link))
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "symbolic link owned by another user" in err
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()
    assert sorted(p.name for p in shared.iterdir()) == [link.name]  # no temporary left


def test_a_planted_link_on_the_way_to_the_file_is_not_followed(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, shared: Path, nobody: int
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "out.jsonl").write_text("keep\n")
    plant(shared / "dir", elsewhere, nobody)
    code, _, err = run(capsys, *argv("jsonl", db, shared / "dir" / "out.jsonl"))
    assert code == 1, err
    assert "symbolic link owned by another user" in err
    assert (elsewhere / "out.jsonl").read_text() == "keep\n"


def test_a_link_planted_in_a_sticky_directory_pointing_to_a_planted_link_is_refused(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, shared: Path, nobody: int
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    inner = plant(shared / "inner", victim, nobody)
    outer = shared / "outer.jsonl"
    outer.symlink_to(inner)  # ours; the link it leads to is not
    code, _, err = run(capsys, *argv("jsonl", db, outer))
    assert code == 1, err
    assert victim.read_text() == "precious\n"


def test_links_the_rule_allows_are_followed(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, shared: Path, nobody: int
) -> None:
    # Our own link in the shared directory; another user's link in a directory
    # that is not sticky (only its owner could have put it there); a link owned
    # by the sticky directory's owner.
    ours_target = tmp_path / "ours.jsonl"
    (shared / "ours.jsonl").symlink_to(ours_target)
    plain = tmp_path / "plain"
    plain.mkdir()
    theirs_target = tmp_path / "theirs.jsonl"
    plant(plain / "theirs.jsonl", theirs_target, nobody)
    owned = tmp_path / "owned"
    owned.mkdir()
    owned.chmod(0o1777)
    os.chown(owned, nobody, -1)
    owner_target = tmp_path / "owner.jsonl"
    plant(owned / "owner.jsonl", owner_target, nobody)
    for link, target in (
        (shared / "ours.jsonl", ours_target),
        (plain / "theirs.jsonl", theirs_target),
        (owned / "owner.jsonl", owner_target),
    ):
        code, _, err = run(capsys, *argv("jsonl", db, link))
        assert code == 0, (link, err)
        assert link.is_symlink()
        assert len(target.read_text().splitlines()) == 5


def test_a_loop_of_links_is_one_line(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    code, _, err = run(capsys, *argv("jsonl", db, tmp_path / "a"))
    assert code == 1
    assert err.count("\n") == 1
    assert "Too many levels of symbolic links" in err


# ------------------------------------------------------------------ the database itself


def names_of_the_database(db: Path, tmp_path: Path) -> list[Path | str]:
    """Every way of naming the database file: as given, relative with detours, through
    a link, through a linked directory, through a hard link."""
    (tmp_path / "link.db").symlink_to(db)
    (tmp_path / "linkdir").symlink_to(db.parent)
    os.link(db, tmp_path / "hard.db")
    return [
        db,
        db.parent / ".." / db.parent.name / db.name,
        tmp_path / "link.db",
        tmp_path / "linkdir" / db.name,
        tmp_path / "hard.db",
    ]


@pytest.mark.parametrize("kind", OUTPUTS)
def test_the_database_being_read_is_never_written_over(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, kind: str
) -> None:
    before = db.read_bytes()
    for name in names_of_the_database(db, tmp_path):
        for read_as in (db, tmp_path / "link.db"):
            code, out, err = run(capsys, *argv(kind, read_as, name))
            assert code == 1, (name, err)
            assert out == ""
            assert err == (
                f"trio-failurelog: error: cannot write {str(name)!r}: it is the database being "
                "read (or its -wal, -shm or -journal file); choose another file\n"
            )
    assert db.read_bytes() == before
    assert rows_in(db) == 5


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
@pytest.mark.parametrize("exists", [True, False])
def test_the_databases_companion_files_are_never_written(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path, suffix: str, exists: bool
) -> None:
    companion = Path(f"{db}{suffix}")
    if exists:
        companion.write_bytes(b"")
    else:
        companion.unlink(missing_ok=True)
    (tmp_path / f"link{suffix}").symlink_to(companion)
    (tmp_path / "x").mkdir()
    for name in (
        companion,
        tmp_path / f"link{suffix}",
        tmp_path / "x" / ".." / "data" / companion.name,
    ):
        for kind in OUTPUTS:
            code, _, err = run(capsys, *argv(kind, db, name))
            assert code == 1, (name, err)
            assert "it is the database being read" in err
    # Reading a WAL database may create its -wal and -shm: they hold none of our output.
    if companion.exists():
        assert b"question" not in companion.read_bytes()
        assert b"DOCTYPE" not in companion.read_bytes()
    assert rows_in(db) == 5


def test_another_file_beside_the_database_is_written(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    target = db.with_suffix(".html")
    code, _, err = run(capsys, *argv("html", db, target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
