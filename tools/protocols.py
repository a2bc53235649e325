"""The two backend interfaces the loop depends on; implementations are chosen by name."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from thinkedit.tools.types import EditRequest, EditResult, JudgeRequest, Verdict


@runtime_checkable
class Editor(Protocol):
    """Edit an image following an instruction."""

    name: str

    async def edit(self, request: EditRequest) -> EditResult:
        """Return the edited image(s), each the size of ``request.image``."""
        ...


@runtime_checkable
class Thinker(Protocol):
    """Critique an edit and propose a better instruction, in one call."""

    name: str

    async def judge(self, request: JudgeRequest) -> Verdict:
        """Return scores, reasoning and the refined instruction for one edited image."""
        ...
