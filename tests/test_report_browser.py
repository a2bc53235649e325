"""report.html in a real browser (headless Chromium) at desktop and phone widths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from thinkedit.agent.viewer import write_outputs
from tests.browser import DESKTOP, PHONE, chromium, fits, not_blank
from tests.fakes import ScriptedThinker, verdicts
from tests.test_graph import run

pytestmark = pytest.mark.slow

#: Set to a folder to keep the screenshots (the README's come from here: docs/).
SHOTS_ENV = "THINKEDIT_SCREENSHOTS"


def keep(png: Path) -> None:
    """Keep a screenshot in $THINKEDIT_SCREENSHOTS, reduced to a 128-colour palette (small enough to commit)."""
    if os.environ.get(SHOTS_ENV):
        from PIL import Image

        with Image.open(png) as im:
            im.convert("RGB").quantize(colors=128).save(Path(os.environ[SHOTS_ENV]) / png.name, optimize=True)


async def test_report_on_desktop_and_phone(data_dir, photo, tmp_path: Path) -> None:
    script = verdicts((3, 4, "add a <b>red</b> hat"), (9, 7, "put a bright red hat on the cat"), (5, 5, "c"))
    script = [v.model_copy(update={"raw": f"<think>round {i}</think><score>…</score>"}) for i, v in enumerate(script, 1)]
    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3)
    report = write_outputs(state, runner.store, tmp_path / "out")["report"]

    with chromium() as page:
        page.viewport(*DESKTOP)
        page.goto(report.as_uri())
        page.wait_for("document.querySelectorAll('.te-round').length === 3")
        dom = page.js("""(() => ({
            rounds: [...document.querySelectorAll('.te-round')].map(c => c.dataset.round),
            chosen: [...document.querySelectorAll('.te-round.chosen')].map(c => c.dataset.round),
            lines: document.querySelectorAll('.te-chart svg polyline').length,
            points: document.querySelectorAll('.te-chart svg circle').length,
            band: document.querySelectorAll('.te-chart .te-chosen-band').length,
            raw: [...document.querySelectorAll('details[data-raw] pre')].map(p => p.textContent),
            loaded: [...document.images].every(i => i.complete && i.naturalWidth > 0),
            text: document.body.innerText,
            bold: document.querySelectorAll('.te-round b b, .te-round pre b').length,
        }))()""")
        assert dom["rounds"] == ["1", "2", "3"] and dom["chosen"] == ["2"]
        assert dom["lines"] == 3 and dom["points"] == 9 and dom["band"] == 1
        assert dom["raw"] == [f"<think>round {i}</think><score>…</score>" for i in (1, 2, 3)]
        assert dom["loaded"], "an embedded image did not decode"
        assert "add a <b>red</b> hat" in dom["text"] and dom["bold"] == 0  # shown as text, never as markup
        assert "max_rounds" in dom["text"] and "round 2 of 3" in dom["text"]

        # Compare a round with the source: one click shows the source in its frame, another brings it back.
        source = page.js("document.querySelector('.te-source img').src")
        third = page.js("document.querySelector('.te-round[data-round=\"3\"] img').src")
        assert source != third
        page.js("document.querySelector('.te-round[data-round=\"3\"] button[data-compare]').click()")
        assert page.js("document.querySelector('.te-round[data-round=\"3\"] img').src") == source
        assert page.js("document.querySelector('.te-round[data-round=\"3\"] .te-showing').textContent") == "source"
        page.js("document.querySelector('.te-round[data-round=\"3\"] img').click()")
        assert page.js("document.querySelector('.te-round[data-round=\"3\"] img').src") == third

        fits(page.layout())
        not_blank(keep_shot := page.screenshot(tmp_path / "report-desktop.png"))
        keep(keep_shot)

        page.viewport(*PHONE)
        page.goto(report.as_uri())
        page.wait_for("document.querySelectorAll('.te-round').length === 3")
        layout = page.layout()
        fits(layout)
        assert layout["inner"] == PHONE[0]  # the viewport meta: no desktop-width zoom-out
        assert len({round(c["left"]) for c in layout["cards"]}) == 1, layout["cards"]  # one column
        assert page.js("document.querySelectorAll('.te-chart svg polyline').length") == 3
        not_blank(shot := page.screenshot(tmp_path / "report-phone.png"))
        keep(shot)


async def test_cost_and_usage_fields_are_shown_when_present(data_dir, photo, tmp_path: Path) -> None:
    from thinkedit.agent.viewer import render_report
    from thinkedit.agent.view import run_view

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((9, 9, "x"))), max_rounds=2)
    data = run_view(state, state.settings).trajectory()
    # The shape the usage accounting gives (images, tokens in and out, an estimated price), and any other.
    usage = {"edit_calls": 1, "images_edited": 1, "critiques": 1, "thinker_input_tokens": 1200,
             "thinker_output_tokens": 80, "editor_input_tokens": 0, "editor_output_tokens": 0, "cost_usd": 0.0123}
    data["usage"] = usage
    data["rounds"][0]["usage"] = {**usage, "cost_usd": None}
    data["rounds"][0]["provider_tokens"] = {"input": 7, "output": 3}
    page_file = tmp_path / "report.html"
    page_file.write_bytes(render_report(data, runner.store, state.settings))
    with chromium() as page:
        page.viewport(*PHONE)
        page.goto(page_file.as_uri())
        page.wait_for("document.querySelectorAll('.te-round').length === 1")
        meta = page.js("document.querySelector('.te-meta').innerText")
        card = page.js("document.querySelector('.te-round').innerText")
        assert "1 image(s) edited · 1,200 tokens in · 80 out · ~$0.0123" in meta
        assert "1 image(s) edited · 1,200 tokens in · 80 out · price unknown" in card
        assert "input 7 · output 3" in card
        assert page.js("document.querySelectorAll('.te-chart svg circle').length") == 3  # one round, three scores

        # A run that failed before anything was counted: its price is not known (not "~$0.0000"), its error one line.
        nothing = {k: 0 for k in usage} | {"cost_usd": 0.0}
        failed = {**data, "status": "error", "stop_reason": "error", "best_round": None, "rounds": [], "usage": nothing,
                  "error": "RuntimeError: boom\n  at step 2"}
        page_file.write_bytes(render_report(failed, runner.store, state.settings))
        page.goto(page_file.as_uri())
        page.wait_for("!!document.querySelector('.te-meta')")
        meta = page.js("document.querySelector('.te-meta').innerText")
        assert "0 image(s) edited · 0 tokens in · 0 out · price unknown" in meta and "none (0 rounds)" in meta
        assert page.js("document.querySelector('.te-error').textContent") == "RuntimeError: boom"


#: Markup that would place an element with a handler if any field went into the page unescaped.
PAYLOAD = '"><img class="pwn" src="x" onerror="window.pwned=1"><b class="pwn" onclick="1">'


async def test_every_field_is_escaped_and_the_page_has_a_policy(data_dir, photo, tmp_path: Path) -> None:
    """A crafted run view (as a hostile MCP result or record could carry) places no element and no handler."""
    from thinkedit.agent.view import run_view
    from thinkedit.agent.viewer import page_data, render_page

    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(verdicts((3, 4, "x"), (9, 9, "y"))), max_rounds=2)
    data = run_view(state, state.settings).trajectory()
    data.update(best_round=PAYLOAD, max_rounds=PAYLOAD, created_at=PAYLOAD, updated_at=PAYLOAD, error=PAYLOAD,
                status="error", usage={f"cost {PAYLOAD}": PAYLOAD}, **{f"tokens{PAYLOAD}": PAYLOAD})
    data["source_image"] = {**data["source_image"], "width": PAYLOAD, "height": PAYLOAD}
    for r in data["rounds"]:
        r.update(index=PAYLOAD, edit_seconds=PAYLOAD, think_seconds=PAYLOAD, seed=PAYLOAD,
                 candidates=[{"seed": PAYLOAD, "overall": PAYLOAD}], **{f"usage{PAYLOAD}": {PAYLOAD: 1}})
        r["image"] = {**r["image"], "width": PAYLOAD, "height": PAYLOAD}
    view = page_data(data, settings=state.settings)
    view["settings"]["max_rounds"] = PAYLOAD
    view["review"] = {"round": PAYLOAD, "semantic": PAYLOAD, "quality": PAYLOAD, "reasoning": PAYLOAD}
    page_file = tmp_path / "crafted.html"
    page_file.write_text(render_page(view, title=PAYLOAD), encoding="utf-8")
    with chromium() as page:
        page.goto(page_file.as_uri())
        page.wait_for("document.querySelectorAll('.te-round').length === 2")
        found = page.js("""(() => ({
            pwn: document.querySelectorAll('.pwn').length,
            handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))
                .filter(n => n.startsWith('on')),
            shown: document.body.innerText.includes('onerror="window.pwned=1"'),
            policy: document.querySelector('meta[http-equiv="Content-Security-Policy"]').content,
        }))()""")
    assert found["pwn"] == 0 and found["handlers"] == [] and found["shown"], found
    assert "script-src 'sha256-" in found["policy"] and "default-src 'none'" in found["policy"]
