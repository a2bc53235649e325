"""The benchmarks' floor: a bare LangGraph graph that takes thinkedit's steps around the same engines."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from tests.bench_support.bare_graph import BareLoop, bookkeeping
from tests.bench_support.pairs import Pairs, plain_run, sample, scaling_table
from tests.bench_support.photos import INSTRUCTION, SEED_STRIDE, Photos
from tests.bench_support.profile import every_round_profile
from tests.bench_support.spread import spread
from tests.bench_support.table import table
from tests.fakes import FakeBackends, ScriptedEditor, ScriptedThinker, verdicts
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings


def settings(data_dir: Path, rounds: int) -> LoopSettings:
    return LoopSettings.model_validate({
        "editor": {"backend": "scripted", "model": "scripted"},
        "thinker": {"backend": "scripted", "model": "scripted"},
        "data_dir": str(data_dir), "max_rounds": rounds, "seed": 7,
    })


def backends(delay: float = 0.0) -> FakeBackends:
    thinker = ScriptedThinker(verdicts((2, 3, "make the hat red"), (4, 4, "a brighter red"), (5, 5, "keep it")))
    return FakeBackends(ScriptedEditor(delay=delay), thinker)


async def test_the_bare_graph_sends_the_engines_what_the_plain_loop_sends(tmp_path: Path) -> None:
    source = Image.effect_noise((48, 32), 50).convert("RGB")
    run_settings = settings(tmp_path, 3)
    plain, bare_engines = backends(), backends()
    _, used = await plain_run(plain, run_settings, source, 3)
    async with BareLoop.open(tmp_path / "bare.sqlite", bare_engines) as bare:
        _, state = await bare.run(run_settings, source, INSTRUCTION, 3)
    assert state["used"] == used == [INSTRUCTION, "make the hat red", "a brighter red"]  # the scripted verdicts
    for theirs, ours in zip(plain.editor_.calls, bare_engines.editor_.calls, strict=True):
        assert (ours.instruction, ours.seed, ours.num_images) == (theirs.instruction, theirs.seed, theirs.num_images)
        assert ours.image.tobytes() == theirs.image.tobytes()
    for theirs, ours in zip(plain.thinker_.calls, bare_engines.thinker_.calls, strict=True):
        assert (ours.current_instruction, ours.original_instruction, ours.seed) == (
            theirs.current_instruction, theirs.original_instruction, theirs.seed)


def checkpoint_steps(path: Path, thread_id: str) -> list[int]:
    """Return the step numbers of a thread's checkpoints in a LangGraph SQLite file, in order."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT metadata FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id",
                            (thread_id,)).fetchall()
    return [json.loads(metadata)["step"] for (metadata,) in rows]


