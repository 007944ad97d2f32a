"""Ctrl-C twice: the second one, while the block drains, stops the drain cleanly.

Signals go to a child process: trio handles SIGINT only in the main thread of
a program that owns it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

CHILD = textwrap.dedent(
    """
    import sys, threading, trio
    from trio_failurelog import RetrievalFailureRecord, open_failure_logger
    from trio_failurelog._sqlite_store import SQLiteStore

    never = threading.Event()
    def hung_write(self, items):
        print("draining", flush=True)
        never.wait(60)  # a disk that does not answer
    SQLiteStore.write_batch = hung_write

    async def main():
        async with open_failure_logger(sys.argv[1], drain_timeout=60, flush_interval=100) as log:
            log.log(RetrievalFailureRecord("no_hit", "semantic", "q"))
            raise KeyboardInterrupt  # the first Ctrl-C, landing in the block

    trio.run(main)
    """
)


def test_second_interrupt_while_draining_ends_the_program_cleanly(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "f.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "draining"
        child.send_signal(signal.SIGINT)  # the second Ctrl-C
        _out, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in err
    assert "TrioInternalError" not in err
    assert child.returncode != 0
