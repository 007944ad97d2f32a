"""The one table, and the performance targets (docs/performance.md) judged against the figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Target", "table", "targets"]

#: 50 MB (10^6 bytes).
_MEMORY_LIMIT_MB: Final = 50.0


@dataclass(frozen=True)
class Target:
    key: str
    figure: int
    name: str
    measured: float
    comparison: str  # "<=", ">=", ">" or "=="
    limit: float
    unit: str = ""

    @property
    def held(self) -> bool:
        if self.comparison == "<=":
            return self.measured <= self.limit
        if self.comparison == ">=":
            return self.measured >= self.limit
        if self.comparison == ">":
            return self.measured > self.limit
        return self.measured == self.limit

    @property
    def goal(self) -> str:
        return f"{self.comparison} {self.limit:g}{self.unit}"

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "figure": self.figure,
            "target": self.name,
            "measured": self.measured,
            "comparison": self.comparison,
            "limit": self.limit,
            "unit": self.unit,
            "held": self.held,
        }


def targets(results: dict[str, Any]) -> list[Target]:
    """Every performance target whose figure is in ``results``."""
    found: list[Target] = []
    if "hot_path" in results:
        hot = results["hot_path"]
        found += [
            Target(
                "log_accepted",
                1,
                "log() accepted / bare send_nowait",
                hot["ratios"]["log_accepted_vs_send_nowait"],
                "<=",
                2.5,
                "x",
            ),
            Target(
                "log_dropped",
                1,
                "log() dropped / bare send_nowait on a full buffer",
                hot["ratios"]["log_dropped_vs_send_nowait_full"],
                "<=",
                2,
                "x",
            ),
            Target(
                "construct_and_log",
                1,
                "construct a record and log() it, µs",
                hot["net_ns"]["construct_and_log"] / 1000,
                "<=",
                3,
                " µs",
            ),
        ]
    if "throughput" in results:
        ratios = results["throughput"]["ratios"]
        for key, name, limit, comparison in (
            ("raw", "ours / raw sqlite3 limit", 0.85, ">="),
            ("peer_a", "ours / peer A (logging)", 5, ">="),
            ("peer_b", "ours / peer B (thread per record)", 10, ">="),
            ("peer_c", "ours / peer C (aiosqlite)", 1, ">"),
        ):
            found.append(Target(key, 2, name, ratios[f"ours_vs_{key}"], comparison, limit, "x"))
    if "responsiveness" in results:
        ours = results["responsiveness"]["ours"]
        idle = results["responsiveness"]["idle"]
        found += [
            Target(
                "p99",
                3,
                "loop lateness p99 during ours, above the idle floor, ms",
                (ours["p99"] - idle["p99"]) * 1e3,
                "<=",
                2,
                " ms",
            ),
            Target(
                "max",
                3,
                "loop lateness max during ours (median of repeats), above the idle floor, ms",
                (ours["max"] - idle["max"]) * 1e3,
                "<=",
                10,
                " ms",
            ),
        ]
    if "postgres" in results:
        pg = results["postgres"]
        found += [
            Target(
                "pg_raw",
                6,
                "PostgreSQL: ours / raw psycopg COPY",
                pg["throughput"]["ratios"]["ours_vs_raw"],
                ">=",
                0.8,
                "x",
            ),
            Target(
                "pg_fleet_exact", 6, "fleet totals exact", float(pg["fleet"]["exact"]), "==", 1.0
            ),
        ]
    if "memory" in results:
        memory = results["memory"]
        growth = memory["rss_kb"]["peak_growth"] * 1024 / 1e6
        exact = float(memory["accounting"]["exact"])
        found += [
            Target("rss", 4, "peak RSS growth, MB", growth, "<=", _MEMORY_LIMIT_MB, " MB"),
            Target("accounting", 4, "accounting exact", exact, "==", 1.0),
        ]
    return found


# ---------------------------------------------------------------------- formatting


def _ns(value: float) -> str:
    return f"{value:,.0f} ns" if value < 1000 else f"{value / 1000:,.2f} µs"


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def _ratio(value: float) -> str:
    return f"{value:,.2f}x"


def _spread(entry: dict[str, Any]) -> str:
    return (
        f"p50 {_ms(entry['p50'])}, p99 {_ms(entry['p99'])}, "
        f"max {_ms(entry['max'])}; worst repeat's max {_ms(entry['worst_max'])}"
    )


Row = tuple[str, str, str, str, str, str, str]


def _row(figure: int, what: str, value: str, versus: str = "", goal: Target | None = None) -> Row:
    """A table row; with ``goal``, its target and whether it is held (and, when
    ``versus`` names a comparison, the ratio)."""
    if goal is None:
        return (str(figure), what, value, versus, "", "", "")
    ratio = _ratio(goal.measured) if versus else ""
    held = "held" if goal.held else "**not held**"
    return (str(figure), what, value, versus, ratio, goal.goal, held)


def table(results: dict[str, Any]) -> str:
    """One Markdown table of every figure in ``results``, in a fixed order."""
    judged = {t.key: t for t in targets(results)}
    rows: list[Row] = []
    if "hot_path" in results:
        net = results["hot_path"]["net_ns"]
        rows += [
            _row(
                1,
                "bare `send_nowait` of a prebuilt object, accepted",
                _ns(net["send_nowait_accepted"]),
            ),
            _row(
                1,
                "`log(record)`, accepted",
                _ns(net["log_accepted"]),
                "bare `send_nowait`",
                judged["log_accepted"],
            ),
            _row(1, "bare `send_nowait`, buffer full (`WouldBlock`)", _ns(net["send_nowait_full"])),
            _row(
                1,
                "`log(record)`, buffer full (dropped)",
                _ns(net["log_dropped"]),
                "bare `send_nowait`, full",
                judged["log_dropped"],
            ),
            _row(1, "construct a record (validated)", _ns(net["construct"])),
            _row(
                1,
                "construct a record and `log()` it, accepted",
                _ns(net["construct_and_log"]),
                goal=judged["construct_and_log"],
            ),
            _row(
                1,
                "trio's `MemorySendChannel.send` (a checkpoint every call)",
                _ns(net["channel_send"]),
            ),
            (
                "1",
                "`await logger.send(record)`, accepted (a schedule point every 128 calls)",
                _ns(net["send"]),
                "trio's `send`",
                _ratio(results["hot_path"]["ratios"]["send_vs_channel_send"]),
                "",
                "",
            ),
            (
                "1",
                "`await logger.send(record)` + a checkpoint every call",
                _ns(net["send_checkpointed"]),
                "`send` as shipped",
                _ratio(results["hot_path"]["ratios"]["send_checkpointed_vs_send"]),
                "",
                "",
            ),
        ]
    if "throughput" in results:
        rate = results["throughput"]["records_per_second"]
        rows.append(
            _row(2, "raw sqlite3 `executemany`, prebuilt rows (the limit)", _rate(rate["raw"]))
        )
        rows.append(
            _row(
                2,
                "ours: `await logger.send()`, until the block has exited",
                _rate(rate["ours"]),
                "ours / raw",
                judged["raw"],
            )
        )
        for key, what in (
            ("peer_a", "peer A: `logging` QueueHandler + autocommit SQLite handler"),
            ("peer_b", "peer B: one `trio.to_thread.run_sync` insert+commit per record"),
            ("peer_c", "peer C: aiosqlite under asyncio, `executemany` batches"),
        ):
            versus = f"ours / peer {key[-1].upper()}"
            rows.append(_row(2, what, _rate(rate[key]), versus, judged[key]))
        rows.append(
            (
                "2",
                "variant: ours with `redact=mask_emails_and_digits`",
                _rate(rate["ours_redacted"]),
                "variant / ours",
                _ratio(results["throughput"]["ratios"]["ours_redacted_vs_ours"]),
                "",
                "",
            )
        )
        on_loop = results["throughput"]["ratios"]["ours_on_loop_vs_raw"]
        rows.append(
            (
                "2",
                "variant: ours with its SQLite calls on the loop thread",
                _rate(rate["ours_on_loop"]),
                "variant / raw",
                _ratio(on_loop),
                "",
                "",
            )
        )
    if "responsiveness" in results:
        lateness = results["responsiveness"]
        ours = lateness["ours"]
        rows += [
            _row(3, "1 ms sleeper's lateness, idle loop (the floor)", _spread(lateness["idle"])),
            _row(3, "lateness during ours (fig. 2)", _spread(ours)),
            _row(
                3,
                "p99 lateness during ours, above the idle p99",
                _ms(ours["p99"] - lateness["idle"]["p99"]),
                goal=judged["p99"],
            ),
            _row(
                3,
                "max lateness during ours (median of repeats), above the idle max",
                _ms(ours["max"] - lateness["idle"]["max"]),
                goal=judged["max"],
            ),
            _row(3, "lateness during the on-loop variant", _spread(lateness["ours_on_loop"])),
        ]
    if "memory" in results:
        memory = results["memory"]
        account = memory["accounting"]
        dropped = account["dropped_full"] + account["dropped_closed"]
        rows += [
            _row(
                4,
                f"peak RSS growth, {memory['attempts']:,} `log()`"
                f" at capacity {memory['capacity']:,}",
                f"{judged['rss'].measured:,.1f} MB",
                goal=judged["rss"],
            ),
            _row(
                4,
                "accounting: accepted + dropped = attempts; written = accepted",
                f"{account['accepted']:,} + {dropped:,} = {memory['attempts']:,};"
                f" {account['written']:,} written",
                goal=judged["accounting"],
            ),
        ]
    if "latency" in results:
        for entry in results["latency"]["results"]:
            what = (
                f"batch {entry['batch_size']:,}, flush {entry['flush_interval']:g} s,"
                f" {entry['offered_per_second']:,}/s offered"
            )
            net, gross = entry["cpu_us_per_record"], entry["cpu_us_per_record_gross"]
            # A net figure under a tenth of the gross one is the pacing loop's noise.
            cpu = (
                f"{net:,.1f} µs CPU/record"
                if net >= gross / 10
                else f"CPU/record within pacing noise ({gross:,.1f} µs with pacing)"
            )
            value = (
                f"{_rate(entry['throughput'])}, {entry['drop_rate']:.1%} dropped,"
                f" p50 {_ms(entry['p50'])}, p99 {_ms(entry['p99'])}, {cpu}"
            )
            rows.append(_row(5, what, value))
    if "postgres" in results:
        pg = results["postgres"]
        rate = pg["throughput"]["records_per_second"]
        flock = pg["fleet"]
        rows += [
            _row(
                6,
                "raw psycopg COPY `write_row`, prebuilt rows, 512/transaction (the limit)",
                _rate(rate["raw"]),
            ),
            _row(
                6,
                "raw psycopg binary COPY `write_row`, prebuilt rows, 512/transaction",
                _rate(rate["raw_binary"]),
            ),
            _row(
                6,
                "ours to PostgreSQL: `await logger.send()`, until the block has exited",
                _rate(rate["ours"]),
                "ours / raw",
                judged["pg_raw"],
            ),
            (
                "6",
                "ours against the binary limit",
                _rate(rate["ours"]),
                "ours / raw binary",
                _ratio(pg["throughput"]["ratios"]["ours_vs_raw_binary"]),
                "",
                "",
            ),
            (
                "6",
                f"fleet: {flock['processes']} processes x {flock['records_per_process']:,}"
                " records, one table",
                _rate(flock["records_per_second"]),
                "fleet / one process (ours)",
                _ratio(flock["vs_one_process"]),
                "",
                "",
            ),
            _row(
                6,
                "fleet totals: rows = written summed = records",
                f"{flock['rows']:,} rows, {flock['written']:,} written",
                goal=judged["pg_fleet_exact"],
            ),
        ]
    header: Row = (
        "fig.",
        "measurement",
        "value (median)",
        "compared with",
        "ratio",
        "target",
        "result",
    )
    lines = [_line(header), _line(("---",) * 7)]
    lines += [_line(row) for row in rows]
    return "\n".join(lines)


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"
