"""Judge a round's candidates so that a node retry asks again only for the critiques that failed.

When one candidate's critique fails for good, LangGraph's ``RetryPolicy`` reruns the whole
critique node, and by then the provider has billed the candidates that were answered. The node
keeps those verdicts here, per round, until it returns; a retry reuses them, so every billed
answer is counted once and paid for once. Answers that were billed but could not be used (cut off,
unparseable) are kept as usage too, so the round's cost counts them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from thinkedit.tools.errors import ThinkerOutputError
from thinkedit.tools.protocols import Thinker
from thinkedit.tools.types import JudgeRequest, Verdict
from thinkedit.tools.types import Usage

#: Rounds whose critique failed and may yet be retried, remembered at most (oldest forgotten first).
REMEMBERED_ROUNDS = 256


def billed_usage(exc: BaseException) -> Usage:
    """Return what a failed critique cost: a thinker call and its tokens when the provider answered."""
    if isinstance(exc, ThinkerOutputError) and exc.billed:
        tokens_in, tokens_out = exc.billed
        return Usage(critiques=1, thinker_input_tokens=tokens_in, thinker_output_tokens=tokens_out)
    return Usage()


@dataclass
class _Round:
    verdicts: dict[int, Verdict] = field(default_factory=dict)
    wasted: Usage = field(default_factory=Usage)


class Judgements:
    """Remember the finished critiques of rounds whose critique node has not returned yet."""

    def __init__(self, limit: int = REMEMBERED_ROUNDS) -> None:
        self._rounds: OrderedDict[Hashable, _Round] = OrderedDict()
        self._limit = limit

    async def judge(self, key: Hashable, thinker: Thinker, requests: list[JudgeRequest]) -> tuple[list[Verdict], Usage]:
        """Judge every request not judged yet under ``key``; return all verdicts and the billed usage of failures.

        Each critique runs to its end even when another fails (a cancelled one might be billed and
        lost); the first failure is raised after the others' verdicts are kept for the retry.
        """
        entry = self._rounds.pop(key, None) or _Round()
        self._rounds[key] = entry
        while len(self._rounds) > self._limit:
            self._rounds.popitem(last=False)
        missing = [i for i in range(len(requests)) if i not in entry.verdicts]
        outcomes = await asyncio.gather(*(thinker.judge(requests[i]) for i in missing), return_exceptions=True)
        failure: BaseException | None = None
        for i, outcome in zip(missing, outcomes):
            if isinstance(outcome, BaseException):
                entry.wasted = entry.wasted + billed_usage(outcome)
                failure = failure or outcome
            else:
                entry.verdicts[i] = outcome
        if failure is not None:
            raise failure
        self._rounds.pop(key, None)
        return [entry.verdicts[i] for i in range(len(requests))], entry.wasted
