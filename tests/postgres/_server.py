"""A real, throw-away PostgreSQL server for the tests and the benchmark.

Debian's PostgreSQL (``.ci/ensure-postgres`` installs it) is started from a
temporary directory: a cluster made by ``initdb``, a Unix socket in that
directory, and a free 127.0.0.1 port with password (SCRAM) authentication for
TCP. PostgreSQL refuses to run as root, so under root every server command
runs as the ``postgres`` system user (``runuser``). The superuser ``postgres``
connects over the socket without a password (trust); the test role
:data:`ROLE` connects over TCP with :data:`PASSWORD`.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PASSWORD", "ROLE", "PgServer", "ServerUnavailable"]

ROLE = "failurelog"
#: Distinctive, so that a test can assert it appears nowhere.
PASSWORD = "Pw-9zQx7vLk-NEVER-SHOWN"

_START_TIMEOUT = 60  # seconds pg_ctl may wait for the server to accept connections


class ServerUnavailable(Exception):
    """No PostgreSQL server can be started here; the message says why."""


#: Names the directory of initdb and pg_ctl, overriding the search (the tests of
#: the skip-or-fail rule point it at nothing).
BINDIR_VARIABLE = "TRIO_FAILURELOG_PG_BINDIR"


def _find_runuser() -> str:
    """runuser, from PATH or from /usr/sbin and /sbin, where Debian keeps it: a
    non-root-style PATH without the sbin directories must not skip the tests.

    Raises :exc:`ServerUnavailable` when there is none."""
    for where in (None, "/usr/sbin:/sbin"):
        found = shutil.which("runuser", path=where)
        if found is not None:
            return found
    raise ServerUnavailable("running as root and there is no runuser (util-linux) to drop root")


def _find_bindir() -> Path:
    chosen = os.environ.get(BINDIR_VARIABLE)
    if chosen is not None:
        if not (Path(chosen) / "initdb").exists():
            raise ServerUnavailable(f"no initdb in {BINDIR_VARIABLE}={chosen}")
        return Path(chosen)
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl is not None and shutil.which("initdb") is not None:
        return Path(os.path.realpath(pg_ctl)).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not found:
        raise ServerUnavailable(
            "PostgreSQL is not installed (no pg_ctl/initdb on PATH or in "
            "/usr/lib/postgresql/*/bin); run .ci/ensure-postgres"
        )
    return Path(found[0]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgServer:
    """One running cluster. Create with :meth:`start_new`, end with :meth:`destroy`."""

    bindir: Path
    root: Path
    port: int
    runas: list[str]
    durable: bool
    _databases: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @classmethod
    def start_new(cls, *, durable: bool = False) -> PgServer:
        """initdb and start a server; ``durable=False`` turns fsync off (tests only).

        Raises :exc:`ServerUnavailable` when PostgreSQL is missing or will not start.
        """
        bindir = _find_bindir()
        runas: list[str] = []
        root = Path(tempfile.mkdtemp(prefix="tfl-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise ServerUnavailable("running as root and there is no 'postgres' user") from None
            os.chown(root, user.pw_uid, user.pw_gid)
            runas = [_find_runuser(), "-u", "postgres", "--"]
        server = cls(bindir, root, _free_port(), runas, durable)
        try:
            server._initdb()
            server.start()
            server.admin_execute(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}'")
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or ""
            server.destroy()
            raise ServerUnavailable(f"PostgreSQL would not start: {exc} {detail}") from exc
        return server

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.runas, str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            check=check,
            timeout=_START_TIMEOUT + 30,
        )

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _options(self) -> str:
        options = [
            f"-k {self.socket_dir}",
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=100",
        ]
        if not self.durable:
            # Safe against the server crashing (stop -m immediate), not the machine:
            # no synchronous_commit=off, which would lose acknowledged commits.
            options += ["-c fsync=off", "-c full_page_writes=off"]
        return " ".join(options)

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-o",
            self._options(),
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` is a crash (no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------ connecting

    def url(
        self,
        database: str,
        *,
        user: str = ROLE,
        password: str | None = PASSWORD,
        scheme: str = "postgresql",
        query: str = "",
    ) -> str:
        """A TCP URL (host 127.0.0.1, our port) for ``database``."""
        auth = user if password is None else f"{user}:{urllib.parse.quote(password, safe='')}"
        suffix = f"?{query}" if query else ""
        return f"{scheme}://{auth}@127.0.0.1:{self.port}/{database}{suffix}"

    def socket_url(self, database: str, *, user: str = ROLE) -> str:
        """A URL over the Unix socket, the host given as a libpq URL parameter."""
        host = urllib.parse.quote(str(self.socket_dir), safe="")
        return f"postgresql:///{database}?host={host}&port={self.port}&user={user}"

    def admin_connect(self, database: str = "postgres") -> Any:
        """A psycopg connection as the superuser over the socket, autocommit."""
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=database,
            autocommit=True,
        )

    def admin_execute(self, sql: str, database: str = "postgres") -> None:
        with self.admin_connect(database) as conn:
            conn.execute(sql)

    def new_database(self, prefix: str = "t") -> str:
        """CREATE a fresh, empty database owned by :data:`ROLE`; return its name."""
        name = f"{prefix}_{os.getpid()}_{next(self._databases)}"
        self.admin_execute(f"CREATE DATABASE {name} OWNER {ROLE} STRATEGY FILE_COPY")
        return name

    def drop_database(self, name: str) -> None:
        self.admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
