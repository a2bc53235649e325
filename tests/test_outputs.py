"""The files a finished run leaves behind: final.png, round PNGs, trajectory.json, report.html."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from PIL import Image

from thinkedit.agent.viewer import write_outputs
from tests.fakes import ScriptedThinker, verdicts
from tests.test_graph import run


#: A refined instruction shaped like the report's image placeholders, one with another call's nonce, and a café.
SLOT_SHAPED = "thinkedit-image-0 and thinkedit-image-0123456789abcdef-0 stay text, in a café"


async def test_outputs_hold_every_round(data_dir, photo, tmp_path: Path) -> None:
    script = verdicts((3, 4, "add a <b>red</b> hat"), (9, 7, "b"), (5, 5, SLOT_SHAPED))
    state, _, _, _, runner = await run(data_dir, photo, ScriptedThinker(script), max_rounds=3)
    paths = write_outputs(state, runner.store, tmp_path / "out")

    assert Image.open(paths["final"]).size == photo.size
    assert Image.open(paths["final"]).tobytes() == runner.store.get(state.rounds[1].image).tobytes()
    for i in (1, 2, 3):
        assert (tmp_path / "out" / f"round-{i}.png").is_file()

    data = json.loads(paths["trajectory"].read_text())
    assert {"run_id", "instruction", "status", "stop_reason", "best_round", "final_image", "rounds"} <= set(data)
    assert data["status"] == "done" and data["stop_reason"] == "max_rounds" and data["best_round"] == 2
    first = data["rounds"][0]
    for key in ("index", "instruction", "seed", "image", "semantic", "quality", "reasoning",
                "refined_instruction", "edit_seconds", "think_seconds"):
        assert key in first
    assert (first["semantic"], first["quality"], first["refined_instruction"]) == (3, 4, "add a <b>red</b> hat")

    html = paths["report"].read_text(encoding="utf-8")
    # Self-contained: the source and every round embedded, the renderer inlined, nothing fetched.
    assert html.count('"src": "data:image/png;base64,') == 1 + len(state.rounds)
    assert "http://" not in html and "https://" not in html and "<script src" not in html
    assert 'name="viewport"' in html and "ThinkeditRun" in html
    assert "make the cat wear a red hat" in html
    assert "<b>red</b>" not in html and "add a \\u003cb\\u003ered" in html  # text cannot close the data block
    data_block = html.split('id="thinkedit-run-data">')[1].split("</script>")[0]
    embedded = json.loads(data_block)
    assert embedded["best_round"] == 2 and [r["index"] for r in embedded["rounds"]] == [1, 2, 3]
    assert embedded["settings"]["max_rounds"] == 3 and embedded["stop_reason"] == "max_rounds"
    # Each image is the stored PNG itself; text shaped like the report's image placeholders stays text.
    for r, stored in zip(embedded["rounds"], state.rounds):
        assert base64.b64decode(r["image"]["src"].split(",", 1)[1]) == runner.store.read_bytes(stored.image)
    assert embedded["rounds"][2]["refined_instruction"] == SLOT_SHAPED
