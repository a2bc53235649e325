"""A recording holds every image its trajectory names (candidates and references too), by file name only."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.fakes import ScriptedEditor, ScriptedThinker, verdicts
from tests.test_graph import make_runner, make_settings
from thinkedit.agent.recording import read_trajectories, record_trajectory
from thinkedit.apps.dataset.build import build_dataset


async def _best_of_k_with_a_reference(data_dir: Path, photo: Image.Image):  # type: ignore[no-untyped-def]
    # Round 1: candidates scored 3, 7, 5 (the second wins); round 2: 9 for the first, which meets the threshold.
    script = verdicts((3, 3, "a"), (7, 7, "b"), (5, 5, "c"), (9, 9, "x"), (2, 2, "y"), (2, 2, "z"))
    runner = make_runner(data_dir, ScriptedEditor(), ScriptedThinker(script))
    settings = make_settings(data_dir, seed=10, candidates=3, max_rounds=3)
    record = runner.prepare(photo, "put the hat from image 2 on the cat", settings,
                            references=[Image.new("RGB", (40, 30), "blue")])
    return await runner.start(record), runner


async def test_a_best_of_k_recording_with_a_reference_names_every_image_by_its_file(
    data_dir: Path, photo: Image.Image, tmp_path: Path
) -> None:
    state, runner = await _best_of_k_with_a_reference(data_dir, photo)
    folder = record_trajectory(state, runner.store, tmp_path / "recorded")
    text = (folder / "trajectory.json").read_text(encoding="utf-8")
    store_paths = {str(runner.store.local_path(ref)) for ref in state.reference_images}
    store_paths |= {str(runner.store.local_path(c.image)) for r in state.rounds for c in r.candidates}
    assert not any(path in text for path in store_paths)
    assert str(data_dir) not in text and '"uri"' not in text  # no path on this machine, no store reference
    data = json.loads(text)
    assert data["reference_images"] == ["reference-2.png"]
    assert [[c["image"] for c in r["candidates"]] for r in data["rounds"]] == [
        [f"round-{r['index']}-candidate-{k}.png" for k in (1, 2, 3)] for r in data["rounds"]
    ]
    named = [data["source_image"], *data["reference_images"]]
    named += [name for r in data["rounds"] for name in (r["image"], *(c["image"] for c in r["candidates"]))]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*named, "trajectory.json"])
    stored = [state.reference_images[0], *(c.image for r in state.rounds for c in r.candidates)]
    copies = ["reference-2.png", *(c["image"] for r in data["rounds"] for c in r["candidates"])]
    for ref, name in zip(stored, copies, strict=True):  # each file holds the very image its entry stood for
        assert (folder / name).read_bytes() == runner.store.local_path(ref).read_bytes()
    built = build_dataset(folder.parent, tmp_path / "dataset", rl_fraction=0.0)
    assert built["sft_samples"] == 2  # round 1, and round 2's verdict that stopped the run


async def test_data_build_still_reads_a_recording_that_kept_store_references(
    data_dir: Path, photo: Image.Image, tmp_path: Path
) -> None:
    """Recordings made before candidates and references were copied named candidates by their store reference."""
    state, runner = await _best_of_k_with_a_reference(data_dir, photo)
    folder = record_trajectory(state, runner.store, tmp_path / "recorded")
    data = json.loads((folder / "trajectory.json").read_text(encoding="utf-8"))
    data.pop("reference_images")
    for r, kept in zip(data["rounds"], state.rounds, strict=True):
        r["candidates"] = [
            {**c, "image": old.image.model_dump(mode="json")}
            for c, old in zip(r["candidates"], kept.candidates, strict=True)
        ]
    (folder / "trajectory.json").write_text(json.dumps(data), encoding="utf-8")
    for extra in [*folder.glob("round-*-candidate-*.png"), *folder.glob("reference-*.png")]:
        extra.unlink()
    assert [found for found, _ in read_trajectories(folder.parent)] == [folder]
    built = build_dataset(folder.parent, tmp_path / "dataset", rl_fraction=0.0)
    assert built["sft_samples"] == 2  # round 1, and round 2's verdict that stopped the run
