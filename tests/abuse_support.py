"""Helpers of the abuse suite: tallies, the servers it starts, and the images and requests it sends."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from tests.procs import ROOT, free_port

TOKEN = "abuse-token"


@dataclass
class Tally:
    """Count one area's cases."""

    tried: int = 0
    held: int = 0
    failures: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)


@dataclass
class Report:
    """Hold every area's tally."""

    areas: dict[str, Tally] = field(default_factory=dict)

    def check(self, area: str, name: str, ok: bool, detail: str = "") -> None:
        tally = self.areas.setdefault(area, Tally())
        tally.tried += 1
        if ok:
            tally.held += 1
        else:
            tally.failures.append(f"{name}: {detail}"[:400])

    def figure(self, area: str, text: str) -> None:
        self.areas.setdefault(area, Tally()).figures.append(text)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.areas.values())

    def table(self) -> str:
        lines = [f"{'area':<10} {'tried':>6} {'held':>6} {'failed':>7}"]
        for area, t in self.areas.items():
            lines.append(f"{area:<10} {t.tried:>6} {t.held:>6} {t.failed:>7}")
            lines += [f"    {figure}" for figure in t.figures]
            lines += [f"    FAILED {failure}" for failure in t.failures]
        total = sum(t.tried for t in self.areas.values())
        lines.append(f"{'total':<10} {total:>6} {total - self.failed:>6} {self.failed:>7}")
        return "\n".join(lines)


# --- processes -------------------------------------------------------------------------------------


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("THINKEDIT_")}
    env.update(PYTHONPATH=str(ROOT), THINKEDIT_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               RAY_USAGE_STATS_ENABLED="0", TOKENIZERS_PARALLELISM="false")
    return env


@contextlib.contextmanager
def server(args: list[str], data_dir: Path, log: Path, token: str | None = None) -> Iterator[str]:
    """Run ``thinkedit serve ARGS --port P`` until the block ends; yield its base URL once /health answers."""
    port = free_port()
    command = [sys.executable, "-m", "thinkedit.servers.cli", "serve", *args, "--port", str(port)]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env_for(data_dir), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} server exited with {proc.returncode}; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                if httpx.get(f"{base}/health", headers=headers, timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{args[0]} server not ready; see {log}")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def lying_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (how decompression bombs look)."""
    data = bytearray(png(Image.new("RGB", (8, 8))))
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def healthy(base: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/health", timeout=10).status_code == 200
    return False


def metric(base: str, kind: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(f'thinkedit_editor_errors_total{{kind="{kind}"}} '):
            return float(line.split()[-1])
    return 0.0


def clear_error(response: httpx.Response, statuses: tuple[int, ...]) -> tuple[bool, str]:
    """Say whether a response is one of ``statuses`` with an error message (short, in the OpenAI shape)."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False, f"HTTP {response.status_code}, no error message: {response.text[:120]!r}"
    ok = response.status_code in statuses and bool(message) and len(response.content) < 4000
    return ok, f"HTTP {response.status_code}: {message[:160]}"


# --- editor areas ----------------------------------------------------------------------------------

SMALL = png(Image.new("RGB", (64, 48), (200, 120, 40)))


def upload_cases() -> list[tuple[str, dict[str, Any], tuple[int, ...]]]:
    """Return malformed edit requests as (name, httpx.post keyword arguments, acceptable statuses)."""
    image = {"image": ("a.png", SMALL, "image/png")}
    form = {"prompt": "add a hat"}
    cases: list[tuple[str, dict[str, Any], tuple[int, ...]]] = [
        ("json body", {"json": {"prompt": "x"}}, (400,)),
        ("empty body", {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=x"}}, (400, 422)),
        ("garbage multipart", {"content": b"--x\r\nnonsense", "headers": {"content-type": "multipart/form-data; boundary=x"}}, (400, 422)),
        ("no image", {"data": form}, (400, 422)),
        ("image as text", {"data": {**form, "image": "abc"}}, (400,)),
        ("two images", {"files": [("image", ("a.png", SMALL, "image/png")), ("image", ("b.png", SMALL, "image/png"))], "data": form}, (422,)),
        ("unknown file field", {"files": {"mask": ("m.png", SMALL, "image/png"), **image}, "data": form}, (422,)),
        ("not an image", {"files": {"image": ("a.png", b"hello", "image/png")}, "data": form}, (400,)),
        ("truncated png", {"files": {"image": ("a.png", SMALL[: len(SMALL) // 2], "image/png")}, "data": form}, (400,)),
        ("empty image", {"files": {"image": ("a.png", b"", "image/png")}, "data": form}, (400,)),
        ("no prompt", {"files": image}, (422,)),
        ("empty prompt", {"files": image, "data": {"prompt": ""}}, (422,)),
        ("unknown field", {"files": image, "data": {**form, "sede": "3"}}, (422,)),
        ("n zero", {"files": image, "data": {**form, "n": "0"}}, (422,)),
        ("n seventeen", {"files": image, "data": {**form, "n": "17"}}, (422,)),
        ("n not a number", {"files": image, "data": {**form, "n": "many"}}, (422,)),
        ("bad size", {"files": image, "data": {**form, "size": "huge"}}, (422,)),
        ("size out of range", {"files": image, "data": {**form, "size": "99999x2"}}, (422,)),
        ("negative seed", {"files": image, "data": {**form, "seed": "-1"}}, (422,)),
        ("huge seed", {"files": image, "data": {**form, "seed": str(2**70)}}, (422,)),
        ("steps 0", {"files": image, "data": {**form, "num_inference_steps": "0"}}, (422,)),
        ("guidance nan", {"files": image, "data": {**form, "guidance_scale": "nan"}}, (422,)),
        ("setting the model lacks", {"files": image, "data": {**form, "image_guidance_scale": "1.5"}}, (422,)),
        ("stream", {"files": image, "data": {**form, "stream": "true"}}, (422,)),
        ("url response", {"files": image, "data": {**form, "response_format": "url"}}, (422,)),
        ("other model", {"files": image, "data": {**form, "model": "dall-e-2"}}, (404,)),
        ("64 KB model", {"files": image, "data": {**form, "model": "m" * 60_000}}, (422,)),
        ("64 KB user", {"files": image, "data": {**form, "user": "u" * 60_000}}, (422,)),
        ("long field name", {"files": image, "data": {**form, "f" * 3000: "1"}}, (400, 422)),
        ("duplicate field", {"files": image, "content": None, "data": {"prompt": ["a", "b"]}}, (422,)),
        ("oversize prompt", {"files": image, "data": {"prompt": "p" * 40_000}}, (422,)),
        ("wrong method", {"method": "GET"}, (405,)),
    ]
    return cases
