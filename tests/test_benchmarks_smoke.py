"""A tiny run of the whole benchmark harness, so that it never rots.

Checks that every figure is reported and that the accounting is exact. It never
checks a timing target: CI machines are noisy, and benchmarks are not tests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

HOT_PATH = (
    "send_nowait_accepted",
    "log_accepted",
    "send_nowait_full",
    "log_dropped",
    "construct",
    "construct_and_log",
)
CONTENDERS = ("raw", "ours", "ours_on_loop", "ours_redacted", "peer_a", "peer_b", "peer_c")
LATENESS = ("ours", "ours_on_loop", "idle")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench-results.json"
    done = subprocess.run(
        [
            *(sys.executable, "-W", "error", "-m", "benchmarks", "--smoke", "--out", str(out)),
            # postgres: in tests/postgres
            *("--only", "memory,hot_path,throughput,latency,reading,retention"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a safety net against a hang, not a timing check
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return results, done.stdout


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_meta_names_the_machine_and_parameters(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, _ = smoke_run
    versions = results["meta"]["versions"]
    assert versions["python"] == sys.version.split()[0]
    assert versions["sqlite"]
    assert results["meta"]["smoke"] is True
    parameters = results["parameters"]
    assert parameters["defaults"]["synchronous"] == "NORMAL"
    assert parameters["throughput_records"] > 0


def test_hot_path_reports_every_contender(smoke_run: tuple[dict[str, Any], str]) -> None:
    hot = smoke_run[0]["hot_path"]
    for name in HOT_PATH:
        assert _finite(hot["net_ns"][name])
        assert len(hot["samples_ns"][name]) == hot["repeats"]
    assert _finite(hot["ratios"]["log_accepted_vs_send_nowait"])
    assert _finite(hot["ratios"]["log_dropped_vs_send_nowait_full"])
    for stats in hot["logger_statistics"]:
        assert stats["written"] == stats["accepted"]
        assert stats["failed"] == 0


def test_throughput_reports_every_contender(smoke_run: tuple[dict[str, Any], str]) -> None:
    results = smoke_run[0]
    throughput = results["throughput"]
    for name in CONTENDERS:
        assert _finite(throughput["records_per_second"][name])
        assert len(throughput["seconds"][name]) == throughput["repeats"]
    assert set(throughput["ratios"]) == {
        "ours_vs_raw",
        "ours_vs_peer_a",
        "ours_vs_peer_b",
        "ours_vs_peer_c",
        "ours_on_loop_vs_raw",
        "ours_redacted_vs_ours",
    }
    for name in LATENESS:
        lateness = results["responsiveness"][name]
        for key in ("p50", "p99", "max", "worst_max"):
            assert _finite(lateness[key])


def test_memory_accounting_is_exact(smoke_run: tuple[dict[str, Any], str]) -> None:
    memory = smoke_run[0]["memory"]
    account = memory["accounting"]
    assert account["exact"] is True
    assert account["accepted"] + account["dropped_full"] == memory["attempts"]
    assert account["written"] == account["accepted"] == account["rows_in_database"]
    assert account["failed"] == 0
    assert _finite(memory["rss_kb"]["peak_growth"])


def test_latency_reports_every_combination(smoke_run: tuple[dict[str, Any], str]) -> None:
    results = smoke_run[0]
    parameters = results["parameters"]
    expected = (
        len(parameters["latency_batch_sizes"])
        * len(parameters["latency_flush_intervals"])
        * len(parameters["latency_rates"])
    )
    entries = results["latency"]["results"]
    assert len(entries) == expected
    for entry in entries:
        for key in ("throughput", "drop_rate", "p50", "p99", "cpu_us_per_record"):
            assert _finite(entry[key])
        assert entry["written"] <= entry["offered"]


def test_every_target_is_judged_and_tabled(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, stdout = smoke_run
    judged = results["targets"]
    assert len(judged) == 11
    for target in judged:
        assert _finite(target["measured"])
        assert isinstance(target["held"], bool)
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    for figure in "12345":
        assert any(row.startswith(f"| {figure} |") for row in rows), figure
    assert sum(1 for row in rows if "held" in row) == len(judged)


def test_reading_reports_every_window(smoke_run: tuple[dict[str, Any], str]) -> None:
    results, stdout = smoke_run
    reading = results["reading"]
    assert reading["rows"] > 0
    # The day-only table holds exactly the rows of the last 24 h of the big one,
    # and its report counts them all.
    assert 0 < reading["day_rows"] < reading["rows"]
    assert reading["report_24h_day_only"]["total"] == reading["day_rows"]
    assert reading["report_24h_big"]["total"] == reading["day_rows"]
    assert reading["report_90d"]["total"] == reading["rows"]
    assert reading["report_90d"]["repeated"] > 0  # the generator repeats queries
    for key in ("report_24h_big", "report_24h_day_only", "report_7d", "report_90d"):
        for field in ("seconds", "cpu_seconds", "peak_rss_mb", "baseline_rss_mb"):
            assert _finite(reading[key][field]), (key, field)
    for ratio in reading["ratios"].values():
        assert _finite(ratio)
    assert "Figure 7: reading" in stdout


def test_reading_compares_the_export_with_the_plain_loop(
    smoke_run: tuple[dict[str, Any], str],
) -> None:
    results, stdout = smoke_run
    reading = results["reading"]
    # Every row written by each: the CLI's exports and the plain loop alike.
    for key in ("plain_csv_loop", "export_csv", "export_jsonl"):
        assert reading[key]["rows"] == reading["rows"], key
        for field in ("seconds", "cpu_seconds", "rows_per_second", "peak_rss_mb"):
            assert _finite(reading[key][field]), (key, field)
    # The same rows: the generator writes no formula-looking text, so the
    # export's CSV is the plain loop's, byte for byte.
    assert reading["export_csv"]["bytes"] == reading["plain_csv_loop"]["bytes"]
    assert _finite(reading["ratios"]["export_csv_vs_plain_loop"])
    assert "export csv speed / plain loop" in stdout


def test_retention_reports_every_purge_and_the_vacuum(
    smoke_run: tuple[dict[str, Any], str],
) -> None:
    results, stdout = smoke_run
    retention = results["retention"]
    third = retention["rows"] // 3
    for key in ("before", "existing", "new", "logger_before", "logger_after"):
        entry = retention[key]
        # The oldest third, give or take the generator's jitter at the cutoff.
        assert abs(entry["rows_purged"] - third) <= third // 10, key
        assert entry["commits"] > 0
        for field in ("commit_p50_ms", "commit_p99_ms", "commit_max_ms", "longest_gap_ms"):
            assert _finite(entry[field]), (key, field)
        assert _finite(entry["purge_seconds"])
        for run in entry["runs"]:  # the logger lost nothing while the purge ran
            assert (run["written"], run["failed"]) == (run["offered"] - run["dropped"], 0)
    # A file the library made shrinks as it is purged; a reference one keeps its size.
    assert retention["new"]["bytes_after"] < retention["new"]["bytes_before"]
    assert retention["existing"]["bytes_after"] >= retention["existing"]["bytes_before"]
    vacuum = retention["vacuum"]
    assert (vacuum["auto_vacuum_before"], vacuum["auto_vacuum_after"]) == ("none", "incremental")
    assert vacuum["bytes_after"] < vacuum["bytes_before"]
    assert (vacuum["written"], vacuum["failed"]) == (vacuum["offered"] - vacuum["dropped"], 0)
    assert _finite(vacuum["peak_extra_disk_bytes"])
    for ratio in retention["ratios"].values():
        assert _finite(ratio)
    assert "Figure 8: purging the oldest third" in stdout
