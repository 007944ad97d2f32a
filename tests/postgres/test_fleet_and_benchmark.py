"""The fleet (processes logging into one table at once) and the benchmark's smoke run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from benchmarks.postgres import fleet

from ._server import PgServer

ROOT = Path(__file__).resolve().parent.parent.parent


def test_eight_processes_exact_totals(pg_url: str) -> None:
    # 8 processes x 2,000 here; the benchmark runs 8 x 25,000.
    result = fleet(pg_url, processes=8, records=2000)
    assert result["failed"] == 0
    assert result["rows"] == result["written"] == 16_000
    assert result["exact"] is True


def _smoke(figure: str, pg_url: str, out: Path) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks --smoke --only figure`` on the test's server."""
    return subprocess.run(
        [
            *(sys.executable, "-W", "error", "-m", "benchmarks", "--smoke"),
            *("--only", figure, "--pg-url", pg_url, "--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # a safety net against a hang, not a timing check
        check=False,
    )


def test_benchmark_smoke(pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = _smoke("postgres", pg_url, out)
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text(encoding="utf-8"))
    pg = results["postgres"]
    for name in ("raw", "raw_binary", "ours"):
        assert math.isfinite(pg["throughput"]["records_per_second"][name])
    for ratio in ("ours_vs_raw", "ours_vs_raw_binary"):
        assert math.isfinite(pg["throughput"]["ratios"][ratio])
    assert pg["fleet"]["exact"] is True
    assert {target["key"] for target in results["targets"]} == {"pg_raw", "pg_fleet_exact"}
    assert sum(1 for line in done.stdout.splitlines() if line.startswith("| 6 |")) == 6
    assert "Pw-9zQx7vLk" not in done.stdout + done.stderr + out.read_text(encoding="utf-8")


def test_partitions_benchmark_smoke(pg_server: PgServer, pg_url: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = _smoke("partitions", pg_url, out)
    assert done.returncode == 0, done.stderr
    parts = json.loads(out.read_text(encoding="utf-8"))["partitions"]
    delete, drop = parts["delete_purge"], parts["partition_purge"]
    # The same rows purged both ways, a third of them; whole days dropped.
    assert delete["deleted"] == drop["deleted"]
    assert abs(delete["deleted"] - parts["rows"] // 3) <= 1  # created_at is to the millisecond
    assert delete["rows_after"] == drop["rows_after"] == parts["rows"] - delete["deleted"]
    assert delete["partitions_dropped"] == 0
    assert drop["partitions_dropped"] >= 29
    assert 0 <= drop["deleted_in_boundary_partition"] < drop["deleted"]
    assert math.isfinite(parts["ratios"]["delete_vs_partition_drop"])
    assert math.isfinite(parts["writer"]["partitioned_vs_plain"])
    assert "Figure 9: PostgreSQL retention" in done.stdout
    assert "Pw-9zQx7vLk" not in done.stdout + done.stderr + out.read_text(encoding="utf-8")
