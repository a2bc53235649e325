"""The servers' /docs render their API in a real browser with nothing fetched from beyond 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.openapi.docs import get_swagger_ui_html

from tests.servers import free_port

pytestmark = pytest.mark.slow

#: Debian's chromium, headless, with its own background traffic off and every name but loopback unresolvable.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def chromium() -> str:
    """Return Debian's chromium; a missing browser fails the test (.ci/run installs it)."""
    path = shutil.which("chromium")
    assert path, "chromium is not installed: apt-get install -y chromium"
    return path


def load_page(url: str, work: Path) -> tuple[str, list[dict]]:
    """Open ``url`` in headless chromium; return the DOM after scripts ran and the page's requests."""
    net_log = work / "net.json"
    dom = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={work / 'profile'}", f"--log-net-log={net_log}",
         "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    return dom, page_requests(json.loads(net_log.read_text()), urlsplit(url).hostname or "")


def page_requests(log: dict, host: str) -> list[dict]:
    """Return the requests the page made: those in its network partition, whatever their destination."""
    names = {code: name for name, code in log["constants"]["logEventTypes"].items()}
    starts = [e.get("params", {}) for e in log["events"] if names[e["type"]] == "URL_REQUEST_START_JOB"]
    return [p for p in starts if p.get("network_isolation_key", "").startswith(f"http://{host}")]


@pytest.mark.parametrize(("server", "paths"), [
    ("editor", ["/v1/images/edits", "/v1/models", "/health"]),
    ("thinker", ["/v1/chat/completions", "/v1/models", "/health"]),
])
def test_docs_render_the_api_from_local_assets(
    server: str, paths: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    base = request.getfixturevalue(server).base
    page = httpx.get(f"{base}/docs", timeout=10)
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text

    dom, requests = load_page(f"{base}/docs", tmp_path)

    # Swagger UI ran: the operations it draws from openapi.json are in the DOM, not in the served HTML.
    for path in paths:
        assert f'data-path="{path}"' in dom and path not in page.text, path
    fetched = {p["url"] for p in requests}
    assert {f"{base}/docs/assets/swagger-ui-bundle.js", f"{base}/docs/assets/swagger-ui.css",
            f"{base}/openapi.json"} <= fetched
    outside = sorted(u for u in fetched if urlsplit(u).hostname != "127.0.0.1")
    assert not outside, f"/docs fetched from beyond 127.0.0.1: {outside}"


def test_fastapis_default_docs_page_fails_this_check(tmp_path: Path) -> None:
    """Check the check: FastAPI's own CDN page, served from 127.0.0.1, is caught reaching for the CDN."""
    (tmp_path / "docs.html").write_bytes(get_swagger_ui_html(openapi_url="/openapi.json", title="t").body)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/docs.html", timeout=1)
                break
            time.sleep(0.1)
        (tmp_path / "browser").mkdir()
        dom, requests = load_page(f"http://127.0.0.1:{port}/docs.html", tmp_path / "browser")
    finally:
        server.terminate()
        server.wait(10)
    assert any(urlsplit(p["url"]).hostname == "cdn.jsdelivr.net" for p in requests)
    assert "opblock" not in dom  # and, offline, it draws nothing
