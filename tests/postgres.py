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


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Run a fresh cluster on 127.0.0.1 (password auth, loopback only) and yield its URL; stop it after."""
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    prefix = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="thinkedit-pg-"))
    data, pwfile, log = root / "data", root / "pw", root / "server.log"
    pwfile.write_text(PASSWORD + "\n")
    if prefix:
        shutil.chown(root, "postgres")
        shutil.chown(pwfile, "postgres")
        os.chmod(root, 0o700)
    port = free_port()
    try:
        subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "thinkedit", f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, text=True, timeout=120,
        )
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
            check=True, capture_output=True, text=True, timeout=90,
        )
        url = f"postgresql://thinkedit:{PASSWORD}@127.0.0.1:{port}/postgres"
        _wait_ready(url)
        yield url
    except subprocess.CalledProcessError as exc:
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{tail}") from exc
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


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
