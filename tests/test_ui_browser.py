"""The gallery (``thinkedit ui``) as a person uses it, in headless Chromium against the real server process.

Start a run from an uploaded photo (tiny profile, review on), follow it live, answer the review
through the page, see it finish; the list and run pages fit desktop and phone widths.
"""

from __future__ import annotations

import subprocess
import time
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.browser import DESKTOP, PHONE, chromium, fits, not_blank
from tests.cli import cli_env, tiny_profile_that_never_stops_early
from tests.procs import free_port, server
from tests.test_report_browser import keep
from thinkedit.tools.profiles import DEMO_NOTE

pytestmark = pytest.mark.slow

CHELSEA = Path(__file__).resolve().parent.parent / "examples" / "chelsea.png"


@contextmanager
def long_runs_gallery(tmp_path: Path, data_dir: Path) -> Iterator[str]:
    """Serve ``thinkedit ui`` whose page-started runs never stop early; yield its base URL."""
    port, profile = free_port(), tiny_profile_that_never_stops_early(tmp_path)
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "ui", "--port", str(port), "--profile", str(profile),
           "--data-dir", str(data_dir)]
    base = f"http://127.0.0.1:{port}/"
    with server(cmd, base + "health", env=cli_env(data_dir), log=tmp_path / "ui.log"):
        yield base


