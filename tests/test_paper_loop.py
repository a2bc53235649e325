"""loop_mode = "paper": the published inference loop exactly (DESIGN §12), beside our default."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.fakes import ScriptedThinker, verdicts
from tests.test_graph import make_settings, run
from thinkedit.agent.routing import paper_stop_reason
from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.profiles import load_profile
from thinkedit.tools.types import Verdict


def v(semantic: float, quality: float, answer: str = "next", satisfied: bool | None = None) -> Verdict:
    return Verdict(semantic=semantic, quality=quality, refined_instruction=answer, satisfied=satisfied)


@pytest.mark.parametrize(
    ("verdict", "used", "expected"),
    [
        (v(8, 8), "a", "threshold_met"),
        (v(8, 7.9), "a", None),
        (v(3, 3, ""), "a", "thinker_satisfied"),  # an empty answer counts as satisfied
        (v(3, 3, "  "), "a", "thinker_satisfied"),
        (v(3, 3, "make it red"), "make it red", "instruction_unchanged"),
        (v(3, 3, " make it red "), "make it red", "instruction_unchanged"),
        (v(3, 3, "Make it RED"), "make it red", None),  # compared as written, unlike our default
        (v(3, 3, "x", satisfied=True), "a", "thinker_satisfied"),
    ],
)
def test_paper_stop_rule(verdict: Verdict, used: str, expected: str | None) -> None:
    assert paper_stop_reason(verdict, instruction_used=used) == expected


def test_paper_mode_fixes_what_the_paper_has_no_choice_about(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, loop_mode="paper", selection="best", edit_from="previous", candidates=3,
                             seed_policy="increment", semantic_threshold=9)
    assert (settings.selection, settings.edit_from, settings.candidates, settings.seed_policy) == (
        "last", "source", 1, "fixed")
    assert settings.semantic_threshold == 8 and settings.seed == 0 and settings.max_rounds == 5


def test_paper_profile() -> None:
    profile = load_profile("paper", env={})
    assert profile.loop == {"loop_mode": "paper", "max_rounds": 5, "seed": 0}
    assert profile.editor.model == "flux-kontext-dev" and profile.thinker.model == "appletea2333/EditThinker-8B"
    assert LoopSettings.from_profile("paper").selection == "last"


async def test_five_edits_the_last_never_critiqued_and_returned(data_dir: Path, photo: Image.Image) -> None:
    script = verdicts((9, 7, "a"), (7, 9, "b"), (9.5, 7.5, "c"), (2, 2, "d"), (10, 10, "never asked"))
    state, editor, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(script), loop_mode="paper",
                                             instruction="put a hat on the cat")
    assert [c.instruction for c in editor.calls] == ["put a hat on the cat", "a", "b", "c", "d"]
    assert all(c.seed == 0 for c in editor.calls) and all(c.image.size == photo.size for c in editor.calls)
    assert len(thinker.calls) == 4  # rounds 1-4 critiqued; round 5 is not
    assert state.rounds[-1].verdict is None and state.stop_reason == "max_rounds"
    assert state.best_round == 5 and state.final_image == state.rounds[-1].image


async def test_the_uncritiqued_last_round_is_priced_too(data_dir: Path, photo: Image.Image) -> None:
    script = verdicts((9, 7, "a"), (7, 9, "b"))
    pricing = {"scripted": {"per_image": 0.25}}  # editor and thinker: the scripted thinker reports no tokens
    state, *_, runner = await run(data_dir, photo, ScriptedThinker(script), loop_mode="paper", max_rounds=3,
                                  pricing=pricing)
    assert [r.verdict is None for r in state.rounds] == [False, False, True]
    assert [r.usage.cost_usd for r in state.rounds] == [0.25, 0.25, 0.25]
    total = state.total_usage()
    assert total.cost_usd == 0.75 and total.unpriced == []
    assert runner.registry.load(state.run_id).usage["cost_usd"] == 0.75  # what the views and the CLI show


async def test_our_default_differs_on_the_same_script(data_dir: Path, photo: Image.Image) -> None:
    script = verdicts((9, 7, "a"), (7, 9, "b"), (9.5, 7.5, "c"), (2, 2, "d"), (3, 3, "e"))
    state, _, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(script), instruction="put a hat on the cat")
    assert len(thinker.calls) == 5 and state.rounds[-1].verdict is not None  # every round critiqued
    assert state.best_round == 3  # the best round, not the last


async def test_paper_mode_stops_early_on_its_rule_and_returns_that_image(data_dir: Path, photo: Image.Image) -> None:
    script = verdicts((3, 4, "add a red hat"), (4, 4, ""))
    state, editor, thinker, _, _ = await run(data_dir, photo, ScriptedThinker(script), loop_mode="paper")
    assert len(editor.calls) == 2 and state.stop_reason == "thinker_satisfied" and state.best_round == 2
