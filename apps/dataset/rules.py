"""ThinkEdit-style data construction rules, as pure functions on plain trajectory dicts.

Indexing. Round *i* of a recorded trajectory edited with instruction ``rounds[i].instruction``
and produced image ``rounds[i].image``; its verdict scored that image (``overall`` = S_i) and
proposed ``refined_instruction``, which round *i+1* used. The paper's step *t* (inputs: source
image, previous edited image I_{t-1}, original instruction, previous instruction T_{t-1};
outputs: reasoning R_t and refined instruction T_t) is therefore our round *t-1*'s verdict.

1. **Filter** — keep a trajectory whose later rounds reach at least its first score:
   ``max(S_2..S_n) >= S_1`` (so a one-round trajectory is dropped). Runs that did not finish,
   or have a round without a verdict, are dropped.
2. **Truncate** at the best round *k*: the first round after round 1 whose score equals
   ``max(S_2..S_n)``; rounds after *k* are dropped.
3. **Unroll** into one sample per verdict that led towards the best image: rounds 1..k-1.
   Round *k*'s own verdict is kept too when the run ended there on the thinker's own decision
   (``threshold_met``, ``thinker_satisfied``, ``instruction_unchanged``): it teaches stopping.
4. **Balance** (see ``balance``) by task type and score bucket.
5. **Split** (see ``split``) into SFT and RL sets by trajectory, per task type.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from statistics import median
from typing import Any

#: Stop reasons that mean the thinker itself judged the last round good enough.
THINKER_STOPS = frozenset({"threshold_met", "thinker_satisfied", "instruction_unchanged"})


def round_scores(trajectory: dict[str, Any]) -> list[float | None]:
    """Return S_1..S_n, the overall score of every round (None where a round has no verdict)."""
    return [None if r.get("overall") is None else float(r["overall"]) for r in trajectory.get("rounds", [])]


def keep_reason(trajectory: dict[str, Any]) -> str | None:
    """Return why the filter drops ``trajectory``, or None to keep it."""
    if trajectory.get("status") != "done":
        return "unfinished"
    scores = round_scores(trajectory)
    if len(scores) < 2:
        return "single_round"
    if any(s is None for s in scores):
        return "unscored_round"
    if max(scores[1:]) < scores[0]:  # type: ignore[type-var,operator]
        return "no_improvement"
    return None


def best_round(scores: list[float]) -> int:
    """Return k (1-based): the first round after round 1 whose score is the best of rounds 2..n."""
    later = scores[1:]
    return 2 + later.index(max(later))


def truncate(trajectory: dict[str, Any]) -> dict[str, Any]:
    """Return a copy cut after its best round k, noting k and whether rounds were dropped."""
    scores = [float(s) for s in round_scores(trajectory)]  # type: ignore[arg-type]
    k = best_round(scores)
    return {**trajectory, "rounds": trajectory["rounds"][:k], "best_step": k, "truncated": k < len(scores)}


def unroll(trajectory: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one training sample per kept verdict of a truncated trajectory (rounds 1..k-1, maybe k)."""
    rounds = trajectory["rounds"]
    last = len(rounds)
    stops_here = not trajectory.get("truncated", False) and trajectory.get("stop_reason") in THINKER_STOPS
    samples = []
    for position, r in enumerate(rounds, start=1):
        if position == last and not stops_here:
            break
        following = rounds[position] if position < last else None
        samples.append(
            {
                "id": f"{trajectory['id']}-{r['index']}",
                "trajectory": trajectory["id"],
                "step": r["index"],
                "task_type": trajectory.get("task_type") or "unknown",
                "source_image": trajectory["source_image"],
                "previous_image": r["image"],
                "original_instruction": trajectory["instruction"],
                "previous_instruction": r["instruction"],
                "reasoning": r.get("reasoning") or "",
                "semantic": float(r["semantic"]),
                "quality": float(r["quality"]),
                "overall": float(r["overall"]),
                "refined_instruction": r.get("refined_instruction") or "",
                "stop": following is None,
                "next_image": following["image"] if following else None,
                "next_overall": float(following["overall"]) if following else None,
                "thinker": (trajectory.get("thinker") or {}).get("model"),
            }
        )
    return samples


