"""Drive Debian's headless Chromium over the DevTools protocol (tests only): open pages, run JS, screenshot.

A missing ``chromium`` fails the test that needs it (CI installs it; see ``.ci/run``), never skips.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--hide-scrollbars", "--remote-debugging-port=0", "--allow-file-access-from-files",
]
#: Keep a sandboxed iframe in its page's renderer, so ``Page.frame_js`` reaches it (the sandbox still applies).
SAME_PROCESS_FRAMES = "--disable-features=IsolateSandboxedIframes,SitePerProcess"
DESKTOP = (1280, 900)
PHONE = (390, 844)


def chromium_path() -> str:
    """Return Debian's chromium, or fail the test naming the package to install."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: apt-get install chromium (the browser tests need it)")
    return path


class Page:
    """One tab, attached with a flat DevTools session."""

    def __init__(self, ws: Any, session: str) -> None:
        self.ws, self.session, self._id = ws, session, 0

    def send(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> dict[str, Any]:
        """Send one command and return its result (events on the way are dropped)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}, "sessionId": self.session}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def viewport(self, width: int, height: int) -> None:
        """Emulate a screen of this size (a phone is mobile: its viewport meta applies)."""
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def goto(self, url: str, timeout: float = 60) -> None:
        """Load ``url`` and wait until the document is complete."""
        self.send("Page.navigate", {"url": url})
        time.sleep(0.2)
        self.wait_for("document.readyState === 'complete'", timeout)

    def js(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def frame_js(self, expression: str) -> Any:
        """Evaluate ``expression`` inside the page's first iframe (even a sandboxed, opaque-origin one)."""
        tree = self.send("Page.getFrameTree")["frameTree"]
        child = tree["childFrames"][0]["frame"]["id"]
        context = self.send("Page.createIsolatedWorld", {"frameId": child, "worldName": "test"})["executionContextId"]
        result = self.send("Runtime.evaluate", {"expression": expression, "contextId": context,
                                                "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_in_frame(self, expression: str, timeout: float = 60) -> Any:
        """Poll ``expression`` inside the first iframe until it is truthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError, KeyError, IndexError):
                if value := self.frame_js(expression):
                    return value
            time.sleep(0.2)
        text = self.frame_js("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise AssertionError(f"timed out waiting in the frame for {expression!r}; it says:\n{text}")

    def wait_for(self, expression: str, timeout: float = 60, every: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; fail with the page's text if it never is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                value = self.js(expression)
                if value:
                    return value
            time.sleep(every)
        text = self.js("document.body ? document.body.innerText.slice(0, 2000) : ''")
        raise AssertionError(f"timed out waiting for {expression!r}; page says:\n{text}")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose files in an ``<input type=file>`` as a person would."""
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        return path

    def layout(self) -> dict[str, Any]:
        """Measure what a layout check needs: viewport, document width, and the cards' boxes."""
        return self.js("""(() => ({
            inner: window.innerWidth,
            scroll: document.documentElement.scrollWidth,
            cards: [...document.querySelectorAll('.te-card')].map(c => {
                const b = c.getBoundingClientRect(); return {left: b.left, right: b.right, width: b.width}; }),
        }))()""")


@contextlib.contextmanager
def chromium(*extra_flags: str) -> Iterator[Page]:
    """Start a fresh headless Chromium (own profile dir) and yield a page; stop it afterwards."""
    exe = chromium_path()
    profile = Path(tempfile.mkdtemp(prefix="thinkedit-chromium-"))
    proc = subprocess.Popen([exe, *FLAGS, *extra_flags, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
            time.sleep(0.1)
        port, path = port_file.read_text().split()[:2]
        with connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 1024 * 1024, open_timeout=30) as ws:
            ws.send(json.dumps({"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}))
            target = _reply(ws, 1)["targetId"]
            ws.send(json.dumps({"id": 2, "method": "Target.attachToTarget",
                                "params": {"targetId": target, "flatten": True}}))
            page = Page(ws, _reply(ws, 2)["sessionId"])
            page.send("Page.enable")
            page.send("Runtime.enable")
            yield page
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def _reply(ws: Any, msg_id: int) -> dict[str, Any]:
    while True:
        msg = json.loads(ws.recv(timeout=30))
        if msg.get("id") == msg_id:
            if "error" in msg:
                raise RuntimeError(str(msg["error"]))
            return msg["result"]


def not_blank(png: Path) -> int:
    """Return how many distinct colours a screenshot has, failing when it is (nearly) one colour."""
    from PIL import Image

    with Image.open(png) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    count = len(colours) if colours is not None else 1 << 20
    assert count > 50, f"{png} looks blank ({count} colours)"
    return count


def fits(layout: dict[str, Any]) -> None:
    """Assert nothing is wider than the viewport (no sideways scrolling)."""
    assert layout["scroll"] <= layout["inner"], layout
    for card in layout["cards"]:
        assert card["left"] >= -1 and card["right"] <= layout["inner"] + 1, (card, layout["inner"])
