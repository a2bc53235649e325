"""Check a run's inputs before its first line: what a person got wrong is one line, not a failed run.

These checks are cheap (no torch, no LangGraph): the profile and settings, the backends and models
named, the extras the in-process backends need, the image and the instruction. What needs a model
or a server (a hub id, a remote model name) is checked when the run reaches it.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.extras import missing_extra
from thinkedit.tools.types import MAX_REFERENCES

#: What the in-process backends import when they load (the registry imports them lazily).
_IN_PROCESS_MODULES = {"diffusers": ("torch", "diffusers"), "transformers": ("torch", "transformers")}


def check_backends(settings: LoopSettings, references: int = 0) -> None:
    """Fail on an unknown backend or model (listing the known ones), a missing extra, or too many references.

    ``references``: how many the run brings; an in-process editor's model says how many it takes.
    """
    from thinkedit.tools.registry import EDITOR_BACKENDS, THINKER_BACKENDS

    editor, thinker = settings.editor, settings.thinker
    for kind, backend, table in (("editor", editor.backend, EDITOR_BACKENDS), ("thinker", thinker.backend, THINKER_BACKENDS)):
        if backend not in table:
            raise BadInputError(f"unknown {kind} backend {backend!r}; choose from {sorted(table)}")
    if editor.backend == "diffusers":
        from thinkedit.tools.editors.models import get_model

        model = get_model(editor.model)
        if MAX_REFERENCES >= references and references + 1 > model.max_images:  # past MAX_REFERENCES: said later
            hint = "" if model.max_images > 1 else "; use qwen-image-edit-plus for references"
            raise BadInputError(f"editor {model.name!r} takes {model.max_images} input image(s) per edit; got the "
                                f"source and {references} reference(s) (--ref){hint}")
    if thinker.backend == "transformers" and not thinker.path and thinker.model.startswith("tiny-"):
        from thinkedit.tools.thinkers.tiny import TINY_BUILDERS

        if thinker.model not in TINY_BUILDERS:
            raise BadInputError(f"unknown tiny thinker {thinker.model!r}; choose from {sorted(TINY_BUILDERS)}")
    for kind, backend in (("editor", editor.backend), ("thinker", thinker.backend)):
        for module in _IN_PROCESS_MODULES.get(backend, ()):
            if find_spec(module) is None:
                error = missing_extra(ModuleNotFoundError(name=module), f"the {backend} {kind} backend")
                raise error or BadInputError(f"the {backend} {kind} backend needs {module!r}, which is not installed")


def check_inputs(image: str | Path, instruction: str) -> None:
    """Fail on an image that is missing, not an image or damaged, or an empty instruction (``--out``: ``out_folder``)."""
    from thinkedit.tools.images import load_image

    if not instruction.strip():
        raise BadInputError("instruction is empty")
    load_image(image)
