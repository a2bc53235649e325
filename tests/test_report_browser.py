"""report.html in a real browser (headless Chromium) at desktop and phone widths."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from thinkedit.agent.trajectory import write_outputs
from tests.browser import DESKTOP, PHONE, chromium, fits, not_blank
from tests.fakes import ScriptedThinker, verdicts
from tests.test_graph import run

pytestmark = pytest.mark.slow

#: Set to a folder to keep the screenshots (the README's come from here: docs/).
SHOTS_ENV = "THINKEDIT_SCREENSHOTS"


def keep(png: Path) -> None:
    if os.environ.get(SHOTS_ENV):
        shutil.copyfile(png, Path(os.environ[SHOTS_ENV]) / png.name)


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
