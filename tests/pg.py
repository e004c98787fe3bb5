"""A PostgreSQL server for the multi-host tests.

``SWEEP_TEST_PG`` (set by ``.ci/run``) names a server to use, e.g.
``postgresql://sweep:secret@127.0.0.1:54329/sweep``. Without it, ``PrivateCluster`` starts a private
cluster of Debian's PostgreSQL (``initdb`` from PATH or ``/usr/lib/postgresql/*/bin``) on 127.0.0.1 with
its own port, data directory and a user with a password, and stops it by its PID afterwards. As root,
the server runs as the ``postgres`` user (PostgreSQL refuses to run as root).

``pg_url_or_skip()`` is what a test fixture calls: a URL, or a skip when no PostgreSQL can be had; in CI
(``CI=true``) it fails instead of skipping, so CI never passes by skipping these tests.

Also a script, for trying things by hand::

    python tests/pg.py            # starts a cluster, prints its URL, stops it on Enter / Ctrl-C
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENV = "SWEEP_TEST_PG"


def find_bin(name: str) -> str | None:
    """A PostgreSQL server program: Debian's newest ``/usr/lib/postgresql/<v>/bin``, else PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parts[-3].split(".")])
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


class PrivateCluster:
    """``initdb`` + ``pg_ctl start`` in a fresh temporary folder; ``stop()`` ends the server by its PID."""

    def __init__(self, port: int | None = None, user: str = "sweep", password: str | None = None,
                 database: str = "sweep", durable: bool = False):
        self.initdb = find_bin("initdb")
        if self.initdb is None:
            raise RuntimeError("no initdb (install Debian's postgresql package)")
        self.bindir = Path(self.initdb).resolve().parent
        self.port = port or free_port()
        self.user, self.database = user, database
        self.password = password or f"pw-{secrets.token_hex(8)}"
        self.durable = durable            # False: fsync off (tests); True: as in production (measurements)
        self.root: Path | None = None
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _cmd(self, *args: str) -> list[str]:
        """Run as the postgres user when we are root (the server refuses root)."""
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser:
                return [runuser, "-u", "postgres", "--", *args]
            return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_quote, args))]
        return list(args)

    def _run(self, *args: str) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> str:
        # /tmp (not pytest's tmp_path, which is private to root): the postgres user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="sweep-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        data = self.root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", *([] if self.durable else ["--no-sync"]))
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            opts += " -c fsync=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "-o", opts, "start")
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        psql = str(self.bindir / "psql")
        base = [psql, "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-q", "-c"]
        self._run(*base, f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        self._run(*base, f"CREATE DATABASE {self.database} OWNER {self.user}")
        return self.url

    def stop(self) -> None:
        """Fast shutdown by PID (SIGINT), SIGKILL after 30 s; then the folder is removed."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGINT)
                deadline = time.time() + 30
                while time.time() < deadline:
                    os.kill(self.pid, 0)
                    time.sleep(0.1)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _quote(s: str) -> str:
    import shlex
    return shlex.quote(s)


def check_url(url: str) -> None:
    """Raise if the server cannot be reached with this URL."""
    import sqlalchemy
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    finally:
        engine.dispose()


def pg_url_or_skip():
    """Generator for a pytest fixture: yields a PostgreSQL URL (SWEEP_TEST_PG or a private cluster).

    No PostgreSQL at all: skip, except in CI (CI=true), where the test fails."""
    import pytest
    url = os.environ.get(ENV)
    if url:
        try:
            check_url(url)
        except Exception as exc:     # configured but unreachable: always an error
            from sweep.store import mask_secrets
            pytest.fail(f"{ENV} is set but PostgreSQL is not reachable: {mask_secrets(str(exc), url)}")
        yield url
        return
    if find_bin("initdb") is None:
        msg = f"PostgreSQL not available: set {ENV} or install Debian's postgresql package"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    cluster = PrivateCluster()
    try:
        try:
            url = cluster.start()
        except Exception as exc:
            if in_ci():
                pytest.fail(f"could not start a private PostgreSQL: {exc}")
            pytest.skip(f"could not start a private PostgreSQL: {exc}")
        yield url
    finally:
        cluster.stop()


if __name__ == "__main__":
    c = PrivateCluster()
    try:
        print(c.start(), flush=True)
        print(f"server PID {c.pid}; Enter or Ctrl-C stops it", flush=True)
        try:
            input()
        except (KeyboardInterrupt, EOFError):
            pass
    finally:
        c.stop()
