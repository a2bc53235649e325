"""Run ``thinkedit`` with scripted backends registered (tests only, never product code).

A real server process whose edits take a known time, so tests of cancellation and hand-off over
a real transport do not depend on how fast the tiny models happen to be. Select them with a
profile file whose editor and thinker backend is ``scripted``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.fakes import ScriptedEditor
from thinkedit.tools import registry
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.types import JudgeRequest, Verdict

registry.EDITOR_BACKENDS["scripted"] = "tests.mcp_scripted_server:SlowEditor"
registry.THINKER_BACKENDS["scripted"] = "tests.mcp_scripted_server:NeverSatisfiedThinker"

PROFILE = """\
description = "scripted backends for tests"
[editor]
backend = "scripted"
model = "slow-editor"
settings = {{delay = {delay}}}
[thinker]
backend = "scripted"
model = "never-satisfied"
[loop]
max_rounds = {max_rounds}
"""


def write_profile(path: Path, delay: float = 0.5, max_rounds: int = 4) -> Path:
    """Write a profile that selects the scripted backends; return its path."""
    path.write_text(PROFILE.format(delay=delay, max_rounds=max_rounds))
    return path


class SlowEditor(ScriptedEditor):
    """Take ``settings.delay`` seconds per edit."""

    def __init__(self, config: EditorConfig) -> None:
        super().__init__(name=config.model, delay=float(config.settings.get("delay", 0.5)))


class NeverSatisfiedThinker:
    """Score every edit low and always propose a new instruction, so runs use every round."""

    def __init__(self, config: ThinkerConfig) -> None:
        self.name = config.model

    async def judge(self, request: JudgeRequest) -> Verdict:
        return Verdict(
            semantic=3, quality=4, reasoning="not yet", refined_instruction=request.current_instruction + "!"
        )


if __name__ == "__main__":
    from thinkedit.servers.cli import main

    sys.exit(main())
