"""The run viewer as an MCP App: its ui:// resource and tool metadata, and the app itself in a host page.

The host page is the test's own: it loads the viewer in a sandboxed iframe under the restrictive
CSP the MCP Apps spec prescribes, speaks the bridge (JSON-RPC over postMessage), and forwards the
app's tool calls to a real MCP client session on a server running the real graph.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from thinkedit.servers.mcp.viewer import APP_TOOLS, APP_URI, VIEW_META
from tests.browser import DESKTOP, PHONE, SAME_PROCESS_FRAMES, chromium, not_blank
from tests.mcp_support import CHELSEA, NATIVE
from tests.test_mcp_review import SCRIPT
from tests.test_mcp_runs import make_server

HOST_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline';
 style-src 'unsafe-inline'; img-src data:; media-src data:; connect-src 'none'; frame-src 'self'">
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="margin:0"><iframe id="app" sandbox="allow-scripts" style="width:100%;height:1400px;border:0"></iframe>
<script>
var frame = document.getElementById('app');
window.calls = []; window.reads = []; window.previews = {}; window.initialized = false;
function toApp(m) { frame.contentWindow.postMessage(m, '*'); }
window.addEventListener('message', function (ev) {
  if (ev.source !== frame.contentWindow) return;
  var m = ev.data;
  if (m.method === 'ui/initialize') toApp({jsonrpc: '2.0', id: m.id, result: {protocolVersion: '2026-01-26',
      hostInfo: {name: 'test-host', version: '1'}, hostCapabilities: {serverTools: {}, serverResources: {}},
      hostContext: {theme: 'light', displayMode: 'inline', platform: 'web'}}});
  else if (m.method === 'ui/notifications/initialized') window.initialized = true;
  else if (m.method === 'tools/call') window.calls.push(m);
  else if (m.method === 'resources/read') {
    window.reads.push(m.params.uri);
    var r = window.previews[m.params.uri];
    toApp(r ? {jsonrpc: '2.0', id: m.id, result: r} : {jsonrpc: '2.0', id: m.id, error: {code: -32002, message: 'not found'}});
  } else if (m.method === 'ui/notifications/size-changed') window.size = m.params;
});
window.boot = function (html) { window.initialized = false; window.calls = []; frame.srcdoc = html; };
window.notifyApp = function (method, params) { toApp({jsonrpc: '2.0', method: method, params: params}); };
window.answer = function (id, result) { toApp({jsonrpc: '2.0', id: id, result: result}); };
</script></body></html>"""


#: What a host with MCP Apps advertises (the SDK's client_supports_apps looks for exactly this).
APPS = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})


def wire(result: Any) -> dict:
    """Return a result as it travels (camelCase JSON), as a host hands it to the app."""
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def test_tools_name_the_app_and_the_resource_is_an_app(data_dir: Path) -> None:
    server, _ = make_server(data_dir)
    async with Client(server) as client:  # the current protocol: extensions are advertised
        assert EXTENSION_ID in (client.server_capabilities.extensions or {})
        tools = {t.name: t for t in (await client.list_tools()).tools}
        for name, tool in tools.items():
            expected = {"ui": {"resourceUri": APP_URI}} if name in APP_TOOLS else None
            assert tool.meta == expected, name
        assert set(APP_TOOLS) == {"think_while_edit", "get_run", "review_run"}
        content = (await client.read_resource(APP_URI)).contents[0]
        assert content.mime_type == APP_MIME_TYPE and content.uri == APP_URI
        html = content.text
        assert html.startswith("<!doctype html>") and "ThinkeditRun" in html and "ui/initialize" in html
        assert "http://" not in html and "https://" not in html and "<script src" not in html and "<link" not in html
        assert len(html.encode()) < 200_000


