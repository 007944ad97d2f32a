"""The demo: a simulated retrieval service whose failed recalls go through the library.

A trio program of many concurrent tasks, one per request, each recalling from an
in-memory corpus of a few hundred short documents with a toy scoring function.
Like a real recall layer, some recalls find nothing (``no_hit``), some find only
results under the strategy's confidence threshold (``low_confidence``), some take
longer than their ``trio.move_on_after`` budget (``timeout``) and some raise
(``error``). Halfway through, a short incident (a flaky index shard, slow
responses) makes errors and timeouts spike. Every failure is logged with
:meth:`RetrievalFailureLogger.log`, which never blocks the request.

This module prints nothing: it reports progress through a callback, and the
command line prints.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import trio

from ._database import Database
from ._lifetime import open_failure_logger
from ._logger import RetrievalFailureLogger
from ._record import RetrievalFailureRecord, RetrievalFailureType
from ._statistics import LoggerStatistics
from ._timetext import text_at

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider

__all__ = ["DemoProgress", "DemoResult", "run_demo"]

#: Every recall gets this long (seconds) before it is given up as a timeout.
RECALL_TIMEOUT: Final = 0.25

_TOPICS: Final = {
    "billing": "invoice payment card charge refund receipt vat billing subscription plan",
    "account": "password login reset email verify account username profile security token",
    "shipping": "delivery parcel courier tracking address shipping delay customs warehouse",
    "returns": "return exchange damaged label refund policy window condition warranty",
    "api": "api key endpoint rate limit webhook sdk request response pagination error",
    "privacy": "privacy data export delete gdpr consent cookie retention personal",
    "mobile": "app ios android notification update crash offline sync battery",
    "pricing": "price discount coupon tier enterprise trial upgrade downgrade annual",
}
_FILLER: Final = (
    "how", "do", "i", "can", "you", "please", "what", "is", "the", "my", "our", "for", "with",
    "when", "why",
)  # fmt: skip
_VAGUE: Final = ("thing", "stuff", "issue", "problem", "question", "help")
_UNKNOWN: Final = (
    "quantum gardening tips",
    "best pizza near the office",
    "translate poem into latin",
    "weather tomorrow in oslo",
    "who won the chess final",
)
# Questions real users keep asking that the corpus answers badly: they make the
# "most repeated failing queries" list.
_HARD: Final = (
    "Why was I charged twice?",
    "how do i   talk to a human",
    "Can I pay with crypto",
    "where is my order ???",
    "cancel everything now",
)
_EDGE_TYPES: Final = ("mentions", "related_to", "part_of", "follows")


@dataclass(frozen=True, slots=True)
class _Strategy:
    name: str
    threshold: float
    latency_ms: float  # median
    idf: bool  # weigh rare words more (the "semantic" flavour)
    graph: bool = False


_STRATEGIES: Final = (
    _Strategy("semantic", 0.55, 35, idf=True),
    _Strategy("keyword", 0.45, 8, idf=False),
    _Strategy("hybrid", 0.5, 55, idf=True),
    _Strategy("graph", 0.5, 80, idf=False, graph=True),
)


class BackendError(Exception):
    """What the simulated index raises now and then."""


class Corpus:
    """A few hundred short documents in memory, with an inverted index."""

    def __init__(self, rng: random.Random, size: int = 320) -> None:
        self.documents: list[frozenset[str]] = []
        self.index: dict[str, list[int]] = {}
        topics = list(_TOPICS.values())
        for number in range(size):
            words = topics[number % len(topics)].split()
            other = topics[rng.randrange(len(topics))].split()
            chosen = rng.sample(words, rng.randint(4, 7)) + rng.sample(other, 2)
            document = frozenset(chosen)
            self.documents.append(document)
            for word in document:
                self.index.setdefault(word, []).append(number)
        # How well each document is written: a stand-in for embedding quality.
        self.quality = [rng.uniform(0.72, 1.0) for _ in range(size)]
        self.idf = {
            word: math.log(1 + size / len(postings)) for word, postings in self.index.items()
        }

    def search(
        self, query: str, strategy: _Strategy, rng: random.Random, limit: int = 5
    ) -> list[float]:
        """Scores in [0, 1] of the best ``limit`` documents, best first."""
        words = {word.strip("?!.,") for word in query.lower().split()} - set(_FILLER)
        if not words:
            return []
        candidates: set[int] = set()
        for word in words:
            candidates.update(self.index.get(word, ()))

        def weight(word: str) -> float:
            return self.idf.get(word, 2.0) if strategy.idf else 1.0

        total = sum(weight(word) for word in words)
        scores = [
            min(
                1.0,
                sum(weight(word) for word in words & self.documents[number])
                / total
                * self.quality[number]
                * rng.uniform(0.7, 1.12),
            )
            for number in candidates
        ]
        scores.sort(reverse=True)
        return scores[:limit]


@dataclass(frozen=True, slots=True)
class DemoProgress:
    """One progress tick: rates over the last interval and the logger's counters."""

    elapsed: float
    requests_per_s: float
    logged_per_s: float
    written_per_s: float
    dropped_per_s: float
    requests: int
    statistics: LoggerStatistics


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run did. ``started_at`` is ``created_at`` text: report from there."""

    database: str
    started_at: str
    seconds: float
    requests: int
    failures: dict[str, int]
    statistics: LoggerStatistics
    #: What ``collect_metrics`` returned (``None`` without it).
    metrics: object = None
    #: Requests that had to wait for a free one of the ``concurrency`` slots.
    slot_waits: int = 0


class _Service:
    def __init__(self, logger: RetrievalFailureLogger, rng: random.Random) -> None:
        self.logger = logger
        self.rng = rng
        self.corpus = Corpus(rng)
        self.requests = 0
        self.failures: Counter[str] = Counter()
        self.incident = False
        self.turns: Counter[int] = Counter()
        self.slot_waits = 0  # requests that waited for one of the concurrency slots

    def next_query(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.74:
            words = rng.choice(list(_TOPICS.values())).split()
            return " ".join(rng.sample(_FILLER, 2) + rng.sample(words, rng.randint(2, 4)))
        if roll < 0.86:
            words = rng.choice(list(_TOPICS.values())).split()
            vague = rng.sample(_VAGUE, rng.randint(1, 3))
            return " ".join(
                [*rng.sample(_FILLER, 2), *rng.sample(words, rng.randint(1, 2)), *vague]
            )
        if roll < 0.92:
            return rng.choice(_UNKNOWN)
        return rng.choice(_HARD)

    async def recall(self, query: str, strategy: _Strategy) -> list[float]:
        rng = self.rng
        slow = 3.0 if self.incident else 1.0
        # Log-normal latency around the strategy's median, with a long tail.
        delay = strategy.latency_ms * slow * math.exp(rng.gauss(0, 0.6)) / 1000
        if rng.random() < 0.03:
            delay *= 8
        await trio.sleep(delay)
        if rng.random() < (0.25 if self.incident else 0.015):
            shard = rng.randrange(8)
            raise BackendError(f"vector index shard {shard} unavailable (connection reset)")
        return self.corpus.search(query, strategy, rng)

    async def handle(self, done: trio.Semaphore) -> None:
        try:
            await self._handle()
        finally:
            done.release()

    # recall() awaits on every path; flake8-async cannot see through the
    # move_on_after around it.
    async def _handle(self) -> None:  # noqa: ASYNC910
        rng = self.rng
        self.requests += 1
        query = self.next_query()
        strategy = rng.choice(_STRATEGIES)
        conversation = rng.randrange(1, 60)
        turn = self.turns[conversation]
        self.turns[conversation] += 1
        started = trio.current_time()
        error: BackendError | None = None
        scores: list[float] = []
        with trio.move_on_after(RECALL_TIMEOUT) as scope:  # noqa: ASYNC912  # recall() awaits
            try:
                scores = await self.recall(query, strategy)
            except BackendError as exc:
                error = exc
        latency_ms = round((trio.current_time() - started) * 1000)
        top_score: float | None = None
        threshold: float | None = None
        context: str | None = None
        if error is not None:
            failure = RetrievalFailureType.ERROR
            context = f"{type(error).__name__}: {error}"
        elif scope.cancelled_caught:
            failure = RetrievalFailureType.TIMEOUT
            context = f"no answer within {RECALL_TIMEOUT * 1000:.0f} ms"
        elif not scores:
            failure = RetrievalFailureType.NO_HIT
        elif scores[0] < strategy.threshold:
            failure = RetrievalFailureType.LOW_CONFIDENCE
            top_score = round(scores[0], 4)
            threshold = strategy.threshold
        else:
            return  # noqa: ASYNC910  # a hit: nothing to record (recall() awaited)
        record = RetrievalFailureRecord(
            failure,
            strategy.name,
            query,
            conversation_id=conversation,
            turn_index=turn,
            top_score=top_score,
            confidence_threshold=threshold,
            result_count=len(scores),
            latency_ms=latency_ms,
            edge_types=tuple(rng.sample(_EDGE_TYPES, 2)) if strategy.graph else None,
            error_context=context,
        )
        self.failures[failure.value] += 1
        self.logger.log(record)


async def run_demo(
    database: Database,
    *,
    duration: float = 10.0,
    rate: float = 200.0,
    concurrency: int = 64,
    capacity: int = 8192,
    seed: int | None = None,
    on_progress: Callable[[DemoProgress], object] | None = None,
    progress_interval: float = 1.0,
    meter_provider: MeterProvider | None = None,
    collect_metrics: Callable[[], object] | None = None,
) -> DemoResult:
    """Run the simulated retrieval service for ``duration`` seconds at ``rate`` requests/s.

    Opens a logger on ``database`` (created when missing; rows are appended
    to an existing one) with a buffer of ``capacity`` records, and runs one
    trio task per request, at most ``concurrency`` at once (the request
    generator waits when they are all busy). ``on_progress`` is called every
    ``progress_interval`` seconds, on the trio thread, with the rates of the
    last interval. With ``meter_provider`` (the ``otel`` extra), the logger is
    instrumented (:func:`trio_failurelog.instrument`) for the run, and
    ``collect_metrics()``, called once the logger has closed and before the
    instruments are removed, gives :attr:`DemoResult.metrics`. Returns once
    the logger has drained and closed.

    Blocks (awaits) for ``duration`` seconds, plus at most ``RECALL_TIMEOUT``
    for the requests in flight and the drain; when the requests cannot keep up
    with ``rate``, fewer are made, the run is not longer. Raises
    :exc:`DatabaseSetupError` when the database cannot be used, and
    :exc:`ValueError` for a non-positive ``duration``, ``rate`` or
    ``concurrency``. Cancellation stops the requests and closes the logger,
    which still writes what is queued (bounded by its ``drain_timeout``).
    """
    for name, value in (
        ("duration", duration),
        ("rate", rate),
        ("progress_interval", progress_interval),
    ):
        if not 0 < value < math.inf:
            raise ValueError(f"{name} must be positive and finite, got {value!r}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be positive, got {concurrency!r}")
    rng = random.Random(seed)
    wall_start = time.time()
    started_at = text_at(math.floor(wall_start))
    with contextlib.ExitStack() as instruments:
        async with open_failure_logger(database, capacity=capacity, retention_days=None) as logger:
            if meter_provider is not None:
                from ._otel import instrument

                instruments.enter_context(instrument(logger, meter_provider=meter_provider))
            service = _Service(logger, rng)
            start = trio.current_time()

            async def report_progress() -> None:
                previous = (start, 0, logger.statistics())
                while True:
                    await trio.sleep(progress_interval)
                    now = trio.current_time()
                    stats = logger.statistics()
                    last_time, last_requests, last_stats = previous
                    span = max(now - last_time, 1e-9)
                    dropped = stats.dropped_full + stats.dropped_closed
                    last_dropped = last_stats.dropped_full + last_stats.dropped_closed
                    if on_progress is not None:
                        on_progress(
                            DemoProgress(
                                elapsed=now - start,
                                requests_per_s=(service.requests - last_requests) / span,
                                logged_per_s=(stats.accepted - last_stats.accepted) / span,
                                written_per_s=(stats.written - last_stats.written) / span,
                                dropped_per_s=(dropped - last_dropped) / span,
                                requests=service.requests,
                                statistics=stats,
                            )
                        )
                    previous = (now, service.requests, stats)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(report_progress)
                slots = trio.Semaphore(concurrency)
                deadline = start + duration
                async with trio.open_nursery() as requests:
                    incident = (start + duration * 0.55, start + duration * 0.55 + duration * 0.12)
                    # The run ends at the deadline, not after rate * duration requests:
                    # when the requests cannot keep up with the rate (all slots busy,
                    # a busy CPU), a count would stretch the run to twice its length
                    # and more. Requests in flight then finish within RECALL_TIMEOUT.
                    # The loop sleeps until each request is due.
                    with trio.move_on_at(deadline):  # noqa: ASYNC912
                        number = 0
                        while (due := start + number / rate) < deadline:
                            await trio.sleep_until(due)
                            service.incident = incident[0] <= trio.current_time() < incident[1]
                            if slots.value == 0:
                                service.slot_waits += 1
                            await slots.acquire()
                            requests.start_soon(service.handle, slots)
                            number += 1
                await logger.flush()
                nursery.cancel_scope.cancel()
            seconds = trio.current_time() - start
        metrics = None if collect_metrics is None else collect_metrics()
    return DemoResult(
        database=str(database),
        started_at=started_at,
        seconds=seconds,
        requests=service.requests,
        failures=dict(service.failures),
        statistics=logger.statistics(),
        slot_waits=service.slot_waits,
        metrics=metrics,
    )
