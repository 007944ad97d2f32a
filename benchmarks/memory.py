"""Figure 4: bounded memory and exact accounting under overload.

``memory_attempts`` calls of ``log()`` at full speed on a logger of capacity
``memory_capacity`` writing to a database file, in a fresh Python process (so
that nothing the harness allocated before counts). The loop yields to trio
(``trio.lowlevel.checkpoint()``) every ``memory_yield_every`` calls, as a recall
path that awaits between failures would, so that the writer runs and both
accepted and dropped records occur. The records come from a pool of 10,000
prebuilt ones, reused.

Memory: the process's resident set is read from ``/proc/self/status`` just
before the logger is opened (``VmRSS``), sampled during the run, and its peak is
taken after the ``async with`` block has exited. The peak is the kernel's
high-water mark, reset at the baseline through ``/proc/self/clear_refs``:
``VmHWM``, and ``resource.getrusage().ru_maxrss``. The latter is reported but
not trusted on its own: a process started by ``vfork``/``exec`` (as
``subprocess`` does) inherits its parent's ``ru_maxrss``, which clearing does
not reset.

Accounting: the ``True``/``False`` returns of ``log()`` are counted and compared
with the logger's statistics and with the rows in the database once closed.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

import trio

from trio_failurelog import open_failure_logger

from ._common import Params, count_rows, make_records, prepare_database, remove_database

__all__ = ["run"]

_POOL: Final = 10_000
_SAMPLES: Final = 100


def run(params: Params, directory: Path) -> dict[str, Any]:
    """Run figure 4 in a fresh interpreter; return what it measured."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.memory",
        "--attempts",
        str(params.memory_attempts),
        "--capacity",
        str(params.memory_capacity),
        "--yield-every",
        str(params.memory_yield_every),
        "--dir",
        str(directory),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory benchmark failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _status_kb(*fields: str) -> dict[str, int]:
    found: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in fields:
                found[name] = int(value.split()[0])
    return found


def _reset_peak() -> bool:
    """Reset the kernel's high-water mark of this process's RSS to its current RSS."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def _maxrss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


async def _overload(attempts: int, capacity: int, yield_every: int, path: Path) -> dict[str, Any]:
    records = make_records(min(_POOL, attempts))
    pool = len(records)
    prepare_database(path)
    gc.collect()
    peak_reset = _reset_peak()
    base_rss = _status_kb("VmRSS")["VmRSS"]
    base_maxrss = _maxrss_kb()
    sampled_peak = base_rss
    sample_every = max(1, attempts // _SAMPLES)
    accepted = dropped = 0

    start = time.perf_counter()
    async with open_failure_logger(path, capacity=capacity) as logger:
        log = logger.log
        done = 0
        while done < attempts:
            step = min(yield_every, attempts - done)
            for i in range(done, done + step):
                if log(records[i % pool]):
                    accepted += 1
                else:
                    dropped += 1
            if done // sample_every != (done + step) // sample_every:
                sampled_peak = max(sampled_peak, _status_kb("VmRSS")["VmRSS"])
            done += step
            await trio.lowlevel.checkpoint()
        pushed = time.perf_counter() - start
    closed = time.perf_counter() - start

    after = _status_kb("VmRSS", "VmHWM")
    peak_maxrss = _maxrss_kb()
    stats = logger.statistics()
    rows = count_rows(path)
    remove_database(path)
    # ru_maxrss is usable only when it was not above the baseline to begin with.
    maxrss_valid = base_maxrss <= base_rss
    peak = max(after["VmHWM"], sampled_peak, peak_maxrss if maxrss_valid else 0)
    return {
        "attempts": attempts,
        "capacity": capacity,
        "yield_every": yield_every,
        "record_pool": pool,
        "seconds_pushing": pushed,
        "seconds_until_closed": closed,
        "attempts_per_second": attempts / pushed,
        "rss_kb": {
            "baseline": base_rss,
            "peak": peak,
            "peak_growth": peak - base_rss,
            "after_close": after["VmRSS"],
            "vm_hwm_after": after["VmHWM"],
            "sampled_peak": sampled_peak,
            "ru_maxrss_baseline": base_maxrss,
            "ru_maxrss_after": peak_maxrss,
            "ru_maxrss_valid": maxrss_valid,
            "peak_reset_at_baseline": peak_reset,
        },
        "accounting": {
            "accepted_returned": accepted,
            "dropped_returned": dropped,
            "accepted": stats.accepted,
            "dropped_full": stats.dropped_full,
            "dropped_closed": stats.dropped_closed,
            "written": stats.written,
            "failed": stats.failed,
            "rows_in_database": rows,
            "exact": (
                accepted + dropped == attempts
                and stats.accepted == accepted
                and stats.dropped_full + stats.dropped_closed == dropped
                and stats.written == accepted
                and stats.failed == 0
                and rows == accepted
            ),
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--attempts", type=int, required=True)
    parser.add_argument("--capacity", type=int, required=True)
    parser.add_argument("--yield-every", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args(argv)
    result = trio.run(
        _overload, args.attempts, args.capacity, args.yield_every, args.dir / "memory.db"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