async def test_the_bare_graph_takes_and_checkpoints_thinkedits_steps(tmp_path: Path) -> None:
    image, run_settings = Image.effect_noise((16, 16), 40).convert("RGB"), settings(tmp_path, 3)
    async with BareLoop.open(tmp_path / "bare.sqlite", backends()) as bare:
        await bare.run(run_settings, image, INSTRUCTION, 3)
    async with Runner.open(tmp_path, backends=backends()) as runner:
        record = runner.prepare(image, INSTRUCTION, run_settings)
        state = await runner.start(record)
    assert state is not None and len(state.rounds) == 3
    ours = checkpoint_steps(tmp_path / "checkpoints.sqlite", record.run_id)
    # The input, then prepare, edit + critique per round, refine between rounds, stop: one checkpoint each.
    assert checkpoint_steps(tmp_path / "bare.sqlite", "bare-1") == ours == list(range(-1, 1 + 1 + 3 * 2 + 2 + 1))
    with sqlite3.connect(tmp_path / "bare.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_bare_bookkeeping_is_a_rounds_time_outside_the_engines(tmp_path: Path) -> None:
    async with BareLoop.open(tmp_path / "bare.sqlite", backends(delay=0.05)) as bare:
        seconds, state = await bare.run(settings(tmp_path, 2), Image.new("RGB", (16, 16)), INSTRUCTION, 2)
    # One edit and one critique time per round, each its own engine call's.
    assert len(state["used"]) == len(state["edit_seconds"]) == len(state["think_seconds"]) == 2
    assert seconds > 0 and all(s > 0 for s in (*state["edit_seconds"], *state["think_seconds"]))
    # A round's wall time less its mean edit and critique time.
    made_up = {**state, "edit_seconds": [2.0, 3.0], "think_seconds": [1.0, 0.5]}
    assert bookkeeping(10.0, made_up) == pytest.approx(10.0 / 2 - 2.5 - 0.75)


def test_the_scaling_table_shows_the_floor_where_it_was_measured() -> None:
    with_floor, without = Pairs(), Pairs()
    for pairs in (with_floor, without):
        pairs.graph, pairs.plain, pairs.bookkeeping = [0.5, 0.6], [0.5, 0.5], [0.020, 0.024]
    with_floor.bare, with_floor.bare_bookkeeping = [0.49, 0.55], [0.008, 0.010]
    table = scaling_table([("512×512 px", with_floor.summary()), ("K=4", without.summary())])
    rows = table.splitlines()
    assert rows[0].endswith("| the same for a bare LangGraph graph |")
    assert rows[2].startswith("| 512×512 px | 1.10 (IQR ")
    assert rows[2].endswith("| 22 ms (IQR 21–23, n=2) | 9 ms (IQR 8–10, n=2) |")
    assert rows[3].endswith("| 22 ms (IQR 21–23, n=2) | — |")  # no bare samples: no floor
    assert with_floor.summary()["graph_over_bare"].median == pytest.approx((0.5 / 0.49 + 0.6 / 0.55) / 2)


def test_make_bench_prints_the_floor_beside_the_bookkeeping() -> None:
    def pairs(bookkeeping: float, floor: float) -> Pairs:
        p = Pairs()
        p.graph, p.plain, p.bookkeeping = [0.50, 0.52, 0.51], [0.48, 0.50, 0.49], [bookkeeping] * 3
        p.bare, p.bare_bookkeeping = [0.49, 0.50, 0.50], [floor] * 3
        return p

    sizes = [(f"{side}×{side} px, 3 rounds, K=1", pairs(b, f).summary())
             for side, b, f in ((128, 0.016, 0.007), (256, 0.017, 0.008), (512, 0.020, 0.009))]
    loops = {"headline": pairs(0.018, 0.008).summary(), "scaling": sizes, "k4_over_k1": spread([3.0]),
             "pressure": "CPU pressure 1%"}
    one = spread([1.0])
    starts = {"initialize": one, "tools_list": one, "help": one, "sdk_initialize": spread([0.8]),
              "initialize_over_sdk": spread([1.1]), "pressure": ""}
    cpu = "direct 90 ms (80 on the event loop's thread); MCP 100 ms in the server (10 ...) + 20 ms in the client"
    text = table(loops, {"mcp_over_direct": one, "twin_over_direct": spread([1.01]), "cpu_text": cpu, "pressure": ""},
                 {"server_over_in_process": one, "server_over_paper": one, "on_over_off": spread([2.0]),
                  "pressure": ""}, starts)
    floor_row = next(row for row in text.splitlines() if "bare LangGraph graph" in row)
    floors = " / ".join(f"{ms} ms (IQR {ms}–{ms}, n=3)" for ms in (7, 8, 9))
    assert f"| {floors} | 9–9 ms (75%) | (no target) |" in floor_row
    ratio_row = next(row for row in text.splitlines() if row.startswith("| graph ÷ that bare graph"))
    assert "| 1.02 (IQR " in ratio_row
    floor_of_mcp = next(row for row in text.splitlines() if row.startswith("| the same direct run in a second"))
    assert "| 1.01 (IQR 1.01–1.01, n=1) |" in floor_of_mcp and "| (no target) |" in floor_of_mcp
    cpu_row = next(row for row in text.splitlines() if row.startswith("| CPU time per run"))
    assert f"| {cpu} |" in cpu_row
    no_cpu = table(loops, {"mcp_over_direct": one, "twin_over_direct": one, "cpu_text": None, "pressure": ""},
                   {"server_over_in_process": one, "server_over_paper": one, "on_over_off": spread([2.0]),
                    "pressure": ""}, starts)
    assert "CPU time per run" not in no_cpu  # no /proc: the row is left out
    sdk_row = next(row for row in text.splitlines() if row.startswith("| the same for the SDK's smallest"))
    assert "| 0.80 s (IQR 0.80–0.80, n=1) |" in sdk_row and "| (no target) |" in sdk_row
    over_sdk = next(row for row in text.splitlines() if row.startswith("| `serve mcp` ÷ the SDK's smallest"))
    assert "| 1.10 (IQR 1.10–1.10, n=1) |" in over_sdk


def test_fresh_photos_differ_from_each_other_and_the_photo_in_one_pixel(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.effect_noise((40, 30), 50).convert("RGB").save(photo)
    photos = Photos(tmp_path)
    copies = [Image.open(photos.fresh(photo)).convert("RGB") for _ in range(300)]  # past 256: the second byte counts
    original = Image.open(photo).convert("RGB")
    assert len({c.tobytes() for c in copies} | {original.tobytes()}) == 301
    for copy in copies[:3]:
        copy.putpixel((0, 0), original.getpixel((0, 0)))
        assert copy.tobytes() == original.tobytes()


async def test_a_sample_gives_every_side_a_fresh_photo_and_fails_a_run_that_stored_nothing_new(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.effect_noise((48, 32), 50).convert("RGB").save(photo)
    run_settings, photos, pairs = settings(tmp_path, 2), Photos(tmp_path), Pairs()
    engines = backends()
    async with Runner.open(tmp_path / "data", backends=engines) as runner, \
            BareLoop.open(tmp_path / "bare.sqlite", engines) as bare:
        run_settings = run_settings.model_copy(update={"data_dir": str(tmp_path / "data")})
        for _ in range(3):
            await sample(runner, engines, run_settings, photo, pairs, photos, bare=bare)
        assert len(pairs.graph) == len(pairs.plain) == len(pairs.bare) == len(pairs.bookkeeping) == 3
        # Each sample's three sides edited the same fresh copy, and no two samples the same one.
        inputs = [call.image.tobytes() for call in engines.editor_.calls[::2]]  # round 1 of each run
        assert len(set(inputs)) == 3 and len(engines.editor_.calls) == 3 * 3 * 2
        assert len(photos.stored) == 3 * 3  # source and two rounds, each new
        state = await runner.start(runner.prepare(photos.directory / "photo-1.png", INSTRUCTION, run_settings))
    with pytest.raises(AssertionError, match="an image an earlier run had"):
        photos.check(state)  # the same photo again: its source was stored already


async def test_the_plain_loop_and_the_bare_graph_read_a_photo_file_as_the_intake_does(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    image = Image.effect_noise((48, 32), 50).convert("RGB")
    image.save(photo)
    from_file, from_image = backends(), backends()
    await plain_run(from_file, settings(tmp_path, 2), photo, 2)
    await plain_run(from_image, settings(tmp_path, 2), image, 2)
    bare_engines = backends()
    async with BareLoop.open(tmp_path / "bare.sqlite", bare_engines) as bare:
        await bare.run(settings(tmp_path, 2), photo, INSTRUCTION, 2)
    for calls in (from_file.editor_.calls, bare_engines.editor_.calls):
        assert [c.image.tobytes() for c in calls] == [c.image.tobytes() for c in from_image.editor_.calls]


def test_each_fresh_photo_has_a_seed_of_its_own_and_a_run_may_store_nothing_twice(tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    Image.effect_noise((8, 8), 50).convert("RGB").save(photo)
    photos = Photos(tmp_path / "copies")
    seeds = []
    for _ in range(3):
        photos.fresh(photo)
        seeds.append(photos.seed(7))
    assert seeds == [7 + SEED_STRIDE, 7 + 2 * SEED_STRIDE, 7 + 3 * SEED_STRIDE]
    photos.check_digests(["a", "b"])
    photos.check_digests(["c"])
    with pytest.raises(AssertionError, match="an image an earlier run had"):
        photos.check_digests(["d", "a"])


def test_the_mcp_benchmark_profile_is_tiny_with_thresholds_out_of_reach(tmp_path: Path) -> None:
    profile = every_round_profile(tmp_path / "every-round.toml")
    ours, tiny = LoopSettings.from_profile(str(profile)), LoopSettings.from_profile("tiny")
    assert ours.semantic_threshold == ours.quality_threshold == 10  # the benchmark asserts every run used every round
    assert (ours.editor, ours.thinker, ours.max_rounds) == (tiny.editor, tiny.thinker, tiny.max_rounds)
