"""OpenTelemetry metrics: read through the SDK's in-memory reader from real loggers."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, Sum

import trio_failurelog
from trio_failurelog import (
    TABLE,
    Instrumentation,
    RetrievalFailureLogger,
    instrument,
    open_failure_logger,
)
from trio_failurelog._otel import INSTRUMENTS

from ._helpers import record

Points = dict[tuple[str, frozenset[tuple[str, object]]], int | float]

COUNTERS = {
    "trio_failurelog.record.accepted": "{record}",
    "trio_failurelog.record.dropped": "{record}",
    "trio_failurelog.record.written": "{record}",
    "trio_failurelog.record.failed": "{record}",
    "trio_failurelog.record.purged": "{record}",
    "trio_failurelog.record.redaction_failed": "{record}",
    "trio_failurelog.batches": "{batch}",
    "trio_failurelog.retries": "{retry}",
}
UP_DOWN_COUNTERS = {
    "trio_failurelog.queue.size": "{record}",
    "trio_failurelog.queue.capacity": "{record}",
}


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def provider(reader: InMemoryMetricReader) -> MeterProvider:
    return MeterProvider(metric_readers=[reader])


def collect(reader: InMemoryMetricReader) -> MetricsData:
    data = reader.get_metrics_data()
    assert data is not None
    return data


def points(data: MetricsData) -> Points:
    """Every data point as ``(name, attributes) -> value``."""
    found: Points = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert isinstance(metric.data, Sum)
                for point in metric.data.data_points:
                    found[(metric.name, frozenset((point.attributes or {}).items()))] = point.value
    return found


def of(found: Points, name: str, **attributes: object) -> int | float:
    """The value of the one point of ``name`` whose attributes include ``attributes``."""
    matches = [
        value
        for (metric, attrs), value in found.items()
        if metric == name and set(attributes.items()) <= attrs
    ]
    assert len(matches) == 1, (name, attributes, found)
    return matches[0]


def attribute_sets(found: Points) -> set[frozenset[tuple[str, object]]]:
    return {attrs for _, attrs in found}


def refuse_poison(db_path: Path) -> None:
    """Make the database refuse rows whose query is 'poison' (as another application may)."""
    conn = sqlite3.connect(db_path)
    try:
        conn.execute(
            f"CREATE TRIGGER refuse BEFORE INSERT ON {TABLE} WHEN NEW.query_text = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
        conn.commit()
    finally:
        conn.close()


# ---------------------------------------------------------------- names, units, values


async def test_metrics_follow_a_known_sequence(
    db_path: Path,
    reader: InMemoryMetricReader,
    provider: MeterProvider,
    virtual_time: trio.testing.MockClock,
) -> None:
    async with open_failure_logger(db_path, retention_days=None) as seed:
        for i in range(6):
            seed.log(record(i, created_at="2020-01-01 00:00:00"))
    refuse_poison(db_path)

    logger = RetrievalFailureLogger(db_path, capacity=7, retention_days=90, busy_timeout=0)
    handle = instrument(logger, meter_provider=provider)
    for i in range(3):
        assert logger.log(record(i))
    before_run = points(collect(reader))
    assert of(before_run, "trio_failurelog.record.accepted") == 3
    assert of(before_run, "trio_failurelog.queue.size") == 3
    assert of(before_run, "trio_failurelog.queue.capacity") == 7

    async with trio.open_nursery() as nursery:
        await nursery.start(logger.run)  # purges the 6 rows from 2020
        logger.log(record(query_text="poison"))
        logger.log(record(3))
        logger.log(record(query_text="poison"))
        logger.log(record(query_text="poison"))
        assert not logger.log(record(97))  # full: 7 queued
        assert not logger.log(record(98))
        other = sqlite3.connect(db_path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # the writer must retry
        await trio.sleep(1)
        other.execute("COMMIT")
        other.close()
        await logger.flush()
        await logger.aclose()
    for i in range(5):
        assert not logger.log(record(100 + i))  # closed

    stats = logger.statistics()
    assert (stats.accepted, stats.written, stats.failed, stats.batches) == (7, 4, 3, 1)
    assert (stats.dropped_full, stats.dropped_closed, stats.purged) == (2, 5, 6)
    assert stats.retries > 0
    found = points(collect(reader))
    assert of(found, "trio_failurelog.record.accepted") == 7
    assert (
        of(found, "trio_failurelog.record.dropped", **{"trio_failurelog.drop.reason": "full"}) == 2
    )
    assert (
        of(found, "trio_failurelog.record.dropped", **{"trio_failurelog.drop.reason": "closed"})
        == 5
    )
    assert of(found, "trio_failurelog.record.written") == 4
    assert of(found, "trio_failurelog.record.failed") == 3
    assert of(found, "trio_failurelog.record.purged") == 6
    assert of(found, "trio_failurelog.batches") == 1
    assert of(found, "trio_failurelog.retries") == stats.retries
    assert of(found, "trio_failurelog.queue.size") == 0
    assert of(found, "trio_failurelog.queue.capacity") == 7
    assert attribute_sets(found) == {
        frozenset({("db.system.name", "sqlite"), ("trio_failurelog.database", str(db_path))}),
        frozenset(
            {
                ("db.system.name", "sqlite"),
                ("trio_failurelog.database", str(db_path)),
                ("trio_failurelog.drop.reason", "full"),
            }
        ),
        frozenset(
            {
                ("db.system.name", "sqlite"),
                ("trio_failurelog.database", str(db_path)),
                ("trio_failurelog.drop.reason", "closed"),
            }
        ),
    }
    handle.close()


def test_instruments_are_named_and_typed_as_opentelemetry_asks(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    with instrument(RetrievalFailureLogger(":memory:"), meter_provider=provider):
        data = collect(reader)
    (resource,) = data.resource_metrics
    (scope,) = resource.scope_metrics
    assert scope.scope.name == "trio_failurelog"
    assert scope.scope.version == trio_failurelog.__version__
    kinds = {}
    for metric in scope.metrics:
        assert isinstance(metric.data, Sum)
        kinds[metric.name] = (metric.unit, metric.data.is_monotonic)
        assert metric.description
    assert kinds == {
        **{name: (unit, True) for name, unit in COUNTERS.items()},
        **{name: (unit, False) for name, unit in UP_DOWN_COUNTERS.items()},
    }
    # Dotted lower-case snake_case components; no "_total"; UCUM annotations.
    for spec in INSTRUMENTS:
        assert re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+", spec.name), spec.name
        assert not spec.name.endswith("total")
        assert re.fullmatch(r"\{[a-z_]+\}", spec.unit), spec.unit


# ---------------------------------------------------------------- threads


async def test_collection_from_another_thread_while_logging(
    db_path: Path, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    async with open_failure_logger(db_path, batch_size=16, flush_interval=0.01) as logger:
        with instrument(logger, meter_provider=provider):
            seen: list[Points] = []
            for i in range(200):
                logger.log(record(i))
                if i % 40 == 0:
                    seen.append(points(await trio.to_thread.run_sync(collect, reader)))
                    await trio.lowlevel.checkpoint()
            await logger.flush()
            final = points(await trio.to_thread.run_sync(collect, reader))
    accepted = [of(found, "trio_failurelog.record.accepted") for found in seen]
    assert accepted == sorted(accepted)  # cumulative, read live
    assert accepted[0] >= 1
    assert of(final, "trio_failurelog.record.accepted") == 200
    assert of(final, "trio_failurelog.record.written") == 200
    assert of(final, "trio_failurelog.queue.size") == 0


# ---------------------------------------------------------------- attributes


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql://u:***@h/db"),
        (
            "postgres://u:s3cret@h:5433/db?password=s3cret",
            "postgres://u:***@h:5433/db?password=***",
        ),
        ("postgresql://h/db?sslpassword=s3cret&user=u", "postgresql://h/db?sslpassword=***&user=u"),
    ],
)
def test_no_password_in_attributes(
    url: str, shown: str, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    logger = RetrievalFailureLogger(url)  # constructs; nothing connects
    with instrument(logger, meter_provider=provider):
        data = collect(reader)
    assert "s3cret" not in data.to_json()
    for attrs in attribute_sets(points(data)):
        values = dict(attrs)
        assert values["db.system.name"] == "postgresql"
        assert values["trio_failurelog.database"] == shown


def test_database_attribute_is_the_path_unquoted(
    tmp_path: Path, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    path = tmp_path / 'it\'s "here".db'
    with instrument(RetrievalFailureLogger(path), meter_provider=provider):
        found = points(collect(reader))
    assert {dict(attrs)["trio_failurelog.database"] for attrs in attribute_sets(found)} == {
        str(path)
    }


def test_database_attribute_is_always_encodable(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    # A file name that was not valid UTF-8 decodes with lone surrogates.
    path = "failures-\udcff.db"
    with instrument(RetrievalFailureLogger(path), meter_provider=provider):
        data = collect(reader)
    data.to_json().encode("utf-8")
    names = {dict(attrs)["trio_failurelog.database"] for attrs in attribute_sets(points(data))}
    assert names == {"failures-\ufffd.db"}


# ---------------------------------------------------------------- several loggers, closing


def test_every_logger_on_a_provider_is_observed(
    tmp_path: Path, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    # The SDK ignores the callbacks of a second instrument of the same name:
    # per-logger instruments would report only the first logger.
    first = RetrievalFailureLogger(tmp_path / "a.db", capacity=3)
    second = RetrievalFailureLogger(tmp_path / "b.db", capacity=5)
    with instrument(first, meter_provider=provider), instrument(second, meter_provider=provider):
        found = points(collect(reader))
    capacities = {
        dict(attrs)["trio_failurelog.database"]: value
        for (name, attrs), value in found.items()
        if name == "trio_failurelog.queue.capacity"
    }
    assert capacities == {str(tmp_path / "a.db"): 3, str(tmp_path / "b.db"): 5}


def test_loggers_on_one_database_are_summed(
    db_path: Path, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    first = RetrievalFailureLogger(db_path, capacity=3)
    second = RetrievalFailureLogger(db_path, capacity=5)
    first.log(record(1))
    for i in range(2):
        second.log(record(i))
    with instrument(first, meter_provider=provider), instrument(second, meter_provider=provider):
        found = points(collect(reader))
    assert of(found, "trio_failurelog.queue.capacity") == 8
    assert of(found, "trio_failurelog.record.accepted") == 3


def test_close_stops_observing_that_logger_only(
    tmp_path: Path, reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    kept = RetrievalFailureLogger(tmp_path / "kept.db")
    gone = RetrievalFailureLogger(tmp_path / "gone.db")
    keep = instrument(kept, meter_provider=provider)
    handle = instrument(gone, meter_provider=provider)
    assert isinstance(handle, Instrumentation)
    assert len(attribute_sets(points(collect(reader)))) == 6  # 3 sets per logger
    handle.close()
    assert handle.closed
    handle.close()  # idempotent
    found = points(collect(reader))
    databases = {dict(attrs)["trio_failurelog.database"] for attrs in attribute_sets(found)}
    assert databases == {str(tmp_path / "kept.db")}
    # Closed, it can be instrumented again.
    with instrument(gone, meter_provider=provider):
        assert len(attribute_sets(points(collect(reader)))) == 6
    keep.close()
    data = reader.get_metrics_data()
    assert data is None or points(data) == {}


def test_one_logger_twice_on_one_provider_is_refused(
    reader: InMemoryMetricReader, provider: MeterProvider
) -> None:
    logger = RetrievalFailureLogger(":memory:")
    with instrument(logger, meter_provider=provider):
        with pytest.raises(ValueError, match="already instrumented"):
            instrument(logger, meter_provider=provider)
        other = MeterProvider(metric_readers=[InMemoryMetricReader()])
        instrument(logger, meter_provider=other).close()  # another provider is fine


@pytest.mark.parametrize(
    ("logger", "meter_provider", "message"),
    [
        ("failures.db", None, "logger must be a RetrievalFailureLogger, not str"),
        (RetrievalFailureLogger(":memory:"), "nope", "meter_provider must be an OpenTelemetry"),
    ],
)
def test_bad_arguments_raise_naming_them(
    logger: object, meter_provider: object, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        instrument(logger, meter_provider=meter_provider)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the global provider, the extra


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_global_provider_before_and_after_it_is_set() -> None:
    # In a child: a global provider can be set only once per process.
    result = run_python(
        """
        import json
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from trio_failurelog import RetrievalFailureLogger, instrument

        early = instrument(RetrievalFailureLogger("early.db", capacity=3))  # a proxy yet
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        metrics.set_meter_provider(provider)
        instrument(RetrievalFailureLogger("late.db", capacity=5))
        instrument(RetrievalFailureLogger("explicit.db", capacity=7), meter_provider=provider)
        found = {}
        for rm in reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == "trio_failurelog.queue.capacity":
                        for p in m.data.data_points:
                            found[p.attributes["trio_failurelog.database"]] = p.value
        print(json.dumps(found, sort_keys=True))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"early.db": 3, "explicit.db": 7, "late.db": 5}


def test_without_the_extra_the_core_imports_and_instrument_names_it() -> None:
    result = run_python(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if not installed
        import trio_failurelog
        logger = trio_failurelog.RetrievalFailureLogger(":memory:")
        try:
            trio_failurelog.instrument(logger)
        except ImportError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "the 'otel' extra: pip install 'opentelemetry-api>=" in result.stdout


def test_metric_names_are_documented_in_instrument() -> None:
    doc = instrument.__doc__ or ""
    for spec in INSTRUMENTS:
        short = spec.name.removeprefix("trio_failurelog.record")
        assert short in doc, spec.name
