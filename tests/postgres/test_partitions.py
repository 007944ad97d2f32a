"""A table partitioned by ``created_at``: made by the library or by hand, written
with binary COPY, partitions made ahead and for stray rows, purged by partition."""

from __future__ import annotations

import datetime
import itertools
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trio_failurelog import (
    DatabaseSetupError,
    RetrievalFailureLogger,
    RetrievalFailureRecord,
    open_failure_logger,
)
from trio_failurelog._database import (
    PARTITION_INTERVALS,
    PartitionInterval,
    QueuedRecord,
    StoreOptions,
)
from trio_failurelog._postgres import PostgresStore
from trio_failurelog._postgres._partitions import (
    AHEAD,
    Layout,
    Partition,
    ahead_span,
    make_partitions,
    missing_ranges,
    slot,
)
from trio_failurelog._purge import purge_older_than
from trio_failurelog._table import TABLE

from .test_copy_binary import PARTITIONED, STAMPS, _reference_types, _written, records
from .test_reading import test_known_rows_read_the_same_from_both as _read_the_same_as_sqlite

DAY = 86400.0
UTC = datetime.UTC


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def text_at(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


# ---------------------------------------------------------------- pure: the intervals


@pytest.mark.parametrize(
    ("interval", "moment", "lower", "upper"),
    [
        ("day", "2026-12-07 13:05:00", "2026-12-07", "2026-12-08"),
        ("day", "2026-12-08 00:00:00", "2026-12-08", "2026-12-09"),  # the boundary instant
        ("day", "2026-12-07 23:59:59.999999", "2026-12-07", "2026-12-08"),
        ("week", "2026-12-07 00:00:00", "2026-12-07", "2026-12-14"),  # a Monday
        ("week", "2026-12-13 23:59:59", "2026-12-07", "2026-12-14"),  # the Sunday after
        ("month", "2024-02-29 12:00:00", "2024-02-01", "2024-03-01"),
        ("month", "2026-12-31 23:59:59", "2026-12-01", "2027-01-01"),
        ("day", "1969-12-31 12:00:00", "1969-12-31", "1970-01-01"),  # before the epoch
    ],
)
def test_an_interval_is_a_utc_day_iso_week_or_month(
    interval: PartitionInterval, moment: str, lower: str, upper: str
) -> None:
    assert slot(at(moment), interval) == (at(lower), at(upper))


def test_the_last_month_of_year_9999_ends_at_infinity() -> None:
    assert slot(at("9999-12-31 12:00:00"), "month") == (at("9999-12-01"), math.inf)


@pytest.mark.parametrize("interval", PARTITION_INTERVALS)
def test_ahead_reaches_the_set_number_of_intervals_past_now(interval: PartitionInterval) -> None:
    now = at("2026-12-07 13:05:00")
    start, end = ahead_span(now, interval)
    assert start == slot(now, interval)[0]
    moment, steps = start, 0
    while moment < end:
        moment = slot(moment, interval)[1]
        steps += 1
    assert (moment, steps) == (end, AHEAD[interval] + 1)


# Moments from 1990 to 2040, and existing partitions of any width among them.
MOMENTS = st.floats(min_value=at("1990-01-01"), max_value=at("2040-01-01"))


@st.composite
def layouts(draw: st.DrawFn) -> Layout:
    edges = sorted(set(draw(st.lists(MOMENTS, max_size=12))))
    pairs = [(edges[i], edges[i + 1]) for i in range(0, len(edges) - 1, 2)]
    kept = [pair for pair in pairs if draw(st.booleans())]
    return Layout(tuple(Partition(f"p{i}", lo, hi) for i, (lo, hi) in enumerate(kept)), None)


@settings(max_examples=300, deadline=None)
@given(
    layout=layouts(),
    interval=st.sampled_from(PARTITION_INTERVALS),
    spans=st.lists(
        st.tuples(MOMENTS, st.floats(min_value=-DAY, max_value=120 * DAY)).map(
            lambda span: (span[0], span[0] + span[1])
        ),
        max_size=5,
    ),
)
def test_missing_ranges_cover_every_moment_and_overlap_nothing(
    layout: Layout, interval: PartitionInterval, spans: list[tuple[float, float]]
) -> None:
    made = missing_ranges(layout, interval, spans)
    every = sorted([(p.lower, p.upper) for p in layout.partitions] + made)
    for (_lo, hi), (next_lo, _hi) in itertools.pairwise(every):
        assert hi <= next_lo  # no two overlap: PostgreSQL would refuse the attach
    for lower, upper in made:
        assert lower < upper
        slot_lower, slot_upper = slot(lower, interval)
        assert slot_lower <= lower
        assert upper <= slot_upper
    for start, end in spans:
        moments = [start] if end <= start else [start, (start + end) / 2, math.nextafter(end, 0)]
        for moment in moments:
            assert any(lo <= moment < hi for lo, hi in every), moment
    assert missing_ranges(Layout(tuple(Partition("", lo, hi) for lo, hi in every), None),
                          interval, spans) == []  # fmt: skip


# ---------------------------------------------------------------- the server


def partitions(admin: Any) -> list[tuple[str, str]]:
    """The table's partitions as the catalog has them: (name, bound), by name."""
    return sorted(
        admin.execute(
            "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            (TABLE,),
        ).fetchall()
    )


def rows_by_partition(admin: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, query in admin.execute(
        f"SELECT tableoid::regclass::text, query_text FROM {TABLE} ORDER BY id"
    ):
        found.setdefault(name, []).append(query)
    return found


@pytest.fixture
def day_store(pg_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore.open(pg_url, StoreOptions(partition_interval="day"))
    try:
        yield opened
    finally:
        opened.close()


def record(query: str, created_at: str | None = None, **fields: Any) -> RetrievalFailureRecord:
    return RetrievalFailureRecord("no_hit", "s", query, created_at=created_at, **fields)


@pytest.mark.parametrize("interval", PARTITION_INTERVALS)
async def test_the_logger_creates_a_partitioned_table_with_partitions_ahead(
    pg_url: str, admin: Any, interval: PartitionInterval
) -> None:
    with trio.fail_after(30):
        async with open_failure_logger(
            pg_url, partition_interval=interval, retention_days=None
        ) as failures:
            failures.log(record("now"))
    assert failures.statistics().written == 1
    found = admin.execute(
        "SELECT relkind, pg_get_partkeydef(oid) FROM pg_class WHERE oid = %s::regclass", (TABLE,)
    ).fetchone()
    assert found == ("p", "RANGE (created_at)")
    made = partitions(admin)
    assert len(made) == AHEAD[interval] + 1
    lower, _ = slot(time.time(), interval)
    assert made[0][0] == f"{TABLE}_p{datetime.datetime.fromtimestamp(lower, UTC):%Y%m%d}"
    assert list(rows_by_partition(admin).values()) == [["now"]]
    # The schema check of a logger without the option accepts the table as it is.
    PostgresStore.open(pg_url, StoreOptions()).close()
    # Opening again makes nothing twice.
    PostgresStore.open(pg_url, StoreOptions(partition_interval=interval)).close()
    assert partitions(admin) == made


def test_rows_go_by_binary_copy_into_their_partitions(day_store: PostgresStore, admin: Any) -> None:
    assert _reference_types(day_store) is True
    today, tomorrow = slot(time.time(), "day")
    scores = [0.42, 1 / 3, 3.3e38, 1.1754944e-38, None]
    stamps = [today, tomorrow - 1e-6, tomorrow, tomorrow + 0.5, tomorrow + DAY - 1e-6]
    items = [
        (record(f"q{i}", top_score=score, confidence_threshold=0.65), stamp)
        for i, (score, stamp) in enumerate(zip(scores, stamps, strict=True))
    ]
    # Binary and text store the same rows, float4 values included.
    assert _written(day_store, admin, items, binary=True) == _written(
        day_store, admin, items, binary=False
    )
    day = datetime.datetime.fromtimestamp(today, UTC)
    names = [f"{TABLE}_p{day + datetime.timedelta(days=n):%Y%m%d}" for n in range(2)]
    assert rows_by_partition(admin) == {names[0]: ["q0", "q1"], names[1]: ["q2", "q3", "q4"]}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(st.tuples(records(), STAMPS), min_size=1, max_size=4))
def test_any_batch_is_stored_whole_and_as_text_copy_stores_it(
    day_store: PostgresStore, admin: Any, batch: list[QueuedRecord]
) -> None:
    # Stamps from 1906 to 2096, created_at given on records: a partition is
    # made for every row that finds none, and nothing is refused for it.
    as_text = _written(day_store, admin, batch, binary=False)
    as_binary = _written(day_store, admin, batch, binary=True)
    assert as_binary == as_text
    written, rejected, _rows = as_binary
    scores = [score for r, _ in batch for score in (r.top_score, r.confidence_threshold)]
    if all(s is None or s == 0 or 1e-37 < abs(s) < 3.4e38 for s in scores):
        # (a score beyond float4's range, either end, is the server's to refuse)
        assert (written, rejected) == (len(batch), 0)


def test_a_partitioned_table_reads_as_sqlite_does(pg_url: str, admin: Any, tmp_path: Any) -> None:
    # The reader, its filters, paging and summary over partitions: the same as SQLite.
    PostgresStore.open(pg_url, StoreOptions(partition_interval="day")).close()
    make_partitions(admin, "day", [(at("2024-03-01"), at("2024-03-04"))], lock_timeout_ms=5000)
    _read_the_same_as_sqlite(pg_url, admin, tmp_path)
    assert len(rows_by_partition(admin)) == 3  # 80 rows 37 minutes apart from 03-01 noon


@pytest.mark.parametrize(
    ("column", "new_type", "value"),
    [("latency_ms", "NUMERIC", 42), ("top_score", "DOUBLE PRECISION", 0.5)],
)
def test_a_column_of_a_partitioned_table_altered_while_connected_is_written_as_text(
    day_store: PostgresStore, admin: Any, column: str, new_type: str, value: Any
) -> None:
    # No file to watch: the types are checked in each transaction.
    assert day_store.write_batch([(record("before"), time.time())]).written == 1
    admin.execute(
        f"ALTER TABLE {TABLE} ALTER COLUMN {column} TYPE {new_type} USING {column}::{new_type}"
    )
    assert _reference_types(day_store) is False
    item = (record("after", latency_ms=42, top_score=0.5), time.time())
    assert day_store.write_batch([item]).written == 1
    found = admin.execute(f"SELECT {column} FROM {TABLE} WHERE query_text = 'after'").fetchone()
    assert found == (value,)


async def test_a_record_beyond_the_prepared_partitions_is_not_lost(pg_url: str, admin: Any) -> None:
    _, horizon = ahead_span(time.time(), "day")
    stray = {
        "far future": "2031-05-05 12:00:00",
        "first instant past the horizon": text_at(horizon),
        "far past": "2001-01-01 00:00:00",
        "before the epoch": "1969-07-20 20:17:40",
    }
    with trio.fail_after(30):
        async with open_failure_logger(
            pg_url, partition_interval="day", retention_days=None
        ) as failures:
            for query, created_at in stray.items():
                failures.log(record(query, created_at))
            failures.log(record("now"))
            await failures.flush()
            # One by one too: a batch of only a stray row.
            failures.log(record("alone", "2033-01-01 00:00:00"))
    stats = failures.statistics()
    assert (stats.written, stats.failed) == (6, 0)
    stored = rows_by_partition(admin)
    assert sorted(q for rows in stored.values() for q in rows) == sorted([*stray, "now", "alone"])
    # Each stray row has a partition of its own day.
    for query, created_at in [*stray.items(), ("alone", "2033-01-01 00:00:00")]:
        day = datetime.datetime.fromisoformat(created_at)
        assert stored[f"{TABLE}_p{day:%Y%m%d}"] == [query]


def test_partitions_made_by_hand_are_not_overlapped(pg_url: str, admin: Any) -> None:
    # Monthly partitions by hand (as pg_partman makes them) for this month and
    # the next: a logger cutting days makes only the days after them.
    admin.execute(PARTITIONED.split(";")[0])
    month, next_month = slot(time.time(), "month")
    after = slot(next_month, "month")[1]
    for name, lower, upper in (("m0", month, next_month), ("m1", next_month, after)):
        admin.execute(
            f"CREATE TABLE {name} PARTITION OF {TABLE} FOR VALUES FROM"
            f" ('{text_at(lower)}+00') TO ('{text_at(upper)}+00')"
        )
    store = PostgresStore.open(pg_url, StoreOptions(partition_interval="day"))
    try:
        items = [(record("now"), time.time()), (record("later", text_at(after + 3 * DAY)), 0.0)]
        assert store.write_batch(items).written == 2
    finally:
        store.close()
    stored = rows_by_partition(admin)
    assert stored.pop("m0") == ["now"]
    assert list(stored.values()) == [["later"]]
    assert [name for name, _ in partitions(admin)][:2] == ["m0", "m1"]


def test_partition_interval_needs_a_partitioned_table(pg_url: str, admin: Any) -> None:
    PostgresStore.open(pg_url, StoreOptions()).close()  # the plain table
    with pytest.raises(DatabaseSetupError, match="not partitioned by range of created_at"):
        PostgresStore.open(pg_url, StoreOptions(partition_interval="week"))


@pytest.mark.parametrize("value", ["hour", "Day", "", 7])
def test_partition_interval_is_validated_at_construction(value: Any) -> None:
    with pytest.raises(ValueError, match="partition_interval must be one of"):
        RetrievalFailureLogger("postgresql://u@h/db", partition_interval=value)


def test_partition_interval_is_for_postgresql_only(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="partition_interval applies to a PostgreSQL"):
        RetrievalFailureLogger(tmp_path / "f.db", partition_interval="day")


async def test_a_fleet_opening_at_once_makes_each_partition_once(pg_url: str, admin: Any) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            for n in range(4):

                async def one(n: int = n) -> None:
                    async with open_failure_logger(
                        pg_url, partition_interval="day", retention_days=None
                    ) as failures:
                        failures.log(record(f"p{n}"))

                nursery.start_soon(one)
    assert len(partitions(admin)) == AHEAD["day"] + 1
    (count,) = admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert count == 4


# ---------------------------------------------------------------- retention


def _old_rows(store: PostgresStore, now: float) -> dict[str, float]:
    """Rows 100, 95 and 91 days old (whole old partitions), either side of the
    90-day cutoff in its day, and a day old; written with partitions made for them."""
    ages = {"d100": 100, "d95": 95, "d91": 91, "cut-1h": 90 + 1 / 24, "cut+1h": 90 - 1 / 24}
    ages["d1"] = 1
    moments = {query: now - days * DAY for query, days in ages.items()}
    # The same instant as the cutoff's day start, to hold the boundary partition steady.
    items = [(record(query, text_at(moment)), 0.0) for query, moment in moments.items()]
    assert store.write_batch(items).written == len(items)
    return moments


def _cutoff_day_start(now: float) -> float:
    return slot(now - 90 * DAY, "day")[0]


def test_retention_drops_whole_old_partitions_and_deletes_only_in_the_boundary_one(
    day_store: PostgresStore, admin: Any
) -> None:
    # A fixed "now" in the middle of a UTC day, so that the cutoff's day holds
    # rows either side of it.
    now = slot(time.time(), "day")[0] + 12 * 3600
    moments = _old_rows(day_store, now)
    before = {name for name, _ in partitions(admin)}
    cutoff = now - 90 * DAY
    deleted = day_store.purge_chunk(cutoff, 1000)
    assert deleted == 4  # d100, d95, d91 (their partitions) and cut-1h (by DELETE)
    assert day_store.purge_chunk(cutoff, 1000) == 0
    after = {name for name, _ in partitions(admin)}
    dropped = before - after
    assert dropped == {f"{TABLE}_p{datetime.datetime.fromtimestamp(moments[q], UTC):%Y%m%d}"
                       for q in ("d100", "d95", "d91")}  # fmt: skip
    boundary = f"{TABLE}_p{datetime.datetime.fromtimestamp(_cutoff_day_start(now), UTC):%Y%m%d}"
    assert boundary in after  # rows younger than the cutoff stay in it
    assert rows_by_partition(admin)[boundary] == ["cut+1h"]
    assert sorted(q for rows in rows_by_partition(admin).values() for q in rows) == [
        "cut+1h",
        "d1",
    ]


async def test_the_loggers_retention_drops_partitions(pg_url: str, admin: Any) -> None:
    store = PostgresStore.open(pg_url, StoreOptions(partition_interval="day"))
    try:
        _old_rows(store, time.time())
    finally:
        store.close()
    with trio.fail_after(30):
        async with open_failure_logger(pg_url, partition_interval="day") as failures:
            failures.log(record("new"))
            await failures.flush()
    assert failures.statistics().purged == 4
    remaining = sorted(q for rows in rows_by_partition(admin).values() for q in rows)
    assert remaining == ["cut+1h", "d1", "new"]


def test_the_manual_purge_drops_partitions(
    day_store: PostgresStore, pg_url: str, admin: Any
) -> None:
    now = slot(time.time(), "day")[0] + 12 * 3600  # as above: the boundary day holds two
    _old_rows(day_store, now)
    count = len(partitions(admin))
    cutoff = datetime.datetime.fromtimestamp(now - 90 * DAY, UTC)
    assert purge_older_than(pg_url, cutoff, dry_run=True) == 4
    assert len(partitions(admin)) == count
    progress: list[int] = []
    assert purge_older_than(pg_url, cutoff, on_progress=progress.append) == 4
    assert progress[-1] == 4
    assert len(partitions(admin)) == count - 3
    remaining = sorted(q for rows in rows_by_partition(admin).values() for q in rows)
    assert remaining == ["cut+1h", "d1"]


def test_a_default_partition_is_purged_by_delete(pg_url: str, admin: Any) -> None:
    # Made by hand: a default partition and one old partition.
    admin.execute(PARTITIONED)
    now = time.time()
    old_lower, old_upper = slot(now - 100 * DAY, "day")
    admin.execute(
        f"CREATE TABLE {TABLE}_old PARTITION OF {TABLE} FOR VALUES FROM"
        f" ('{text_at(old_lower)}+00') TO ('{text_at(old_upper)}+00')"
    )
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        items = [
            (record("in old", text_at(old_lower + 3600)), 0.0),
            (record("default, old", text_at(now - 95 * DAY)), 0.0),
            (record("default, new", text_at(now - 5 * DAY)), 0.0),
        ]
        assert store.write_batch(items).written == 3
        assert rows_by_partition(admin) == {
            f"{TABLE}_old": ["in old"],
            f"{TABLE}_rest": ["default, old", "default, new"],
        }
        assert store.purge_chunk(now - 90 * DAY, 1000) == 2
    finally:
        store.close()
    assert partitions(admin) == [(f"{TABLE}_rest", "DEFAULT")]
    assert rows_by_partition(admin) == {f"{TABLE}_rest": ["default, new"]}


def test_a_table_partitioned_otherwise_is_purged_by_delete(pg_url: str, admin: Any) -> None:
    admin.execute(
        PARTITIONED.split(";")[0]
        .replace("PRIMARY KEY (id, created_at)", "PRIMARY KEY (id, failure_type)")
        .replace("RANGE (created_at)", "LIST (failure_type)")
    )
    admin.execute(f"CREATE TABLE {TABLE}_all PARTITION OF {TABLE} DEFAULT")
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert _reference_types(store) is True
        now = time.time()
        items = [(record("old", text_at(now - 95 * DAY)), 0.0), (record("new"), now)]
        assert store.write_batch(items).written == 2
        assert store.purge_chunk(now - 90 * DAY, 1000) == 1
    finally:
        store.close()
    assert partitions(admin) == [(f"{TABLE}_all", "DEFAULT")]
    assert rows_by_partition(admin) == {f"{TABLE}_all": ["new"]}


def test_a_partition_drop_gives_way_to_a_reader(
    pg_url: str, pg_server: Any, pg_db: str, admin: Any
) -> None:
    # A report holds the table (ACCESS SHARE) in a long transaction: the drop
    # waits for its lock only busy_timeout, then the round deletes rows
    # instead; once the reader is gone, the partition is dropped.
    store = PostgresStore.open(pg_url, StoreOptions(partition_interval="day", busy_timeout=0.05))
    reader = pg_server.admin_connect(pg_db)
    try:
        now = time.time()
        items = [(record(f"old{i}", text_at(now - 95 * DAY + i)), 0.0) for i in range(5)]
        assert store.write_batch(items).written == 5
        count = len(partitions(admin))
        reader.execute("BEGIN")
        reader.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
        assert store.purge_chunk(now - 90 * DAY, 3) == 3  # a chunk of DELETE
        assert len(partitions(admin)) == count
        # Writers were not left waiting behind the drop: one goes through now.
        assert store.write_batch([(record("meanwhile"), now)]).written == 1
        # The round's further chunks go by DELETE without trying again.
        assert store.purge_chunk(now - 90 * DAY, 1) == 1
        reader.execute("COMMIT")
        # The next round (its own cutoff) drops the partition, with its last row.
        assert store.purge_chunk(now - 90 * DAY + 1, 3) == 1
        assert len(partitions(admin)) == count - 1
    finally:
        reader.close()
        store.close()


def test_two_purgers_at_once_do_not_fail(pg_url: str, admin: Any) -> None:
    store = PostgresStore.open(pg_url, StoreOptions(partition_interval="day"))
    now = time.time()
    try:
        items = [
            (record(f"d{day}-{i}", text_at(now - day * DAY)), 0.0)
            for day in range(91, 111)
            for i in range(10)
        ]
        assert store.write_batch(items).written == len(items)
    finally:
        store.close()
    results: list[int] = []
    errors: list[Exception] = []
    start = threading.Barrier(3)

    def logger_purge() -> None:
        purger = PostgresStore.open(pg_url, StoreOptions())
        try:
            start.wait()
            total = 0
            while True:  # as the logger's round does
                deleted = purger.purge_chunk(now - 90 * DAY, 50)
                total += deleted
                if deleted < 50:
                    break
            results.append(total)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            purger.close()

    def manual_purge() -> None:
        try:
            start.wait()
            results.append(purge_older_than(pg_url, datetime.timedelta(days=90), chunk_size=50))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fn) for fn in (logger_purge, logger_purge, manual_purge)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(results) == 3
    # A logger's purge skips a round another purger holds; what is left goes now.
    rest = purge_older_than(pg_url, datetime.timedelta(days=90))
    assert sum(results) + rest == len(items)
    (left,) = admin.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert left == 0


def test_the_fleets_page_conversion_by_hand_works(pg_url: str, admin: Any) -> None:
    # The SQL of docs/fleets.md, run as it is on a plain table holding rows of
    # the day its example partition covers.
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "fleets.md").read_text()
    script = page.split("```sql\n", 1)[1].split("```", 1)[0]
    PostgresStore.open(pg_url, StoreOptions()).close()  # the plain table
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
        " VALUES ('no_hit', 's', 'kept', '2026-12-07 12:00+00')"
    )
    admin.execute(script)
    store = PostgresStore.open(pg_url, StoreOptions())
    try:
        assert _reference_types(store) is True
        item = (record("new", "2026-12-07 13:00:00"), 0.0)
        assert store.write_batch([item]).written == 1
    finally:
        store.close()
    assert rows_by_partition(admin) == {f"{TABLE}_p20261207": ["kept", "new"]}
    (ids,) = admin.execute(f"SELECT array_agg(id ORDER BY id) FROM {TABLE}").fetchone()
    assert ids == [1, 2]  # the sequence went with the table


def test_a_default_partition_holding_rows_of_a_range_costs_that_partition_only(
    pg_url: str, admin: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # By hand: a default partition, holding a row of the day after tomorrow.
    admin.execute(PARTITIONED)
    today = slot(time.time(), "day")[0]
    admin.execute(
        f"INSERT INTO {TABLE} (failure_type, retrieval_strategy, query_text, created_at)"
        f" VALUES ('no_hit', 's', 'early', '{text_at(today + 2 * DAY + 60)}+00')"
    )
    store = PostgresStore.open(pg_url, StoreOptions(partition_interval="day"))
    try:
        assert store.write_batch([(record("now"), time.time())]).written == 1
    finally:
        store.close()
    day = datetime.datetime.fromtimestamp(today, UTC)
    names = {name for name, _ in partitions(admin)}
    assert f"{TABLE}_p{day + datetime.timedelta(days=2):%Y%m%d}" not in names
    assert len(names) == 1 + AHEAD["day"]  # the default, and every other day made
    assert rows_by_partition(admin) == {
        f"{TABLE}_rest": ["early"],
        f"{TABLE}_p{day:%Y%m%d}": ["now"],
    }
    assert "holds rows of its range" in caplog.text
