"""Start a real, throwaway PostgreSQL server on loopback for the tests (Debian's postgresql package)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.procs import free_port

#: Set to 1 (CI) to fail, not skip, when PostgreSQL is not installed.
REQUIRE_ENV = "THINKEDIT_REQUIRE_POSTGRES"
PASSWORD = "thinkedit-test"


def find_bin_dir() -> Path | None:
    """Return the directory holding initdb and pg_ctl (newest Debian version first), if any."""
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found and (Path(found).parent / "pg_ctl").exists():
            return Path(found).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True)
    return versions[0].parent if versions else None


def _as_server_user() -> list[str]:
    """Return the command prefix that drops root to the ``postgres`` user (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


class PostgresCluster:
    """A fresh cluster on 127.0.0.1 (password auth, loopback only) that a test may stop and start again."""

    def __init__(self) -> None:
        bin_dir = find_bin_dir()
        assert bin_dir is not None
        self.bin_dir, self.prefix = bin_dir, _as_server_user()
        self.root = Path(tempfile.mkdtemp(prefix="thinkedit-pg-"))
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = free_port()
        self.url = f"postgresql://thinkedit:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.prefix:
            shutil.chown(self.root, "postgres")
            shutil.chown(pwfile, "postgres")
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "thinkedit", f"--pwfile={pwfile}",
                  "--auth=scram-sha-256", "-E", "UTF8", "--no-sync", timeout=120)

    def start(self) -> None:
        """Start the server (again) on its port and wait until it answers."""
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
                   " -c fsync=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start",
                  timeout=90)
        _wait_ready(self.url)

    def stop(self) -> None:
        """Stop the server at once, as a crash or a lost database host would (``-m immediate``)."""
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.prefix, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                            "stop"], capture_output=True, timeout=60)

    def _run(self, tool: str, *args: str, timeout: float) -> None:
        try:
            subprocess.run([*self.prefix, str(self.bin_dir / tool), *args], check=True, capture_output=True,
                           text=True, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{tail}") from exc


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """Run a fresh cluster and yield it (its ``url``, ``stop``, ``start``); remove it after."""
    cluster = PostgresCluster()
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Run a fresh cluster on 127.0.0.1 (password auth, loopback only) and yield its URL; stop it after."""
    with postgres_cluster() as cluster:
        yield cluster.url


def _wait_ready(url: str, timeout: float = 30) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
