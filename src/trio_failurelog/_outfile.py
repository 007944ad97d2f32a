"""Files the command line writes: owner-only from the first byte, replaced atomically,
never through a link another user planted, never over the database being read.

The database is created 0600 because queries hold what users typed; a report or
an export holds the same text, so it gets the same protection. Changing the mode
after writing would leave a window in which the text is readable by anyone, and
an existing 0644 file may already be open in another process (permissions are
checked at open only), so the text is written to a new file created 0600
(``O_EXCL``, by :func:`tempfile.mkstemp`) next to the target, then renamed over
it. An interrupted write leaves the old file (or none), never half a new one.

Symbolic links are followed as the kernel's ``protected_symlinks`` rule allows,
whether or not the host turns that rule on (many containers do not): a link in
a sticky, world-writable directory (``/tmp``) is followed only when it belongs
to the user running the command or to the directory's owner. Any other user
could have planted it there to make us replace a file of theirs choosing. Every
link on the way is checked, the directories' included.

A target that exists and is not a regular file (``/dev/stdout``, a FIFO) is
written in place, without ever being created. Everything here blocks on the
file system.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from typing import TextIO

__all__ = ["UnsafeOutputError", "private_text_file"]

#: The files beside an SQLite database that belong to it: writing over one
#: corrupts or loses the database as surely as writing over the file itself.
DATABASE_COMPANIONS = ("", "-wal", "-shm", "-journal")

# As the kernel's own limit (MAXSYMLINKS): a loop of links ends in ELOOP.
_MAX_LINKS = 40


class UnsafeOutputError(OSError):
    """Writing to the path asked for would replace what must not be replaced."""


def _is_planted(link: str, link_info: os.stat_result) -> bool:
    """Whether following ``link`` breaks the ``protected_symlinks`` rule: it sits in a
    sticky world-writable directory and belongs neither to us nor to that directory's owner."""
    directory = os.stat(os.path.dirname(link) or ".")
    shared = directory.st_mode & stat.S_ISVTX and directory.st_mode & stat.S_IWOTH
    return bool(shared) and link_info.st_uid not in (os.geteuid(), directory.st_uid)


def _resolve(path: str) -> str:
    """``path`` made absolute with every symbolic link followed, each one checked.

    Raises :exc:`UnsafeOutputError` for a link another user planted in a sticky
    world-writable directory, :exc:`OSError` (``ELOOP``) for a loop. A missing
    last component is fine (the file is to be created); the path up to it
    must then exist for the write to succeed anyway.
    """
    pending = os.path.abspath(path).split(os.sep)[1:]
    done = os.sep
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            done = os.path.dirname(done)
            continue
        candidate = os.path.join(done, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return os.path.join(candidate, *pending)
        if not stat.S_ISLNK(info.st_mode):
            done = candidate
            continue
        if _is_planted(candidate, info):
            raise UnsafeOutputError(
                errno.EPERM,
                f"{candidate} is a symbolic link owned by another user (uid {info.st_uid}) in a "
                "world-writable sticky directory; not following it",
            )
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        target = os.readlink(candidate)
        if os.path.isabs(target):
            done = os.sep
        pending[:0] = target.split(os.sep)
    return done


def _protected(databases: Iterable[str]) -> tuple[set[tuple[int, int]], set[tuple[int, int, str]]]:
    """What must not be written: the (device, inode) of every database file and
    companion that exists, and (directory device, inode, name) of every one."""
    files: set[tuple[int, int]] = set()
    names: set[tuple[int, int, str]] = set()
    for database in databases:
        with contextlib.suppress(OSError):
            info = os.stat(database)
            files.add((info.st_dev, info.st_ino))
        # The companions sit beside the file the path leads to, links followed.
        real = os.path.realpath(database)
        try:
            directory = os.stat(os.path.dirname(real))
        except OSError:
            continue
        for suffix in DATABASE_COMPANIONS:
            name = os.path.basename(real) + suffix
            names.add((directory.st_dev, directory.st_ino, name))
            with contextlib.suppress(OSError):
                info = os.stat(os.path.join(os.path.dirname(real), name))
                files.add((info.st_dev, info.st_ino))
    return files, names


def _refuse_databases(target: str, databases: Iterable[str]) -> None:
    """Raise :exc:`UnsafeOutputError` when ``target`` (links followed) is one of
    ``databases`` or their ``-wal``, ``-shm`` or ``-journal``, by any name."""
    files, names = _protected(databases)
    if not names and not files:
        return
    try:
        info = os.stat(target)
    except OSError:
        info = None
    hit = info is not None and (info.st_dev, info.st_ino) in files
    if not hit:
        try:
            directory = os.stat(os.path.dirname(target))
        except OSError:
            return
        hit = (directory.st_dev, directory.st_ino, os.path.basename(target)) in names
    if hit:
        raise UnsafeOutputError(
            errno.EEXIST,
            "it is the database being read (or its -wal, -shm or -journal file); "
            "choose another file",
        )


@contextlib.contextmanager
def private_text_file(
    path: str, *, newline: str | None = None, protect: Iterable[str] = ()
) -> Iterator[TextIO]:
    """Open ``path`` for writing UTF-8 text readable by its owner only (0600).

    The text goes to a temporary file beside ``path`` that is renamed over it
    when the block ends normally; if the block raises (KeyboardInterrupt
    included), the temporary file is removed and ``path`` is left as it was.
    A symbolic link to a file is followed (the file is replaced, the link
    kept), unless another user planted it in a sticky world-writable
    directory (see the module's docstring). ``newline`` is :func:`open`'s
    (``""`` for csv). ``protect`` names SQLite databases that must survive:
    ``path`` may not be one of them, nor their ``-wal``, ``-shm`` or
    ``-journal``, whatever path or link names them (compared by device and
    inode, and by directory and name for those that do not exist yet).

    Raises :exc:`UnsafeOutputError` (an :exc:`OSError`) for a planted link or a
    protected file, before anything is written; :exc:`OSError` when the file
    cannot be created or written (a missing directory, no permission, a
    directory at ``path``, a full disk).
    """
    real = _resolve(path)
    _refuse_databases(real, protect)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "Is a directory", path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        # A device or FIFO: write into it; without O_CREAT nothing can be created
        # here, and O_NOFOLLOW refuses a link swapped in since it was resolved.
        flags = os.O_WRONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(real, flags)
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        return
    directory, name = os.path.split(real)
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        # rename() never follows a link at its target: a link put at ``real``
        # since it was resolved is replaced itself, not what it points to.
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