def test_gallery_starts_follows_and_reviews_a_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with long_runs_gallery(tmp_path, data_dir) as base, chromium() as page:
        page.viewport(*DESKTOP)
        page.goto(base)
        page.wait_for("document.querySelector('#runs .empty') && !document.querySelector('#runs').textContent.includes('Loading')")

        # Start a run from the page: upload, instruction, two rounds, review on.
        page.set_files("#image", [CHELSEA])
        page.js("""(() => { const f = document.getElementById('new-run');
            f.instruction.value = 'make the cat wear a red hat'; f.max_rounds.value = '2'; f.review.checked = true;
            f.querySelector('button').click(); })()""")
        page.wait_for("location.pathname.startsWith('/runs/')", timeout=60)
        run_id = page.js("location.pathname.split('/')[2]")
        page.wait_for("document.readyState === 'complete' && !!window.thinkeditView")
        page.js("window.__samePage = true")  # a reload would lose it: updates must come live

        # Round 1 arrives over server-sent events, then the run pauses for review.
        page.wait_for("!!document.querySelector('.te-review button[data-review=approve]')", timeout=300)
        assert page.js("document.querySelectorAll('.te-round').length") == 1
        assert "awaiting review" in page.js("document.querySelector('h1').innerText")
        assert page.js("window.__samePage") is True
        fits(page.layout())

        # Answer through the page: replace the instruction.
        page.js("""(() => { document.querySelector('.te-review-text').value = 'put a small red hat on the cat';
            document.querySelector('.te-review button[data-review=edit]').click(); })()""")
        page.wait_for("document.querySelectorAll('.te-round').length === 2 && "
                      "document.querySelector('h1 .te-badge').textContent === 'done'", timeout=300)
        dom = page.js("""(() => ({
            instructions: [...document.querySelectorAll('.te-round')].map(c => c.querySelector('pre').textContent),
            chosen: document.querySelectorAll('.te-round.chosen').length,
            lines: document.querySelectorAll('.te-chart svg polyline').length,
            review: !!document.querySelector('.te-review'),
            same: window.__samePage === true,
            images: [...document.images].every(i => i.complete && i.naturalWidth > 0),
            demo: document.querySelector('.te-warn') && document.querySelector('.te-warn').textContent,
        }))()""")
        assert dom["instructions"] == ["make the cat wear a red hat", "put a small red hat on the cat"], dom
        assert dom["demo"] == DEMO_NOTE  # the tiny models' noise is said on the run page
        assert dom["chosen"] == 1 and dom["lines"] == 3 and not dom["review"] and dom["same"] and dom["images"]
        not_blank(page.screenshot(tmp_path / "gallery-run.png"))

        # Back on the list: the run's card with its status, scores and a thumbnail.
        page.goto(base)
        page.wait_for(f"!!document.querySelector('.run[data-run=\"{run_id}\"][data-status=done] img')"
                      " && [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert "2 rounds · chose round" in page.js(f"document.querySelector('.run[data-run=\"{run_id}\"]').innerText")
        assert page.js(f"document.querySelector('.run[data-run=\"{run_id}\"] .demo').textContent") == DEMO_NOTE
        fits(page.layout())
        keep(not_blank_shot := page.screenshot(tmp_path / "gallery.png"))
        not_blank(not_blank_shot)

        for url in (base, f"{base}runs/{run_id}"):
            page.viewport(*PHONE)
            page.goto(url)
            page.wait_for("[...document.images].length > 0 && [...document.images].every(i => i.complete)")
            layout = page.js("({inner: innerWidth, scroll: document.documentElement.scrollWidth})")
            assert layout["inner"] == PHONE[0] and layout["scroll"] <= layout["inner"], (url, layout)
            not_blank(page.screenshot(tmp_path / "phone.png"))


def test_gallery_follows_a_run_the_cli_drives(tmp_path: Path) -> None:
    """A run started by ``thinkedit edit`` in the same data dir shows up and updates live until it ends."""
    data_dir, port = tmp_path / "data", free_port()
    profile = tiny_profile_that_never_stops_early(tmp_path)
    cmd = [sys.executable, "-m", "thinkedit.servers.cli", "ui", "--port", str(port), "--data-dir", str(data_dir)]
    base = f"http://127.0.0.1:{port}/"
    with server(cmd, base + "health", env=cli_env(data_dir), log=tmp_path / "ui.log"), chromium() as page:
        edit = subprocess.Popen(
            [sys.executable, "-m", "thinkedit.servers.cli", "edit", str(CHELSEA), "make the cat wear a red hat",
             "--profile", str(profile), "--max-rounds", "4", "--data-dir", str(data_dir), "--out", str(tmp_path / "out")],
            env=cli_env(data_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            run_id = edit.stderr.readline().split()[1]  # "run <id> · profile ..."
            # The CLI names the run at once, before the models load; the gallery knows it once it is recorded.
            deadline = time.monotonic() + 120
            while httpx.get(f"{base}api/runs/{run_id}").status_code == 404 and time.monotonic() < deadline:
                time.sleep(0.2)
            page.viewport(*DESKTOP)
            page.goto(f"{base}runs/{run_id}")
            page.wait_for("!!window.thinkeditView")
            assert page.js("window.thinkeditView.data().status") == "running"
            page.js("window.__samePage = true")
            page.wait_for("document.querySelectorAll('.te-round').length === 4 && "
                          "document.querySelector('h1 .te-badge').textContent === 'done'", timeout=300)
            assert page.js("window.__samePage") is True
            assert page.js("document.querySelectorAll('.te-round.chosen').length") == 1
        finally:
            edit.wait(timeout=300)
        assert edit.returncode == 0, edit.stderr.read()


def test_gallery_cancels_and_deletes_runs(tmp_path: Path) -> None:
    """Cancel a live run and a paused one from their pages, then delete both; shared images go with the last user."""
    data_dir = tmp_path / "data"

    base = ""  # set by the gallery below

    def stored() -> set[str]:
        return {p.stem for p in data_dir.rglob("*.png") if len(p.stem) == 64}

    def images(run_id: str) -> set[str]:
        view = httpx.get(f"{base}api/runs/{run_id}").json()
        return {view["source_image"]["sha256"]} | {r["image"]["sha256"] for r in view["rounds"]}

    with long_runs_gallery(tmp_path, data_dir) as base, chromium() as page:
        page.viewport(*DESKTOP)

        def start(instruction: str, rounds: int, review: bool) -> str:
            page.goto(base)
            page.set_files("#image", [CHELSEA])
            page.js(f"""(() => {{ const f = document.getElementById('new-run'); f.instruction.value = '{instruction}';
                f.max_rounds.value = '{rounds}'; f.review.checked = {str(review).lower()};
                f.querySelector('button').click(); }})()""")
            page.wait_for("location.pathname.startsWith('/runs/') && !!window.thinkeditView", timeout=60)
            return page.js("location.pathname.split('/')[2]")

        def badge() -> str:
            return page.js("document.querySelector('h1 .te-badge').textContent")

        def visible(action: str) -> bool:
            return page.js(f"!document.querySelector('[data-action={action}]').hidden")

        # A live run, cancelled from its page mid-way.
        live = start("make the cat wear a red hat", 50, False)
        page.wait_for("document.querySelectorAll('.te-round').length >= 1", timeout=300)
        assert badge() == "running" and visible("cancel") and not visible("delete")
        page.js("document.querySelector('[data-action=cancel]').click()")
        page.wait_for("document.querySelector('h1 .te-badge').textContent === 'cancelled'", timeout=120)
        assert not visible("cancel") and visible("delete")
        assert page.js("document.querySelector('.te-error').textContent") == "cancelled"
        started = page.js("document.querySelector('.te-meta time').textContent")
        assert started and "T" not in started and "+00:00" not in started  # local and readable, not ISO
        assert httpx.get(f"{base}api/runs/{live}").json()["status"] == "cancelled"

        # A second run of the same photo pauses for review; it is cancelled from its page too.
        paused = start("put a small hat on the cat", 3, True)
        page.wait_for("!!document.querySelector('.te-review button[data-review=approve]')", timeout=300)
        page.js("document.querySelector('[data-action=cancel]').click()")
        page.wait_for("document.querySelector('h1 .te-badge').textContent === 'cancelled'", timeout=120)
        mine, theirs = images(live), images(paused)
        assert mine <= stored() and theirs <= stored() and mine & theirs  # the source at least is shared

        # Delete the first from its page (a second click confirms): the list no longer has it.
        page.goto(f"{base}runs/{live}")
        page.wait_for("!!window.thinkeditView")
        page.js("document.querySelector('[data-action=delete]').click()")
        assert live in page.js("location.pathname")  # armed only
        page.js("document.querySelector('[data-action=delete]').click()")
        page.wait_for("location.pathname === '/' && !!document.querySelector('.run')")
        cards = page.js("[...document.querySelectorAll('.run')].map(c => [c.dataset.run, c.innerText])")
        assert [c[0] for c in cards] == [paused], cards
        assert "cancelled" in page.js("document.querySelector('.run .error').textContent")
        assert "1 round" in cards[0][1] and "1 rounds" not in cards[0][1] and "T" not in page.js(
            "document.querySelector('.run time').textContent")
        assert httpx.get(f"{base}api/runs/{live}").status_code == 404
        assert not (stored() & (mine - theirs)) and (mine & theirs) <= stored()

        page.goto(f"{base}runs/{paused}")
        page.wait_for("!!window.thinkeditView")
        page.js("document.querySelector('[data-action=delete]').click(); document.querySelector('[data-action=delete]').click()")
        page.wait_for("location.pathname === '/' && !!document.querySelector('#runs .empty')")
        assert not (stored() & (mine | theirs)) and httpx.get(f"{base}api/runs").json()["runs"] == []
