"""OpenTelemetry metrics: observable instruments that read a logger's counters.

Nothing here touches the recall path. The instruments are *observable*: the
metrics SDK calls back at collection time, on whatever thread its reader or
exporter runs, and each callback reads :meth:`RetrievalFailureLogger.statistics`,
which only copies counters (under a ``threading.Lock`` held for a few reads).

This module imports only the standard library at import time, so that
``trio_failurelog`` keeps importing without the ``otel`` extra;
``opentelemetry`` is imported when :func:`instrument` is called.

Instruments are created once per meter provider and observe every logger
registered with that provider: the OpenTelemetry SDK keeps the first
instrument of a given name on a meter and ignores the callbacks of a second
one, so per-logger instruments would silently lose all loggers but the first.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from ._extras import install_hint
from ._logger import LoggerStatistics, RetrievalFailureLogger
from ._record import _repair_text
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation

__all__ = ["Instrumentation", "instrument"]

#: The instrumentation scope's name (its version is the package's).
SCOPE_NAME: Final = "trio_failurelog"
#: The store, as OpenTelemetry's registry attribute for a database system;
#: its well-known values include exactly ``sqlite`` and ``postgresql``.
STORE_ATTRIBUTE: Final = "db.system.name"
#: The database, named as messages name it (never with a password). Not the
#: registry's ``db.namespace``, which means the database name alone.
DATABASE_ATTRIBUTE: Final = "trio_failurelog.database"
#: Why records were dropped: ``full`` or ``closed``. Namespaced, as OpenTelemetry's
#: naming rules ask of an application's own attributes (a bare ``reason`` is ambiguous).
DROP_REASON_ATTRIBUTE: Final = "trio_failurelog.drop.reason"

_Pairs = tuple[tuple[str, str], ...]  # attributes, hashable
_Reading = Callable[[LoggerStatistics], Iterable[tuple[int, _Pairs]]]


@dataclass(frozen=True, slots=True)
class _Spec:
    name: str
    kind: Literal["counter", "up_down_counter"]
    unit: str
    description: str
    read: _Reading


def _field(name: str) -> _Reading:
    def read(stats: LoggerStatistics) -> Iterable[tuple[int, _Pairs]]:
        return ((getattr(stats, name), ()),)

    return read


def _dropped(stats: LoggerStatistics) -> Iterable[tuple[int, _Pairs]]:
    return (
        (stats.dropped_full, ((DROP_REASON_ATTRIBUTE, "full"),)),
        (stats.dropped_closed, ((DROP_REASON_ATTRIBUTE, "closed"),)),
    )


# Names follow OpenTelemetry's conventions: dotted lower-case under the
# library's own namespace, a singular namespace (``record``) with the event as
# the leaf, as in ``system.network.packet.dropped``; a countable leaf is plural
# (``batches``, ``retries``); no ``_total``. Units are UCUM annotations. The
# queue's instruments mirror the SDK's own ``otel.sdk.processor.*.queue.size``
# and ``.capacity``: UpDownCounters, since queued records of several loggers
# add up meaningfully (a gauge's values would not).
INSTRUMENTS: Final[tuple[_Spec, ...]] = (
    _Spec(
        "trio_failurelog.record.accepted",
        "counter",
        "{record}",
        "Records taken by log(), send() or log_threadsafe().",
        _field("accepted"),
    ),
    _Spec(
        "trio_failurelog.record.dropped",
        "counter",
        "{record}",
        "Records refused because the buffer was full or the logger was closed.",
        _dropped,
    ),
    _Spec(
        "trio_failurelog.record.written",
        "counter",
        "{record}",
        "Records committed to the database.",
        _field("written"),
    ),
    _Spec(
        "trio_failurelog.record.failed",
        "counter",
        "{record}",
        "Accepted records that will never be written.",
        _field("failed"),
    ),
    _Spec(
        "trio_failurelog.record.redaction_failed",
        "counter",
        "{record}",
        "Records stored with a text replaced by the redaction-failed marker.",
        _field("redaction_failed"),
    ),
    _Spec(
        "trio_failurelog.record.purged",
        "counter",
        "{record}",
        "Rows deleted by the retention purge.",
        _field("purged"),
    ),
    _Spec(
        "trio_failurelog.batches",
        "counter",
        "{batch}",
        "Batches the writer has handed to the database.",
        _field("batches"),
    ),
    _Spec(
        "trio_failurelog.retries",
        "counter",
        "{retry}",
        "Times a batch or purge was retried because the database was busy or locked.",
        _field("retries"),
    ),
    _Spec(
        "trio_failurelog.queue.size",
        "up_down_counter",
        "{record}",
        "Accepted records not yet written or failed.",
        _field("queued"),
    ),
    _Spec(
        "trio_failurelog.queue.capacity",
        "up_down_counter",
        "{record}",
        "How many records the logger's buffer holds.",
        _field("capacity"),
    ),
)

_MISSING_EXTRA: Final = f"OpenTelemetry metrics need the 'otel' extra: {install_hint('otel')}"


class _Registry:
    """The instruments on one meter provider, and the loggers they observe."""

    def __init__(self, meter: Meter, observation: type[Observation]) -> None:
        self._lock = threading.Lock()
        self._observed: dict[RetrievalFailureLogger, _Pairs] = {}
        self._observation = observation
        for spec in INSTRUMENTS:
            create = (
                meter.create_observable_counter
                if spec.kind == "counter"
                else meter.create_observable_up_down_counter
            )
            create(
                spec.name,
                callbacks=[self._callback(spec.read)],
                unit=spec.unit,
                description=spec.description,
            )

    def add(self, logger: RetrievalFailureLogger, attributes: _Pairs) -> None:
        with self._lock:
            if logger in self._observed:
                raise ValueError(
                    "logger is already instrumented on this meter provider; "
                    "close() the first Instrumentation before instrumenting it again"
                )
            self._observed[logger] = attributes

    def remove(self, logger: RetrievalFailureLogger) -> None:
        with self._lock:
            self._observed.pop(logger, None)

    def _callback(self, read: _Reading) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            # Runs on the collecting thread. Copy the registrations, then read
            # each logger with our lock released: statistics() takes its own.
            with self._lock:
                observed = list(self._observed.items())
            # Loggers on the same database share one series: an observable
            # instrument takes one value per attribute set, so they are summed.
            totals: dict[_Pairs, int] = {}
            for logger, base in observed:
                for value, extra in read(logger.statistics()):
                    key = base + extra
                    totals[key] = totals.get(key, 0) + value
            observation = self._observation
            return [observation(value, dict(key)) for key, value in totals.items()]

        return observe


# A registry lives as long as its provider: its instruments cannot be taken
# back from the meter, and a second set would be ignored. The global provider
# has one registry, whether it was a proxy (no provider set yet) or the real one
# when first instrumented: instruments made on the proxy move to the real one.
_registries: weakref.WeakKeyDictionary[Any, _Registry] = weakref.WeakKeyDictionary()
_global_registry: _Registry | None = None
_registries_lock = threading.Lock()


def _registry_for(meter_provider: MeterProvider | None) -> _Registry:
    global _global_registry
    from opentelemetry import metrics  # the optional extra

    current_global = metrics.get_meter_provider()
    with _registries_lock:
        if meter_provider is None or meter_provider is current_global:
            registry = _global_registry or _registries.get(current_global)
            if registry is None:
                meter = current_global.get_meter(SCOPE_NAME, __version__)
                registry = _Registry(meter, metrics.Observation)
            _global_registry = registry
            return registry
        registry = _registries.get(meter_provider)
        if registry is None:
            meter = meter_provider.get_meter(SCOPE_NAME, __version__)
            registry = _Registry(meter, metrics.Observation)
            _registries[meter_provider] = registry
        return registry


def _database_attribute(logger: RetrievalFailureLogger) -> str:
    """``logger.database_label``, repaired to text UTF-8 can encode: a path from
    an undecodable file name holds lone surrogates, and an exporter would fail
    on every collection."""
    return _repair_text(logger.database_label)


class Instrumentation:
    """What :func:`instrument` returns: :meth:`close` stops observing the logger.

    Also a context manager that closes on exit. Holds the logger until closed.
    """

    __slots__ = ("_closed", "_logger", "_registry")

    def __init__(self, registry: _Registry, logger: RetrievalFailureLogger) -> None:
        self._registry = registry
        self._logger = logger
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop observing the logger; idempotent.

        Later collections report nothing for it: its series end, and the
        registry drops its reference to the logger. The instruments stay
        registered with the meter (OpenTelemetry cannot unregister them) and
        go on observing the provider's other loggers. Blocks only for a
        lock held during a collection's copy of the registrations.
        """
        if not self._closed:
            self._closed = True
            self._registry.remove(self._logger)

    def __enter__(self) -> Instrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def instrument(
    logger: RetrievalFailureLogger, *, meter_provider: MeterProvider | None = None
) -> Instrumentation:
    """Publish ``logger``'s counters as OpenTelemetry metrics until closed.

    ::

        with instrument(logger):
            ...

    Registers observable instruments (once per meter provider) whose callbacks
    read :meth:`RetrievalFailureLogger.statistics` at collection time:
    counters ``trio_failurelog.record.accepted``, ``.dropped`` (attribute
    ``trio_failurelog.drop.reason``: ``full`` or ``closed``), ``.written``,
    ``.failed``, ``.redaction_failed``, ``.purged``, ``trio_failurelog.batches``,
    ``trio_failurelog.retries``, and UpDownCounters
    ``trio_failurelog.queue.size`` and ``trio_failurelog.queue.capacity``, in
    ``{record}`` (``{batch}``, ``{retry}``). Every point carries
    ``db.system.name`` (``sqlite`` or ``postgresql``) and
    ``trio_failurelog.database`` (the path, or the URL without its password).
    The meter comes from ``meter_provider``, or the global provider; its
    instrumentation scope is ``trio_failurelog`` with the package's version.

    Nothing changes on the recall path. A collection runs on the reader's or
    exporter's own thread; it never blocks, except on two locks (``threading.Lock``)
    each held for a few reads: the registry's, and the one ``statistics()``
    shares with ``log_threadsafe()``. Values read by different instruments of
    one collection may differ by the records that moved in between. Loggers
    on the same database are summed into one series (closing one of them
    then lowers the sum, which backends read as a counter reset).

    Can be called before or after the logger runs, and works the same for
    every store. With the global provider, instrumenting before
    ``set_meter_provider`` works (the instruments move to the real provider),
    but then instrument no logger with that provider explicitly before it is
    set: OpenTelemetry would keep only one of the two sets of instruments.

    Returns an :class:`Instrumentation` whose ``close()`` stops observing;
    until then the provider's registry keeps ``logger`` alive.

    Raises :exc:`ImportError` naming the ``otel`` extra when
    ``opentelemetry-api`` is not installed, :exc:`TypeError` for a
    ``logger`` that is not a :class:`RetrievalFailureLogger`, and
    :exc:`ValueError` when ``logger`` is already instrumented on that provider.
    """
    if not isinstance(logger, RetrievalFailureLogger):
        raise TypeError(f"logger must be a RetrievalFailureLogger, not {type(logger).__name__}")
    try:
        import opentelemetry.metrics  # noqa: F401 - the optional extra
    except ImportError as exc:
        raise ImportError(_MISSING_EXTRA, name="opentelemetry") from exc
    if meter_provider is not None and not callable(getattr(meter_provider, "get_meter", None)):
        raise TypeError(
            f"meter_provider must be an OpenTelemetry MeterProvider or None, "
            f"not {type(meter_provider).__name__}"
        )
    attributes: _Pairs = (
        (STORE_ATTRIBUTE, logger.store_kind),
        (DATABASE_ATTRIBUTE, _database_attribute(logger)),
    )
    registry = _registry_for(meter_provider)
    registry.add(logger, attributes)
    return Instrumentation(registry, logger)
