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

import pytest

CHILD = textwrap.dedent(
    """
    import signal, sys, threading, trio
    # A shell starting the suite in the background (`pytest &`) hands its
    # children SIGINT ignored, and trio only catches SIGINT when it has the
    # default handler: this child is the program a user would run, so it gets it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from trio_failurelog import RetrievalFailureRecord, open_failure_logger
    from trio_failurelog._sqlite import SQLiteStore

    never = threading.Event()
    def hung_write(self, items, **kwargs):
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
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "f.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:  # closes the pipes however the test ends
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


# Every test that sends SIGINT. Each must pass in a process that inherited
# SIGINT ignored, as a suite started with `pytest &` from a script does.
SIGINT_TESTS = [
    "tests/reliability/test_interrupts.py::"
    "test_second_interrupt_while_draining_ends_the_program_cleanly",
    "tests/reliability/test_cancellation.py::test_keyboard_interrupt_during_a_write",
]

# Ignores SIGINT, then becomes pytest: the disposition survives exec.
IGNORING_LAUNCHER = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pytest', *sys.argv[1:]])"
)


@pytest.mark.parametrize("test_id", SIGINT_TESTS)
def test_sigint_tests_pass_when_started_with_sigint_ignored(test_id: str) -> None:
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", IGNORING_LAUNCHER, "-q", "-p", "no:cacheprovider", test_id],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
