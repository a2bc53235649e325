"""The gallery's HTTP API in-process: listing, run views, images, uploads, reviews, bad input, the token."""

from __future__ import annotations

import asyncio
import io
from urllib.parse import urljoin
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from thinkedit.agent.runs import Runner, RunRegistry
from thinkedit.agent.settings import LoopSettings
from thinkedit.agent.viewer import asset
from thinkedit.servers.ui.app import GalleryConfig, build_app
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_settings


async def stored_run(data_dir: Path, photo, script, **overrides):
    """Run the real graph with scripted backends on the data dir's own stores (the gallery's)."""
    async with Runner.open(data_dir, backends=FakeBackends(ScriptedEditor(), ScriptedThinker(script))) as runner:
        record = runner.prepare(photo, "make the cat wear a red hat", make_settings(data_dir, **overrides))
        return await runner.start(record)


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def client(data_dir: Path, token: str | None = None, **kw) -> TestClient:
    config = GalleryConfig(data_dir=data_dir, settings=LoopSettings.from_profile("tiny", data_dir=str(data_dir)),
                           token=token, **kw)
    return TestClient(build_app(config), base_url="http://127.0.0.1:8770")


async def test_lists_runs_and_serves_views_and_images(data_dir: Path, photo) -> None:
    script = verdicts((3, 4, "add a red hat"), (9, 9, "x"))
    state = await stored_run(data_dir, photo, script, max_rounds=3)
    with client(data_dir) as http:
        runs = http.get("/api/runs").json()["runs"]
        assert [r["run_id"] for r in runs] == [state.run_id]
        card = runs[0]
        assert (card["status"], card["rounds"], card["best_round"], card["overall"]) == ("done", 2, 2, 9)
        thumb = http.get(card["thumbnail"])
        assert thumb.status_code == 200 and max(Image.open(io.BytesIO(thumb.content)).size) <= 320

        view = http.get(f"/api/runs/{state.run_id}").json()
        assert [r["index"] for r in view["rounds"]] == [1, 2] and view["best_round"] == 2
        assert view["settings"]["max_rounds"] == 3 and view["settings"]["editor"]["model"]
        full = http.get(urljoin(f"http://127.0.0.1:8770/runs/{state.run_id}", view["rounds"][0]["image"]["src"]))
        assert full.status_code == 200
        assert Image.open(io.BytesIO(full.content)).size == photo.size

        page = http.get(f"/runs/{state.run_id}").text
        assert "ThinkeditRun" in page and "EventSource" in page and 'data-feed="1"' in page
        assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere
        assert "http://" not in http.get("/").text.replace("http://127.0.0.1", "")

        # Unknown runs and images are 404/400 with a reason, never a crash.
        assert http.get("/api/runs/nosuchrun").status_code == 404
        assert http.get("/api/runs/bad..id").status_code in (400, 404)
        bad = http.get(f"/api/runs/{state.run_id}/images/round-9.png")
        assert bad.status_code == 400 and "no round 9" in bad.json()["error"]
        assert http.get(f"/api/runs/{state.run_id}/images/other.png").status_code == 400
        source = http.get(f"/api/runs/{state.run_id}/images/source.png?w=64")
        assert source.status_code == 200 and Image.open(io.BytesIO(source.content)).size[0] == 64
        wide = http.get(f"/api/runs/{state.run_id}/images/source.png?w=9999")
        assert wide.status_code == 400 and "w must be between 16 and 4096" in wide.json()["error"]
        assert http.post(f"/api/runs/{state.run_id}/review", json={"decision": "approve"}).status_code == 409
        assert http.post(f"/api/runs/{state.run_id}/review", json={"decision": "maybe"}).status_code == 422


def test_uploads_are_checked(data_dir: Path, photo) -> None:
    with client(data_dir, max_upload_bytes=1024 * 1024) as http:
        missing = http.post("/api/runs", data={"instruction": "x"})
        assert missing.status_code == 400 and "choose an image" in missing.json()["error"]
        empty = http.post("/api/runs", files={"image": ("a.png", png(photo), "image/png")}, data={"instruction": " "})
        assert empty.status_code == 400 and "instruction" in empty.json()["error"]
        junk = http.post("/api/runs", files={"image": ("a.png", b"not an image", "image/png")}, data={"instruction": "x"})
        assert junk.status_code == 400 and junk.json()["error"]
        big = http.post("/api/runs", files={"image": ("a.png", b"0" * (2 * 1024 * 1024), "image/png")},
                        data={"instruction": "x"})
        assert big.status_code == 413
        rounds = http.post("/api/runs", files={"image": ("a.png", png(photo), "image/png")},
                           data={"instruction": "x", "max_rounds": "500"})
        assert rounds.status_code == 400 and "max_rounds" in rounds.json()["error"]
        assert http.get("/api/runs").json()["runs"] == []  # nothing half-made was recorded
        assert RunRegistry.for_data(data_dir).list() == []


