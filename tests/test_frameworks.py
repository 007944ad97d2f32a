"""Every example of docs/frameworks.md, run as written."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import trio

import trio_failurelog

DOCS = Path(__file__).parents[1] / "docs" / "frameworks.md"
SRC = Path(trio_failurelog.__file__).parents[1]


def example(name: str) -> str:
    found = re.search(
        rf"<!-- example: {name} -->\n```(?:python|\{{code-block\}} python)\n(.*?)```",
        DOCS.read_text(),
        flags=re.S,
    )
    assert found is not None, name
    return found.group(1)


def load(name: str) -> types.ModuleType:
    module = types.ModuleType(f"docs_example_{name}")
    exec(compile(example(name), f"docs/frameworks.md:{name}", "exec"), module.__dict__)
    return module


def rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [
            r[0]
            for r in conn.execute("SELECT query_text FROM memory_retrieval_failures ORDER BY id")
        ]
    finally:
        conn.close()


async def http_get(port: int, target: str) -> int:
    """One HTTP/1.1 GET to 127.0.0.1; its status code."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = f"GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        await stream.send_all(request.encode())
        response = b""
        while chunk := await stream.receive_some():
            response += chunk
    return int(response.split(b" ", 2)[1])


def test_every_example_is_run_here() -> None:
    names = re.findall(r"<!-- example: (\w+) -->", DOCS.read_text())
    tested = {"starlette", "quart_trio", "anyio", "sigterm", "pytest"}
    assert set(names) == tested


async def test_starlette_on_hypercorns_trio_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hypercorn.config import Config
    from hypercorn.trio import serve

    monkeypatch.chdir(tmp_path)
    service = load("starlette")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn takes it over, and closes it
    config.worker_class = "trio"
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: serve(
                service.app, config, shutdown_trigger=shutdown.wait, task_status=task_status
            )
        )
        for path, query in [
            ("/search", "cats"),
            ("/search", "dogs"),
            ("/search-sync", "birds"),
            ("/search-sync", "cats"),
        ]:
            assert await http_get(port, f"{path}?q={query}") == 200
        shutdown.set()
    assert sorted(rows(tmp_path / "failures.db")) == ["birds", "dogs"]


async def test_quart_trio_while_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    service = load("quart_trio")
    async with service.app.test_app() as test_app:
        client = test_app.test_client()
        assert (await (await client.get("/search?q=cats")).get_json()) == {
            "hit": "Cats sleep a lot."
        }
        assert (await (await client.get("/search?q=dogs")).get_json()) == {"hit": None}
    assert rows(tmp_path / "failures.db") == ["dogs"]


def test_anyio_on_the_trio_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    load("anyio")  # runs anyio.run(main, backend="trio")
    assert len(rows(tmp_path / "failures.db")) == 100


def test_anyio_on_the_asyncio_backend_says_trio_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = example("anyio").replace('backend="trio"', 'backend="asyncio"')
    with pytest.raises(RuntimeError, match=r"needs trio.*anyio's trio backend"):
        exec(compile(code, "anyio-on-asyncio", "exec"), {})


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.parametrize("run", range(2))
def test_sigterm_under_load_writes_every_accepted_record(tmp_path: Path, run: int) -> None:
    script = tmp_path / "worker.py"
    script.write_text(example("sigterm"))
    database = tmp_path / "failures.db"
    with subprocess.Popen(
        [sys.executable, str(script), str(database)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_child_env(),
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "serving\n"
        # Under load: wait (in real time, the child's) until batches are landing.
        conn = sqlite3.connect(database, timeout=10)
        try:
            while conn.execute("SELECT count(*) FROM memory_retrieval_failures").fetchone()[0] < (
                2000 * (run + 1)
            ):
                assert child.poll() is None
        finally:
            conn.close()
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    assert stats["accepted"] > 2000
    assert stats["written"] == stats["accepted"]
    assert (stats["failed"], stats["dropped_full"], stats["queued"]) == (0, 0, 0)
    assert len(rows(database)) == stats["accepted"]


def test_pytest_example_passes_under_both_clocks(tmp_path: Path) -> None:
    (tmp_path / "test_recall.py").write_text(example("pytest"))
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    env = _child_env()
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # exactly these plugins, however installed
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "pytest_trio.plugin",
            "-p",
            "trio_failurelog.pytest_plugin",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
