"""The ThinkEdit data rules on hand-built trajectories with known answers (pure functions)."""

from __future__ import annotations

import pytest

from thinkedit.apps.dataset.formats import prompt_text, rl_record, sft_record, target_text
from thinkedit.apps.dataset.rules import (
    balance,
    best_round,
    construct,
    keep_reason,
    score_bucket,
    split,
    truncate,
    unroll,
)
from thinkedit.tools.thinkers.verdicts import parse_editthinker
from thinkedit.tools.thinkers.prompt import load_template


def traj(tid: str, scores: list[float], *, task: str = "add", stop: str = "max_rounds", status: str = "done") -> dict:
    """A recorded trajectory whose round i has overall score scores[i-1] (semantic = quality = score)."""
    return {
        "id": tid,
        "instruction": "put a hat on the cat",
        "task_type": task,
        "status": status,
        "stop_reason": stop,
        "source_image": "source.png",
        "thinker": {"model": "expert-x"},
        "rounds": [
            {
                "index": i,
                "instruction": "put a hat on the cat" if i == 1 else f"instruction {i}",
                "image": f"round-{i}.png",
                "semantic": s,
                "quality": s,
                "overall": s,
                "reasoning": f"reasoning {i}",
                "refined_instruction": f"instruction {i + 1}",
            }
            for i, s in enumerate(scores, start=1)
        ],
    }


@pytest.mark.parametrize(
    ("scores", "status", "reason"),
    [
        ([3, 5], "done", None),
        ([5, 5], "done", None),  # a later round reaching the first score is enough
        ([5, 4, 3], "done", "no_improvement"),
        ([9], "done", "single_round"),
        ([3, 5], "error", "unfinished"),
    ],
)
def test_filter_keeps_trajectories_whose_later_rounds_reach_the_first(scores, status, reason) -> None:
    assert keep_reason(traj("t", scores, status=status)) == reason


def test_filter_drops_a_round_without_verdict() -> None:
    t = traj("t", [3, 5])
    t["rounds"][1]["overall"] = None
    assert keep_reason(t) == "unscored_round"


@pytest.mark.parametrize(
    ("scores", "k"),
    [([3, 5], 2), ([5, 7, 7], 2), ([7, 5, 7], 3), ([3, 4, 9, 2], 3), ([1, 2, 3, 4, 5], 5)],
)
def test_best_round_is_the_first_later_round_with_the_best_later_score(scores, k) -> None:
    assert best_round(scores) == k


def test_truncate_cuts_after_the_best_round() -> None:
    cut = truncate(traj("t", [3, 4, 9, 2]))
    assert [r["index"] for r in cut["rounds"]] == [1, 2, 3]
    assert cut["best_step"] == 3 and cut["truncated"] is True
    assert truncate(traj("t", [3, 9]))["truncated"] is False


def test_unroll_pairs_each_critiqued_image_with_its_verdict_up_to_the_best_round() -> None:
    samples = unroll(truncate(traj("t", [3, 4, 9, 2])))
    # Rounds 1 and 2 led towards the best image (round 3); round 3's critique refined away from it.
    assert [s["step"] for s in samples] == [1, 2]
    first, second = samples
    assert first["previous_image"] == "round-1.png" and first["source_image"] == "source.png"
    assert first["original_instruction"] == "put a hat on the cat"
    assert first["previous_instruction"] == "put a hat on the cat"
    assert first["refined_instruction"] == "instruction 2" and first["reasoning"] == "reasoning 1"
    assert (first["semantic"], first["quality"], first["overall"]) == (3, 3, 3)
    assert second["previous_instruction"] == "instruction 2" and second["refined_instruction"] == "instruction 3"
    assert second["next_image"] == "round-3.png" and second["next_overall"] == 9
    assert not any(s["stop"] for s in samples)
    assert {s["task_type"] for s in samples} == {"add"} and {s["thinker"] for s in samples} == {"expert-x"}


@pytest.mark.parametrize(
    ("stop", "steps"),
    [("threshold_met", [1, 2]), ("thinker_satisfied", [1, 2]), ("instruction_unchanged", [1, 2]), ("max_rounds", [1])],
)
def test_the_best_rounds_own_critique_is_kept_only_when_the_thinker_stopped_there(stop, steps) -> None:
    samples = unroll(truncate(traj("t", [3, 9], stop=stop)))
    assert [s["step"] for s in samples] == steps
    assert samples[-1]["stop"] is (len(steps) == 2)


def test_a_truncated_trajectory_never_yields_a_stop_sample() -> None:
    samples = unroll(truncate(traj("t", [3, 9, 4], stop="threshold_met")))
    assert [s["step"] for s in samples] == [1]


def test_construct_counts_what_each_rule_dropped() -> None:
    trajectories = [traj("a", [3, 5]), traj("b", [5, 4]), traj("c", [8]), traj("d", [2, 3, 4], status="cancelled")]
    samples, dropped = construct(trajectories)
    assert dropped == {"no_improvement": 1, "single_round": 1, "unfinished": 1}
    assert [s["id"] for s in samples] == ["a-1"]


