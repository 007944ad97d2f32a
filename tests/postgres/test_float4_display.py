"""PostgreSQL's REAL scores read as SQLite's do: 0.42, not 0.41999998688697815, in the
reader's records, ``report --json`` (what-if thresholds included), and the export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import trio

from trio_failurelog import FailureReader, RetrievalFailureRecord, open_failure_logger
from trio_failurelog._cli import main

SCORES = [(0.42, 0.7), (0.65, 0.7), (0.1, 0.15), (0.55, 0.7)]


def _log(database: str) -> None:
    async def write() -> None:
        async with open_failure_logger(database, retention_days=None) as failures:
            for i, (score, threshold) in enumerate(SCORES):
                failures.log(
                    RetrievalFailureRecord(
                        "low_confidence",
                        "keyword" if i == 2 else "semantic",
                        f"q{i}",
                        top_score=score,
                        confidence_threshold=threshold,
                    )
                )

    trio.run(write)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_scores_read_the_same_from_both_databases(
    pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lite = str(tmp_path / "f.db")
    seen: dict[str, dict[str, object]] = {}
    for name, database in (("sqlite", lite), ("postgresql", pg_url)):
        _log(database)
        with FailureReader(database) as reader:
            records = list(reader.query(oldest_first=True))
        report = json.loads(_cli(capsys, "report", database, "--json"))
        jsonl = [json.loads(line) for line in _cli(capsys, "export", database).splitlines()]
        text = _cli(capsys, "export", database, "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        seen[name] = {
            "records": [(r.top_score, r.confidence_threshold) for r in records],
            "jsonl": [(r["top_score"], r["confidence_threshold"]) for r in jsonl],
            "low_confidence": report["low_confidence"],
            "csv": [(r["top_score"], r["confidence_threshold"]) for r in rows],
        }
    pg = seen["postgresql"]
    # As written, on PostgreSQL too, in every output.
    assert pg["records"] == SCORES
    assert pg["jsonl"] == SCORES
    assert pg["csv"] == [(str(score), str(threshold)) for score, threshold in SCORES]
    report = pg["low_confidence"]
    assert isinstance(report, list)
    semantic = next(s for s in report if s["strategy"] == "semantic")
    assert (semantic["threshold"], semantic["score_min"], semantic["score_max"]) == (
        0.7,
        0.42,
        0.65,
    )
    # Down to the lowest score, in steps as written, each recovering what SQLite's does:
    # 0.65 recovers the score stored as 0.65 (compared as float4 on the server).
    assert [(w["threshold"], w["recovered"]) for w in semantic["what_if"]] == [
        (0.65, 1), (0.6, 1), (0.55, 2), (0.5, 2), (0.45, 2), (0.4, 3),
    ]  # fmt: skip
    # Everything else the same as SQLite's, to the last bit.
    assert seen["sqlite"] == pg