def construct(trajectories: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Filter, truncate and unroll; return the samples and how many trajectories each rule dropped."""
    dropped: dict[str, int] = defaultdict(int)
    samples: list[dict[str, Any]] = []
    for trajectory in sorted(trajectories, key=lambda t: str(t["id"])):
        reason = keep_reason(trajectory)
        if reason is not None:
            dropped[reason] += 1
            continue
        samples.extend(unroll(truncate(trajectory)))
    return samples, dict(dropped)


def score_bucket(score: float, width: float = 2.0) -> int:
    """Return the bucket of a 0-10 score: floor(score / width), 10 joining the top bucket."""
    top = math.ceil(10.0 / width) - 1
    return min(int(score // width), top)


def _order(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(samples, key=lambda s: (str(s["trajectory"]), int(s["step"])))


def balance(
    samples: list[dict[str, Any]], *, max_per_task: int | None = None, bucket_width: float = 2.0, seed: int = 0
) -> list[dict[str, Any]]:
    """Cap each task type's samples, drawing evenly across score buckets.

    The cap is ``max_per_task``, or else the median of the task types' sample counts (rounded
    up). A task type at or under the cap keeps every sample (nothing is duplicated). A larger
    one is cut to the cap by taking samples round-robin from its score buckets (bucket =
    ``score_bucket`` of the critiqued image's overall score), lowest bucket first, each bucket
    in an order shuffled with ``Random(f"{seed}/{task}/{bucket}")``; a bucket that runs out drops
    out of the rotation. The result is ordered by (trajectory, step).
    """
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for sample in samples:
        by_task[str(sample["task_type"])].append(sample)
    if not by_task:
        return []
    cap = max_per_task if max_per_task is not None else math.ceil(median(len(v) for v in by_task.values()))
    kept: list[dict[str, Any]] = []
    for task in sorted(by_task):
        group = _order(by_task[task])
        if len(group) <= cap:
            kept.extend(group)
            continue
        buckets: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for sample in group:
            buckets[score_bucket(float(sample["overall"]), bucket_width)].append(sample)
        queues = []
        for bucket in sorted(buckets):
            queue = list(buckets[bucket])
            random.Random(f"{seed}/{task}/{bucket}").shuffle(queue)
            queues.append(queue)
        taken: list[dict[str, Any]] = []
        while len(taken) < cap:
            for queue in queues:
                if queue and len(taken) < cap:
                    taken.append(queue.pop(0))
            queues = [q for q in queues if q]
        kept.extend(taken)
    return _order(kept)


def split(
    samples: list[dict[str, Any]], *, rl_fraction: float = 0.2, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split into (SFT, RL) by whole trajectories, per task type, deterministically for ``seed``.

    Within each task type the trajectories (sorted by id) are shuffled with
    ``Random(f"{seed}/split/{task}")``; the first ``round(rl_fraction * count)`` (halves round up)
    go to RL, the rest to SFT. All samples of a trajectory land in the same set.
    """
    if not 0.0 <= rl_fraction <= 1.0:
        raise ValueError(f"rl_fraction must be within [0, 1], got {rl_fraction}")
    trajectories: dict[str, set[str]] = defaultdict(set)
    for sample in samples:
        trajectories[str(sample["task_type"])].add(str(sample["trajectory"]))
    to_rl: set[str] = set()
    for task in sorted(trajectories):
        ids = sorted(trajectories[task])
        random.Random(f"{seed}/split/{task}").shuffle(ids)
        to_rl.update(ids[: int(rl_fraction * len(ids) + 0.5)])
    ordered = _order(samples)
    return [s for s in ordered if s["trajectory"] not in to_rl], [s for s in ordered if s["trajectory"] in to_rl]
