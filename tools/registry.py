"""Choose editor and thinker backends by name, and keep loaded ones for reuse."""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.extras import missing_extra
from thinkedit.tools.protocols import Editor, Thinker

log = logging.getLogger(__name__)

# Each entry names "module:factory"; the module is imported only when the backend is used,
# so a remote-only setup never imports torch.
EDITOR_BACKENDS: dict[str, str] = {
    "diffusers": "thinkedit.tools.editors.diffusers_engine:DiffusersEditor",
    "openai-images": "thinkedit.tools.editors.openai_images:OpenAIImagesEditor",
    "openai-gpt-image": "thinkedit.tools.editors.gpt_image:GptImageEditor",
    "replicate": "thinkedit.tools.editors.replicate_kontext:ReplicateKontextEditor",
}
THINKER_BACKENDS: dict[str, str] = {
    "transformers": "thinkedit.tools.thinkers.transformers_vlm:TransformersThinker",
    "chat-model": "thinkedit.tools.thinkers.chat_model:ChatModelThinker",
}


def _factory(table: dict[str, str], kind: str, name: str) -> Callable[..., Any]:
    try:
        target = table[name]
    except KeyError:
        raise BadInputError(f"unknown {kind} backend {name!r}; choose from {sorted(table)}") from None
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc, f"the {name} {kind} backend")
        if error is None:
            raise
        raise error from exc
    return getattr(module, attr)


class BackendCache:
    """Build each distinct backend once per process; loading a pipeline takes a while.

    ``data_dir`` is where backends that build or cache models locally keep them (the tiny
    profile's models go to ``<data_dir>/models``); default ``$THINKEDIT_DATA_DIR`` or ``~/.thinkedit``.
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = data_dir
        self._items: dict[str, Any] = {}
        self._lock = threading.Lock()

    def editor(self, config: EditorConfig) -> Editor:
        """Return the editor for ``config``, building it on first use."""
        return self._get("editor", config, EDITOR_BACKENDS)

    def thinker(self, config: ThinkerConfig) -> Thinker:
        """Return the thinker for ``config``, building it on first use."""
        return self._get("thinker", config, THINKER_BACKENDS)

    def _get(self, kind: str, config: EditorConfig | ThinkerConfig, table: dict[str, str]) -> Any:
        key = f"{kind}:{config.model_dump_json()}"
        with self._lock:
            if key not in self._items:
                log.info("loading %s backend %s (%s)", kind, config.backend, config.model)
                factory = _factory(table, kind, config.backend)
                takes_data_dir = "data_dir" in inspect.signature(factory).parameters
                self._items[key] = factory(config, data_dir=self.data_dir) if takes_data_dir else factory(config)
            return self._items[key]


#: Backends that run models in this process (torch).
IN_PROCESS_BACKENDS = frozenset({"diffusers", "transformers"})


def prime_in_process_runtime(*configs: EditorConfig | ThinkerConfig) -> None:
    """Start torch's parallel runtime on the calling (main) thread when any backend runs in-process.

    Call this from a process's main thread before its event loop hands model work to worker
    threads; see ``thinkedit.tools.torchutil.start_parallel_runtime`` for why.
    """
    if any(config.backend in IN_PROCESS_BACKENDS for config in configs):
        from thinkedit.tools.torchutil import start_parallel_runtime

        start_parallel_runtime()