async def test_clients_without_apps_get_the_same_results(data_dir: Path) -> None:
    server, _ = make_server(data_dir, script=SCRIPT)
    async with Client(server, mode="legacy", client_info=NATIVE) as client:
        result = await client.call_tool("think_while_edit", {"image": str(CHELSEA), "instruction": "a hat",
                                                             "max_rounds": 2, "wait_seconds": 30})
        # The summary for the model, the preview image, the full-size link and the JSON: nothing app-only.
        assert [b.type for b in result.content] == ["text", "image", "resource_link", "text"]
        assert result.meta is None and result.structured_content["status"] == "done"
        run_id = result.structured_content["run_id"]
        preview = (await client.read_resource(f"thinkedit://runs/{run_id}/previews/round-2.jpg")).contents[0]
        assert preview.mime_type == "image/jpeg" and len(preview.blob) * 3 // 4 < 300_000
        with pytest.raises(Exception, match="unknown image .round-x."):
            await client.read_resource(f"thinkedit://runs/{run_id}/previews/round-x.jpg")

    async with Client(server, extensions=[APPS], client_info=NATIVE) as apps_client:
        looked = await apps_client.call_tool("get_run", {"run_id": run_id, "wait_seconds": 0})
        # The same content and structured result; only the _meta (kept from the model) is added for the viewer.
        assert [b.type for b in looked.content] == ["text", "image", "resource_link", "text"]
        assert looked.structured_content == result.structured_content
        extras = looked.meta[VIEW_META]
        assert extras["settings"]["max_rounds"] == 2 and extras["editor"] and extras["thinker"]
        assert set(extras["rounds"]) == {"1", "2"}


async def share_previews(client: Client, page: Any, result: dict) -> None:
    """Let the host page answer the app's resources/read of this run's previews (read from the real server)."""
    sc = result["structuredContent"]
    names = ["source", *(f"round-{r['index']}" for r in sc["rounds"])]
    for name in names:
        uri = f"thinkedit://runs/{sc['run_id']}/previews/{name}.jpg"
        page.js(f"window.previews[{json.dumps(uri)}] = {json.dumps(wire(await client.read_resource(uri)))}")


def next_call(page: Any, seen: int, timeout: float = 30) -> dict:
    """Wait for the app's next tools/call and return it."""
    page.wait_for(f"window.calls.length > {seen}", timeout)
    return page.js(f"window.calls[{seen}]")