def test_token_and_host_rules(data_dir: Path) -> None:
    with client(data_dir, token="s3cret") as http:
        assert http.get("/api/runs").status_code == 401
        assert http.get("/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert http.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        first = http.get("/?token=s3cret", follow_redirects=False)
        assert first.status_code == 303 and "thinkedit_gallery_8770=s3cret" in first.headers["set-cookie"]
        assert http.get("/api/runs").status_code == 200  # the cookie now carries it
    with client(data_dir) as http:
        assert http.get("/api/runs", headers={"Host": "evil.example:8770"}).status_code == 403
        for name in ("LOCALHOST:8770", "127.0.0.2:8770", "[::1]:8770"):  # every name of this machine
            assert http.get("/api/runs", headers={"Host": name}).status_code == 200, name
        cross = http.post("/api/runs", data={"instruction": "x"}, headers={"Origin": "http://evil.example"})
        assert cross.status_code == 403


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5"])
def test_cli_refuses_an_exposed_address_without_a_token(host: str, monkeypatch, capsys) -> None:
    from thinkedit.servers.cli import main

    monkeypatch.delenv("THINKEDIT_TOKEN", raising=False)
    assert main(["ui", "--host", host]) == 2
    assert "without a token" in capsys.readouterr().err


def stored_pngs(data_dir: Path) -> set[str]:
    return {p.stem for p in (data_dir / "artifacts").rglob("*.png")}


async def test_cancel_and_delete_keep_what_other_runs_use(data_dir: Path, photo) -> None:
    two = await stored_run(data_dir, photo, verdicts((3, 4, "add a red hat"), (9, 9, "x")), max_rounds=2)
    one = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)  # same source, same first edit
    paused = await stored_run(data_dir, photo, verdicts((3, 3, "y")), max_rounds=3, review=True)
    shas = {r.image.sha256 for r in two.rounds} | {two.source.sha256}
    assert shas <= stored_pngs(data_dir) and one.rounds[0].image.sha256 == two.rounds[0].image.sha256
    with client(data_dir) as http:
        evil = {"Origin": "http://evil.example"}
        assert http.post(f"/api/runs/{paused.run_id}/cancel", headers=evil).status_code == 403
        assert http.delete(f"/api/runs/{two.run_id}", headers=evil).status_code == 403
        busy = http.delete(f"/api/runs/{paused.run_id}")
        assert busy.status_code == 409 and "cancel it before deleting" in busy.json()["error"]

        cancelled = http.post(f"/api/runs/{paused.run_id}/cancel")
        assert cancelled.json() == {"run_id": paused.run_id, "status": "cancelled"}
        assert http.get(f"/api/runs/{paused.run_id}").json()["status"] == "cancelled"
        assert http.post(f"/api/runs/{two.run_id}/cancel").json()["status"] == "done"  # finished: left as it is

        gone = http.delete(f"/api/runs/{two.run_id}").json()
        assert (gone["images_deleted"], gone["images_kept"]) == (1, 2)  # round 2 only; the others are shared
        assert http.get(f"/api/runs/{two.run_id}").status_code == 404
        assert stored_pngs(data_dir) & shas == {two.source.sha256, two.rounds[0].image.sha256}
        assert {r["run_id"] for r in http.get("/api/runs").json()["runs"]} == {paused.run_id, one.run_id}
        view = http.get(f"/api/runs/{one.run_id}").json()  # the run that shares them still shows its images
        assert http.get(urljoin(f"http://127.0.0.1:8770/runs/{one.run_id}", view["rounds"][0]["image"]["src"])).status_code == 200

        assert http.delete(f"/api/runs/{paused.run_id}").json()["deleted"] is True
        last = http.delete(f"/api/runs/{one.run_id}").json()
        assert last["images_kept"] == 0 and not stored_pngs(data_dir) & shas
        assert http.get("/api/runs").json()["runs"] == [] and RunRegistry.for_data(data_dir).list() == []


