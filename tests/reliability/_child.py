"""The program the multi-process reliability tests run as children.

``python _child.py crash DB ACKS SEED``
    Logs records numbered 0, 1, 2... (in ``conversation_id``) as fast as it
    can, and after every few hundred calls ``flush()``; when a flush returns,
    appends the number of records accepted before it to ACKS (one line, written
    straight to the OS, so it survives SIGKILL). Runs until killed.

``python _child.py contend DB SECONDS PROC READY``
    Two loggers on DB in one trio run, each fed by its own task for SECONDS;
    ``conversation_id`` is ``PROC * 10**9 + logger * 10**8 + n``. Touches READY
    once both loggers are open, and prints both loggers' statistics as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import sys

import trio

from trio_failurelog import RetrievalFailureRecord, RetrievalFailureType, open_failure_logger


def record(number: int, rng: random.Random) -> RetrievalFailureRecord:
    return RetrievalFailureRecord(
        rng.choice(list(RetrievalFailureType)),
        "semantic",
        f"query {number} " + "x" * rng.randrange(200),
        conversation_id=number,
        top_score=rng.random(),
        latency_ms=rng.randrange(1000),
        edge_types=("mentions", "follows"),
    )


async def crash(database: str, acks: str, seed: int) -> None:
    rng = random.Random(seed)
    ack_fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    async with open_failure_logger(database, flush_interval=0.02, batch_size=256) as logger:
        number = 0
        while True:
            for _ in range(rng.randrange(50, 600)):
                item = record(number, rng)
                if not logger.log(item) and not await logger.send(item):
                    raise RuntimeError("the logger closed under the child")
                number += 1
            target = number  # every record accepted before the flush below
            await logger.flush()
            stats = logger.statistics()
            if stats.failed:
                raise RuntimeError(f"records failed without a fault: {stats}")
            os.write(ack_fd, f"{target}\n".encode())


async def contend(database: str, seconds: float, proc: int, ready: str) -> None:
    rng = random.Random(proc)
    async with (
        open_failure_logger(database, flush_interval=0.05, drain_timeout=60) as first,
        open_failure_logger(database, flush_interval=0.05, drain_timeout=60) as second,
    ):
        await trio.Path(ready).touch()
        loggers = (first, second)

        async def feed(index: int) -> None:
            logger = loggers[index]
            base = proc * 10**9 + index * 10**8
            number = 0
            with trio.move_on_after(seconds):
                while True:
                    for _ in range(rng.randrange(1, 50)):
                        if not await logger.send(record(base + number, rng)):
                            raise RuntimeError("the logger closed under the child")
                        number += 1
                    await trio.sleep(rng.random() * 0.005)

        async with trio.open_nursery() as nursery:
            for index in range(len(loggers)):
                nursery.start_soon(feed, index)
    print(json.dumps([dataclasses.asdict(logger.statistics()) for logger in loggers]))


def main(argv: list[str]) -> None:
    mode, database, *rest = argv
    if mode == "crash":
        trio.run(crash, database, rest[0], int(rest[1]))
    elif mode == "contend":
        trio.run(contend, database, float(rest[0]), int(rest[1]), rest[2])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
