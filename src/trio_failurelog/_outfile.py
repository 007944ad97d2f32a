"""Files the command line writes: owner-only from the first byte, replaced atomically.

The database is created 0600 because queries hold what users typed; a report or
an export holds the same text, so it gets the same protection. Changing the mode
after writing would leave a window in which the text is readable by anyone, and
an existing 0644 file may already be open in another process (permissions are
checked at open only), so the text is written to a new file created 0600
(``O_EXCL``, by :func:`tempfile.mkstemp`) next to the target, then renamed over
it. An interrupted write leaves the old file (or none), never half a new one.

A target that exists and is not a regular file (``/dev/stdout``, a FIFO) is
written in place, without ever being created. Everything here blocks on the
file system.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from typing import TextIO

__all__ = ["private_text_file"]


@contextlib.contextmanager
def private_text_file(path: str, *, newline: str | None = None) -> Iterator[TextIO]:
    """Open ``path`` for writing UTF-8 text readable by its owner only (0600).

    The text goes to a temporary file beside ``path`` that is renamed over it
    when the block ends normally; if the block raises (KeyboardInterrupt
    included), the temporary file is removed and ``path`` is left as it was.
    A symbolic link to a file is followed (the file is replaced, the link kept).
    ``newline`` is :func:`open`'s (``""`` for csv).

    Raises :exc:`OSError` when the file cannot be created or written (a
    missing directory, no permission, a directory at ``path``, a full disk).
    """
    try:
        info = os.stat(path)  # through symbolic links: /dev/stdout is one
    except FileNotFoundError:
        info = None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(21, "Is a directory", path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        # A device or FIFO: write into it; without O_CREAT nothing can be created here.
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        return
    if info is not None:
        path = os.path.realpath(path)  # a link to a file: replace the file, keep the link
    directory, name = os.path.split(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