async def test_delete_removes_only_the_runs_own_files_from_its_output_folder(
    data_dir: Path, photo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkedit.agent.viewer import write_outputs

    monkeypatch.chdir(tmp_path)  # a relative --out is kept as the absolute folder it named
    states = []
    async with Runner.open(data_dir, backends=FakeBackends(ScriptedEditor(), ScriptedThinker(
            verdicts((3, 4, "add a red hat"), (9, 9, "x"), (9, 9, "x"), (9, 9, "x"))))) as runner:
        for rounds, out in ((2, "shared"), (1, "shared"), (1, "alone")):
            record = runner.prepare(photo, f"make the cat wear hat {rounds}{out}", make_settings(data_dir, max_rounds=rounds),
                                    out_dir=out)
            assert record.out_dir == str(tmp_path / out)
            states.append(state := await runner.start(record))
            write_outputs(state, runner.store, record.out_dir)
    first, second, alone = states
    shared = tmp_path / "shared"
    (shared / "notes.txt").write_text("mine")
    (shared / "round-draft.png").write_bytes(b"mine")
    before = {p.name: p.read_bytes() for p in shared.iterdir()}
    # The second run's outputs (its export took the first run's round 2 away with the first's report).
    assert set(before) == {"round-1.png", "final.png", "trajectory.json", "report.html", "notes.txt", "round-draft.png"}

    with client(data_dir) as http:
        # The folder holds the second run's outputs: the first run takes nothing.
        assert http.delete(f"/api/runs/{first.run_id}").json()["files_deleted"] == 0
        assert {p.name: p.read_bytes() for p in shared.iterdir()} == before
        assert http.delete(f"/api/runs/{second.run_id}").json()["files_deleted"] == 4
        assert sorted(p.name for p in shared.iterdir()) == ["notes.txt", "round-draft.png"]
        assert http.delete(f"/api/runs/{alone.run_id}").json()["files_deleted"] == 4
        assert not (tmp_path / "alone").exists()  # its own folder, emptied, goes too


async def test_bad_requests_get_the_gallerys_error_shape_and_status(data_dir: Path, photo) -> None:
    state = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)
    with client(data_dir) as http:
        bad_w = http.get(f"/api/runs/{state.run_id}/images/source.png", params={"w": "abc"})
        assert bad_w.status_code == 422 and "'query.w'" in bad_w.json()["error"], bad_w.text
        long = http.post(f"/api/runs/{state.run_id}/review", json={"decision": "edit", "instruction": "x" * 5000})
        assert long.status_code == 422 and "'instruction'" in long.json()["error"], long.text
        bomb = Image.new("L", (9000, 9000))  # more pixels than any image input takes
        big = http.post("/api/runs", data={"instruction": "x"}, files={"image": ("b.png", png(bomb), "image/png")})
        assert big.status_code == 413 and "pixels" in big.json()["error"], big.text
        over = Image.new("L", (4097, 4096))  # one column past what every server takes (SERVER_MAX_PIXELS)
        wide = http.post("/api/runs", data={"instruction": "x"}, files={"image": ("w.png", png(over), "image/png")})
        assert wide.status_code == 413 and "w.png is too large: 4097x4096" in wide.json()["error"], wide.text
        async with Runner.open(data_dir) as other:  # another process drives (here: holds) the run
            await other.locks.acquire(state.run_id)
            try:
                busy = http.delete(f"/api/runs/{state.run_id}")
                assert busy.status_code == 409 and "driven by" in busy.json()["error"], busy.text
            finally:
                await other.locks.release(state.run_id)