@pytest.mark.slow
async def test_the_app_draws_follows_and_reviews_a_run(data_dir: Path, tmp_path: Path) -> None:
    server, backends = make_server(data_dir, delay=0.2, script=SCRIPT)
    thinker = backends.thinker_
    thinker.verdicts = [v.model_copy(update={"raw": f"<think>raw {i}</think>"}) for i, v in enumerate(thinker.verdicts, 1)]
    host = tmp_path / "host.html"
    host.write_text(HOST_PAGE)
    async with Client(server, mode="legacy", extensions=[APPS]) as client:
        html = (await client.read_resource(APP_URI)).contents[0].text
        args = {"image": str(CHELSEA), "instruction": "put a hat on the cat", "review": True, "max_rounds": 3,
                "wait_seconds": 30}
        paused = wire(await client.call_tool("think_while_edit", args))
        assert paused["structuredContent"]["status"] == "awaiting_review"
        run_id = paused["structuredContent"]["run_id"]

        with chromium(SAME_PROCESS_FRAMES) as page:
            page.viewport(*DESKTOP)
            page.goto(host.as_uri())
            page.js(f"window.boot({json.dumps(html)})")
            page.wait_for("window.initialized === true")
            await share_previews(client, page, paused)
            page.js(f"window.notifyApp('ui/notifications/tool-input', {{arguments: {json.dumps(args)}}})")
            page.js(f"window.notifyApp('ui/notifications/tool-result', {json.dumps(paused)})")

            # Every round so far, the chart, the review offer; images come through resources/read.
            page.wait_in_frame("document.querySelectorAll('.te-round').length === 1 && !!document.querySelector('.te-review')")
            page.wait_in_frame("[...document.images].length === 2 && [...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert page.frame_js("document.querySelectorAll('.te-chart svg polyline').length") == 3
            assert "proposed one" in page.frame_js("document.querySelector('.te-review-text').value")
            # The extras an Apps client gets: the models, the settings and the raw thinker output.
            assert page.frame_js("document.querySelector('details[data-raw=\"1\"] pre').textContent") == "<think>raw 1</think>"
            meta = page.frame_js("document.querySelector('.te-meta').innerText")
            assert "tiny-kontext" in meta and "max 3 rounds" in meta and "human review" in meta
            reads = page.js("window.reads")
            assert f"thinkedit://runs/{run_id}/previews/round-1.jpg" in reads and f"thinkedit://runs/{run_id}/previews/source.jpg" in reads
            assert page.js("window.size && window.size.height > 100")
            not_blank(page.screenshot(tmp_path / "app-review.png"))

            # Approve: the app calls review_run; the test passes that very call to the real server.
            page.frame_js("document.querySelector('.te-review button[data-review=approve]').click()")
            call = next_call(page, 0)
            assert call["params"]["name"] == "review_run"
            assert call["params"]["arguments"] == {"run_id": run_id, "decision": "approve", "wait_seconds": 3, "round": 1}
            second = wire(await client.call_tool("review_run", {**call["params"]["arguments"], "wait_seconds": 30}))
            await share_previews(client, page, second)
            page.js(f"window.answer({call['id']}, {json.dumps(second)})")
            page.wait_in_frame("document.querySelectorAll('.te-round').length === 2")  # the new round arrived
            assert backends.editor_.calls[-1].instruction == "proposed one"

            # Edit: the person's own words go to review_run.
            page.frame_js("""(() => { const t = document.querySelector('.te-review-text'); t.value = 'a tall green hat';
                t.dispatchEvent(new Event('input', {bubbles: true}));
                document.querySelector('.te-review button[data-review=edit]').click(); })()""")
            call = next_call(page, 1)
            assert call["params"]["arguments"] == {"run_id": run_id, "decision": "edit",
                                                   "instruction": "a tall green hat", "wait_seconds": 3, "round": 2}
            third = wire(await client.call_tool("review_run", {**call["params"]["arguments"], "wait_seconds": 30}))
            assert third["structuredContent"]["status"] == "done"  # max_rounds 3
            await share_previews(client, page, third)
            page.js(f"window.answer({call['id']}, {json.dumps(third)})")
            page.wait_in_frame("document.querySelectorAll('.te-round').length === 3 && !document.querySelector('.te-review')")
            best = third["structuredContent"]["best_round"]
            assert page.frame_js("[...document.querySelectorAll('.te-round.chosen')].map(c => Number(c.dataset.round))") == [best]
            assert backends.editor_.calls[-1].instruction == "a tall green hat"
            assert "max_rounds" in page.frame_js("document.body.innerText")

            # Stop, in a fresh viewer on a second paused run.
            paused2 = wire(await client.call_tool("think_while_edit", args))
            page.js(f"window.boot({json.dumps(html)})")
            page.wait_for("window.initialized === true")
            page.js(f"window.notifyApp('ui/notifications/tool-result', {json.dumps(paused2)})")
            page.wait_in_frame("!!document.querySelector('.te-review button[data-review=stop]')")
            page.frame_js("document.querySelector('.te-review button[data-review=stop]').click()")
            call = next_call(page, 0)
            assert call["params"]["arguments"]["decision"] == "stop"
            assert call["params"]["arguments"]["run_id"] == paused2["structuredContent"]["run_id"]

            # A run still going: the app polls get_run and draws each new state until the end
            # (edits slow enough that the first poll sees it mid-run, however fast the rest of the loop is).
            backends.editor_.delay = 1.0
            running = wire(await client.call_tool("think_while_edit", {**args, "review": False, "wait_seconds": 0}))
            assert running["structuredContent"]["status"] == "running"
            page.viewport(*PHONE)
            page.js(f"window.boot({json.dumps(html)})")
            page.wait_for("window.initialized === true")
            page.js(f"window.notifyApp('ui/notifications/tool-result', {json.dumps(running)})")
            seen, states, deadline = 0, [], time.monotonic() + 120
            while time.monotonic() < deadline:
                call = next_call(page, seen)
                seen += 1
                assert call["params"]["name"] == "get_run"
                assert call["params"]["arguments"]["run_id"] == running["structuredContent"]["run_id"]
                got = wire(await client.call_tool("get_run", {**call["params"]["arguments"], "wait_seconds": 0.5}))
                await share_previews(client, page, got)
                page.js(f"window.answer({call['id']}, {json.dumps(got)})")
                n = len(got["structuredContent"]["rounds"])
                page.wait_in_frame(f"document.querySelectorAll('.te-round').length === {n}")
                states.append((got["structuredContent"]["status"], n))
                if states[-1][0] == "done":
                    break
            assert states[-1][0] == "done" and states[-1][1] >= 2, states
            assert len({n for _, n in states}) >= 2, states  # it was seen mid-run, then finished
            page.wait_in_frame("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            assert page.frame_js("document.documentElement.scrollWidth <= innerWidth")
            not_blank(page.screenshot(tmp_path / "app-phone.png"))
