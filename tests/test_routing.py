"""The stop rule as a table, and round selection."""

from __future__ import annotations

import pytest

from thinkedit.agent.routing import route_after_critique, route_after_edit, select_round, stop_reason_for
from thinkedit.agent.state import Round
from thinkedit.tools.types import ImageRef, Verdict

REF = ImageRef(sha256="0" * 64, uri="/x.png", width=8, height=8)


def v(semantic: float, quality: float, refined: str = "next", satisfied: bool | None = None) -> Verdict:
    return Verdict(semantic=semantic, quality=quality, refined_instruction=refined, satisfied=satisfied)


@pytest.mark.parametrize(
    ("verdict", "used", "index", "max_rounds", "expected"),
    [
        (v(8, 8), "make it red", 1, 5, "threshold_met"),
        (v(10, 9.5), "make it red", 5, 5, "threshold_met"),
        (v(8, 7.9), "make it red", 1, 5, None),
        (v(7.9, 8), "make it red", 1, 5, None),
        (v(3, 3, satisfied=True), "make it red", 1, 5, "thinker_satisfied"),
        (v(3, 3, satisfied=False), "make it red", 1, 5, None),
        (v(3, 3, refined="make it red"), "make it red", 1, 5, "instruction_unchanged"),
        (v(3, 3, refined="  Make it  RED "), "make it red", 1, 5, "instruction_unchanged"),
        (v(3, 3, refined=""), "make it red", 1, 5, "instruction_unchanged"),
        (v(3, 3, refined="   "), "make it red", 2, 5, "instruction_unchanged"),
        (v(3, 3, refined="make it crimson"), "make it red", 4, 5, None),
        (v(3, 3, refined="make it crimson"), "make it red", 5, 5, "max_rounds"),
        (v(3, 3, refined="make it crimson"), "make it red", 1, 1, "max_rounds"),
        # The threshold outranks the other reasons when several hold at once.
        (v(9, 9, refined="", satisfied=True), "x", 5, 5, "threshold_met"),
    ],
)
def test_stop_rule(verdict: Verdict, used: str, index: int, max_rounds: int, expected: str | None) -> None:
    assert stop_reason_for(verdict, instruction_used=used, round_index=index, max_rounds=max_rounds) == expected


def test_custom_thresholds() -> None:
    assert stop_reason_for(v(6, 6), instruction_used="a", round_index=1, max_rounds=5,
                           semantic_threshold=6, quality_threshold=6) == "threshold_met"
    assert stop_reason_for(v(9, 9), instruction_used="a", round_index=1, max_rounds=5,
                           semantic_threshold=9.5, quality_threshold=0) is None


def test_route_follows_recorded_stop_reason() -> None:
    assert route_after_critique(None) == "refine"
    assert route_after_critique("max_rounds") == "stop"


def test_only_the_papers_loop_skips_its_last_critique() -> None:
    from thinkedit.agent.settings import LoopSettings

    ours = LoopSettings.from_profile("tiny", max_rounds=2)
    paper = ours.model_copy(update={"loop_mode": "paper"})
    assert [route_after_edit(ours, n) for n in (1, 2)] == ["critique", "critique"]
    assert [route_after_edit(paper, n) for n in (1, 2)] == ["critique", "stop"]


def rounds(*scores: tuple[float, float] | None) -> list[Round]:
    return [
        Round(index=i + 1, instruction=f"i{i}", seed=0, image=REF,
              verdict=None if s is None else Verdict(semantic=s[0], quality=s[1]))
        for i, s in enumerate(scores)
    ]


@pytest.mark.parametrize(
    ("scores", "selection", "expected"),
    [
        ([(3, 3), (9, 7), (5, 5)], "best", 2),
        ([(3, 3), (9, 7), (5, 5)], "last", 3),
        ([(6, 6), (6, 6)], "best", 2),  # ties go to the later round
        ([(4, 9), (6, 6)], "best", 2),  # overall is the geometric mean: 6.0 vs 6.0, then semantic
        ([(9, 4), (6, 6)], "best", 1),
        ([None], "best", 1),
    ],
)
def test_select_round(scores: list, selection: str, expected: int) -> None:
    assert select_round(rounds(*scores), selection).index == expected  # type: ignore[arg-type]


def test_select_round_empty() -> None:
    assert select_round([], "best") is None
