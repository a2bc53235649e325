"""Start real server processes on free loopback ports for tests, wait until ready, stop them."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the environment for ``python -m servers.cli``: repo on the path, data dir, offline hub."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        THINKEDIT_DATA_DIR=str(data_dir),
        HF_HUB_OFFLINE="1",
        RAY_USAGE_STATS_ENABLED="0",
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop("THINKEDIT_TOKEN", None)
    env.update(extra)
    return env


def png_bytes(image: Image.Image) -> bytes:
    """Encode as PNG."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


class ServerProcess:
    """One ``thinkedit serve ...`` process on a loopback port, logging to a file."""

    def __init__(self, args: Sequence[str], data_dir: Path, log_path: Path, port: int | None = None,
                 token: str | None = None, module: str = "thinkedit.servers.cli") -> None:
        self.port = port or free_port()
        self.args = [*args, "--port", str(self.port)]
        self.module = module
        self.data_dir = data_dir
        self.log_path = log_path
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Return the server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Return the OpenAI-style base URL (with /v1)."""
        return f"{self.base}/v1"

    @property
    def headers(self) -> dict[str, str]:
        """Return the auth header the server needs, if any."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self, timeout: float = 120.0, status: int = 200) -> ServerProcess:
        """Start the process and wait until /health answers ``status`` (200: ready; 503: up, still loading)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        prefix = ["-v", "serve"] if self.module == "thinkedit.servers.cli" else ["-v"]
        command = [sys.executable, "-m", self.module, *prefix, *self.args]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=cli_env(self.data_dir), stdout=log, stderr=log)
        self.wait_ready(timeout, status)
        return self

    def wait_ready(self, timeout: float, status: int = 200) -> None:
        """Poll /health until it says ``status``, failing early if the process died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/health", headers=self.headers, timeout=2).status_code == status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        """Send ``sig``, wait for the exit (SIGKILL after ``timeout``), return the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log_tail(self, chars: int = 4000) -> str:
        """Return the end of the server's log."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def editor_server(data_dir: Path, log_dir: Path, *extra: str, token: str | None = None,
                  model: str = "tiny-kontext", port: int | None = None) -> ServerProcess:
    """Describe an editor server for the tiny model (not started)."""
    args = ["editor", "--model", model, *extra]
    if token:
        args += ["--token", token]
    return ServerProcess(args, data_dir, log_dir / f"editor-{free_port()}.log", port=port, token=token)


def sleepy_editor_server(data_dir: Path, log_dir: Path, *extra: str) -> ServerProcess:
    """Describe an editor server around the scripted engine of known speed (tests.sleepy_editor)."""
    return ServerProcess(list(extra), data_dir, log_dir / f"sleepy-{free_port()}.log", module="tests.sleepy_editor")


def thinker_server(data_dir: Path, log_dir: Path, *extra: str) -> ServerProcess:
    """Describe a local thinker server for the tiny model (not started)."""
    args = ["thinker", "--model", "tiny-qwen2.5-vl", "--local", *extra]
    return ServerProcess(args, data_dir, log_dir / f"thinker-{free_port()}.log")


def metric(text: str, name: str, labels: str = "") -> float:
    """Return one sample's value from Prometheus text (0 when absent)."""
    key = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(key + " "):
            return float(line.split()[-1])
    return 0.0