@pytest.mark.parametrize(
    ("score", "width", "bucket"), [(0, 2, 0), (1.99, 2, 0), (2, 2, 1), (9.9, 2, 4), (10, 2, 4), (10, 2.5, 3)]
)
def test_score_buckets(score, width, bucket) -> None:
    assert score_bucket(score, width) == bucket


def sample(tid: str, step: int, task: str, overall: float) -> dict:
    return {"id": f"{tid}-{step}", "trajectory": tid, "step": step, "task_type": task, "overall": overall}


def test_balance_caps_large_task_types_at_the_median_and_keeps_small_ones_whole() -> None:
    big = [sample(f"a{i}", 1, "add", 1.0) for i in range(4)] + [sample("a8", 1, "add", 5.0), sample("a9", 1, "add", 9.0)]
    small = [sample("b1", 1, "style", 3.0), sample("b2", 1, "style", 3.0)]
    tiny = [sample("c1", 1, "remove", 7.0), sample("c2", 1, "remove", 7.5)]
    kept = balance(big + small + tiny, seed=0)
    # Counts 6, 2, 2: the median cap is 2. "add" takes one sample from its lowest bucket and one from the next.
    by_task = {t: [s["id"] for s in kept if s["task_type"] == t] for t in ("add", "style", "remove")}
    assert len(by_task["add"]) == 2 and "a8-1" in by_task["add"]
    assert len({s for s in by_task["add"] if s.startswith(("a0", "a1", "a2", "a3"))}) == 1
    assert by_task["style"] == ["b1-1", "b2-1"] and by_task["remove"] == ["c1-1", "c2-1"]
    assert kept == sorted(kept, key=lambda s: (s["trajectory"], s["step"]))


def test_balance_draws_evenly_across_score_buckets_and_is_seeded() -> None:
    group = [sample(f"a{i}", 1, "add", 1.0) for i in range(4)] + [sample("a8", 1, "add", 5.0), sample("a9", 1, "add", 9.0)]
    kept = balance(group, max_per_task=3, seed=7)
    assert sorted(score_bucket(s["overall"]) for s in kept) == [0, 2, 4]
    assert balance(group, max_per_task=3, seed=7) == kept
    picks = {tuple(s["id"] for s in balance(group, max_per_task=3, seed=seed)) for seed in range(20)}
    assert len(picks) > 1  # the seed chooses which low-score sample is kept
    assert balance(group, max_per_task=10) == sorted(group, key=lambda s: s["trajectory"])


def test_split_keeps_trajectories_whole_per_task_type_and_is_deterministic() -> None:
    samples = [sample(f"a{i}", step, "add", 5.0) for i in range(4) for step in (1, 2)]
    samples += [sample(f"b{i}", 1, "style", 5.0) for i in range(2)]
    sft, rl = split(samples, rl_fraction=0.5, seed=3)
    assert len({s["trajectory"] for s in rl if s["task_type"] == "add"}) == 2
    assert len({s["trajectory"] for s in rl if s["task_type"] == "style"}) == 1
    assert not {s["trajectory"] for s in sft} & {s["trajectory"] for s in rl}
    assert len(sft) + len(rl) == len(samples)
    assert split(samples, rl_fraction=0.5, seed=3) == (sft, rl)
    assert split(samples, rl_fraction=0.0)[1] == [] and split(samples, rl_fraction=1.0)[0] == []
    with pytest.raises(ValueError):
        split(samples, rl_fraction=1.5)


def test_target_and_records_use_the_editthinker_format() -> None:
    s = unroll(truncate(traj("t", [3.5, 8])))[0]
    assert target_text(s) == (
        '<think>reasoning 1</think><score>{"semantic": 3.5, "quality": 3.5}</score><answer>instruction 2</answer>'
    )
    verdict = parse_editthinker(target_text(s))
    assert (verdict.semantic, verdict.quality, verdict.refined_instruction) == (3.5, 3.5, "instruction 2")

    template = load_template("editthinker")
    record = sft_record(s, template, ("images/t/source.png", "images/t/round-1.png"))
    user, assistant = record["messages"]
    assert user["role"] == "user" and assistant == {"role": "assistant", "content": target_text(s)}
    assert user["content"].startswith("<image><image>") and user["content"].count("<image>") == len(record["images"]) == 2
    assert "put a hat on the cat" in user["content"] and "${" not in user["content"]
    assert record["images"] == ["images/t/source.png", "images/t/round-1.png"]
    assert prompt_text(s, template) == user["content"]

    rl = rl_record(s, template, ("src", "prev"), "next")
    assert rl["answer"] == target_text(s) and rl["images"] == ["src", "prev"]
    assert rl["reference"]["overall"] == 3.5 and rl["next"] == {"image": "next", "overall": 8.0}