async def test_a_run_started_from_the_same_photo_during_a_delete_keeps_its_image(
    data_dir: Path, photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from thinkedit.agent.deletion import delete_run

    async with Runner.open(data_dir, backends=FakeBackends(ScriptedEditor(), ScriptedThinker(
            verdicts((9, 9, "x"), (9, 9, "x"))))) as runner:
        settings = make_settings(data_dir, max_rounds=1)
        first = await runner.start(runner.prepare(photo, "make the cat wear a red hat", settings))
        started: list = []
        real = runner.graph.checkpointer.adelete_thread

        async def upload_meanwhile(thread_id: str) -> None:  # between the scan of other runs and the removal
            started.append(runner.prepare(photo, "the same photo again", settings))
            await real(thread_id)

        monkeypatch.setattr(runner.graph.checkpointer, "adelete_thread", upload_meanwhile)
        gone = await delete_run(runner, first.run_id, data_dir / "outputs")
        (second,) = started
        assert second.source.sha256 == first.source.sha256
        assert gone.images_kept >= 1, gone
        assert runner.store.read_bytes(second.source)  # still stored: the new run can be read and resumed anywhere
        assert (await runner.start(second)).status == "done"


def test_answers_from_outside_the_routes_carry_the_security_headers(data_dir: Path) -> None:
    with client(data_dir, max_upload_bytes=1024) as http:
        big = http.post("/api/runs", data={"instruction": "x"}, files={"image": ("a.png", b"x" * 200_000, "image/png")})
        assert big.status_code == 413, big.text  # answered by the body limit, before any route or token check
        for answer in (big, http.get("/api/runs"), http.get("/")):
            assert answer.headers["x-frame-options"] == "DENY" and answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers.get_list("content-security-policy") and len(
                answer.headers.get_list("x-frame-options")) == 1  # once, however many layers add it
        assert "script-src" in http.get("/").headers["content-security-policy"]  # a page keeps its own policy


async def test_a_review_the_run_cannot_take_now_is_refused_not_lost(data_dir: Path, photo) -> None:
    """An answer for another round than the run's pause, or for a run another process drives, gets 409 at once."""
    paused = await stored_run(data_dir, photo, verdicts((3, 3, "y")), max_rounds=3, review=True)
    with client(data_dir) as http:
        both = http.post(f"/api/runs/{paused.run_id}/review", json={"decision": "approve", "instruction": "blue"})
        assert both.status_code == 400 and "takes no instruction" in both.json()["error"], both.text
        late = http.post(f"/api/runs/{paused.run_id}/review", json={"decision": "stop", "round": 2})
        assert late.status_code == 409 and "awaits review of round 1, not round 2" in late.json()["error"], late.text
        async with Runner.open(data_dir) as other:  # another process holds the run
            await other.locks.acquire(paused.run_id)
            try:
                busy = http.post(f"/api/runs/{paused.run_id}/review", json={"decision": "approve", "round": 1})
            finally:
                await other.locks.release(paused.run_id)
        assert busy.status_code == 409 and "another thinkedit process" in busy.json()["error"], busy.text
        assert http.get(f"/api/runs/{paused.run_id}").json()["status"] == "awaiting_review"


async def test_deleting_a_run_keeps_every_image_while_another_record_is_damaged(data_dir: Path, photo) -> None:
    """A record that cannot be read may name any image (here the photo both runs came from): nothing is removed."""
    import json

    gone = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)
    torn = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)
    (data_dir / "runs" / f"{torn.run_id}.json").write_text(
        (data_dir / "runs" / f"{torn.run_id}.json").read_text()[:-40])  # a record cut short
    before = stored_pngs(data_dir)
    with client(data_dir) as http:
        refused = http.delete(f"/api/runs/{gone.run_id}")
        assert refused.status_code == 400 and f"{torn.run_id}.json is damaged" in refused.json()["error"], refused.text
    assert stored_pngs(data_dir) == before and json.loads((data_dir / "runs" / f"{gone.run_id}.json").read_text())


async def test_an_interrupted_runs_stream_ends_and_its_page_says_why(data_dir: Path, photo) -> None:
    """A run a stopped server left 'running' (its record says how to continue it) is driven by nobody: the page's
    stream ends instead of polling for ever, and the page shows the note (run.js shows any error)."""
    from types import SimpleNamespace

    from thinkedit.servers.ui.events import StreamSlots, run_stream

    state = await stored_run(data_dir, photo, verdicts((9, 9, "x")), max_rounds=1)
    registry = RunRegistry.for_data(data_dir)
    record = registry.load(state.run_id)
    record.status, record.error = "running", "interrupted: the gallery stopped; continue it with thinkedit resume"
    registry.save(record)

    async def disconnected() -> bool:
        return False

    async def view(rec, live):  # type: ignore[no-untyped-def]
        return {"status": rec.status, "error": rec.error}

    async def no_change() -> None:
        await asyncio.sleep(0.05)

    request = SimpleNamespace(client=SimpleNamespace(host="127.0.0.1"), headers={}, is_disconnected=disconnected)
    stream = run_stream(request, StreamSlots(4), lambda: registry.load(state.run_id), view, lambda: False, no_change)
    events = await asyncio.wait_for(collect(stream), 10)
    assert events[-1].startswith("event: end") and "interrupted: the gallery stopped" in events[-2]
    assert "(d.error ? " in asset("run.js")  # the note is drawn whatever the status


async def collect(stream) -> list[str]:  # type: ignore[no-untyped-def]
    return [chunk async for chunk in stream]
