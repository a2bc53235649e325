"""The backend provider's cache is the only engine cache: the nodes ask it for their engines every round."""

from __future__ import annotations

from dataclasses import dataclass, field

from thinkedit.agent.checkpoint import memory_checkpointer
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.config import EditorConfig, ThinkerConfig
from tests.fakes import ScriptedEditor, ScriptedThinker, verdicts


@dataclass
class SwappingBackends:
    """Hand out a fresh editor on every request, as a registry does after it drops or rebuilds an engine."""

    thinker_: ScriptedThinker
    editors: list[ScriptedEditor] = field(default_factory=list)

    def editor(self, config: EditorConfig) -> ScriptedEditor:
        self.editors.append(ScriptedEditor(name=f"editor-{len(self.editors) + 1}"))
        return self.editors[-1]

    def thinker(self, config: ThinkerConfig) -> ScriptedThinker:
        return self.thinker_


async def test_each_round_uses_the_engine_the_provider_hands_out_now(data_dir, photo) -> None:
    backends = SwappingBackends(ScriptedThinker(verdicts((3, 3, "a bigger red hat"), (3, 3, "a huge red hat"), (9, 9, "x"))))
    runner = Runner(data_dir, memory_checkpointer(), backends=backends)
    settings = LoopSettings.model_validate({
        "editor": {"backend": "scripted", "model": "scripted"}, "thinker": {"backend": "scripted", "model": "scripted"},
        "data_dir": str(data_dir), "max_rounds": 3,
    })
    state = await runner.start(runner.prepare(photo, "make the cat wear a red hat", settings))
    assert [r.index for r in state.rounds] == [1, 2, 3]
    # No second cache in the nodes: every round's edit went to the editor the provider returned for that round.
    assert [len(e.calls) for e in backends.editors] == [1, 1, 1]
    assert [e.calls[0].instruction for e in backends.editors] == [
        "make the cat wear a red hat", "a bigger red hat", "a huge red hat"]
