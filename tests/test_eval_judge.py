"""The judge: its prompt per benchmark, its parsing (the thinker parsers), and its calls to a thinker."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from thinkedit.apps.evaluation.benchmarks import BENCHMARKS, BenchItem
from thinkedit.apps.evaluation.judge import (
    BENCH_CRITERIA,
    Judge,
    JudgeScore,
    item_seed,
    judge_prompt_text,
    judge_thinker_config,
    parse_judge,
    write_judge_prompt,
)
from tests.fakes import ScriptedThinker, verdicts
from thinkedit.tools.config import ThinkerConfig
from thinkedit.tools.errors import BadInputError, ThinkerOutputError
from thinkedit.tools.thinkers.prompt import load_template, render_prompt


@pytest.mark.parametrize("bench", BENCHMARKS)
@pytest.mark.parametrize("protocol", ["editthinker", "expert"])
def test_judge_prompt_fills_the_benchmark_criteria_and_keeps_the_thinker_placeholders(bench, protocol, tmp_path) -> None:
    path = write_judge_prompt(tmp_path, bench, protocol)
    text = load_template(protocol, path)  # what any thinker backend does with prompt_file
    name, semantic, quality = BENCH_CRITERIA[bench]
    assert name in text and semantic in text and quality in text
    filled = render_prompt(text, original_instruction="make the sky pink", current_instruction="A pink sky.")
    assert "make the sky pink" in filled and "A pink sky." in filled and "${" not in filled
    assert ("<score>" in filled) == (protocol == "editthinker")
    assert ('"is_satisfied"' in filled) == (protocol == "expert")


def test_a_judge_prompt_of_your_own_must_keep_the_placeholders(tmp_path: Path) -> None:
    own = tmp_path / "own.txt"
    own.write_text("Judge ${original_instruction} for ${bench_name}. Notes: ${current_instruction}.")
    assert judge_prompt_text("gedit", "editthinker", own).startswith("Judge ${original_instruction} for GEdit-Bench.")
    own.write_text("Judge ${original_instruction} only.")
    with pytest.raises(BadInputError, match="current_instruction"):
        judge_prompt_text("gedit", "editthinker", own)
    with pytest.raises(BadInputError, match="not found"):
        judge_prompt_text("gedit", "editthinker", tmp_path / "missing.txt")
    with pytest.raises(BadInputError, match="criteria"):
        judge_prompt_text("nope", "editthinker")


def test_judge_config_is_the_thinker_with_the_judge_prompt(tmp_path: Path) -> None:
    thinker = ThinkerConfig(backend="chat-model", model="gpt-4.1", protocol="expert", base_url="http://x/v1")
    config = judge_thinker_config(thinker, tmp_path / "judge.txt")
    assert config.prompt_file == str((tmp_path / "judge.txt").resolve())
    assert config.model_dump(exclude={"prompt_file"}) == thinker.model_dump(exclude={"prompt_file"})


@pytest.mark.parametrize(
    ("text", "protocol", "expected"),
    [
        ('<think>hat present, sharp</think><score>{"semantic": 9, "quality": 4}</score><answer>none</answer>',
         "editthinker", (9, 4, 6.0, "", None)),
        ('<think>no hat</think>\n<score>{"semantic": "2/10", "quality": "8"}</score>\n<answer>The hat is missing.</answer>',
         "editthinker", (2, 8, 4.0, "The hat is missing.", None)),
        ('```json\n{"is_satisfied": false, "reason": "blurry", "semantic": 8, "quality": 2, '
         '"new_rewritten_prompt": "The face is blurred."}\n```', "expert", (8, 2, 4.0, "The face is blurred.", False)),
        ('{"is_satisfied": true, "reason": "done", "semantic": 10, "quality": 10, "new_rewritten_prompt": ""}',
         "expert", (10, 10, 10.0, "", True)),
    ],
)
def test_parse_judge_reads_both_protocols(text, protocol, expected) -> None:
    score = parse_judge(text, protocol, judge="j")
    assert (score.semantic, score.quality, score.overall, score.note, score.satisfied) == expected
    assert score.judge == "j"


@pytest.mark.parametrize(
    ("text", "protocol"),
    [
        ("", "editthinker"),
        ("looks fine to me, 9/10", "editthinker"),
        ('<score>{"semantic": 11, "quality": 5}</score><answer>x</answer>', "editthinker"),
        ('{"reason": "no scores"}', "expert"),
        ("not json", "expert"),
    ],
)
def test_parse_judge_rejects_garbage(text, protocol) -> None:
    with pytest.raises(ThinkerOutputError):
        parse_judge(text, protocol)


def test_parse_judge_rejects_an_unknown_protocol() -> None:
    with pytest.raises(BadInputError):
        parse_judge("{}", "viescore")


def item(notes: str = "") -> BenchItem:
    return BenchItem(bench="rise", key="temporal_1", instruction="show it a year later", task_type="temporal",
                     image=Path("x.png"), output_name="x.png", notes=notes)


async def test_judge_sends_the_instruction_and_the_notes_and_retries_unparseable_output() -> None:
    thinker = ScriptedThinker(verdicts((7, 9, "none")), failures=[ThinkerOutputError("garbled", "???")])
    judge = Judge(thinker, name="tiny", seed=3)
    source, edited = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "red")
    score = await judge.score(source, edited, item("A rotten banana."))
    assert isinstance(score, JudgeScore) and (score.semantic, score.quality, score.note) == (7, 9, "")
    assert score.overall == pytest.approx((7 * 9) ** 0.5, abs=1e-3) and score.judge == "tiny"
    first, second = thinker.calls
    assert first.original_instruction == "show it a year later" and first.current_instruction == "A rotten banana."
    assert first.source is source and first.edited is edited
    assert first.seed == item_seed(3, "temporal_1") and second.seed == first.seed + 1
    await judge.score(source, edited, item())
    assert thinker.calls[-1].current_instruction == "none"


async def test_judge_gives_up_after_its_attempts() -> None:
    thinker = ScriptedThinker(verdicts((7, 9, "none")), failures=[ThinkerOutputError("bad")] * 3)
    with pytest.raises(ThinkerOutputError):
        await Judge(thinker, attempts=3).score(Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8)), item())


def test_item_seeds_are_stable_and_differ_across_items() -> None:
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(0, "b")
    assert item_seed(1, "a") != item_seed(0, "a")
