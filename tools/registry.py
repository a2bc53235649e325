"""Choose editor and thinker backends by name, and keep loaded ones for reuse."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from tools.config import EditorConfig, ThinkerConfig
from tools.errors import BadInputError
from tools.protocols import Editor, Thinker

log = logging.getLogger(__name__)

# Each entry names "module:factory"; the module is imported only when the backend is used,
# so a remote-only setup never imports torch.
EDITOR_BACKENDS: dict[str, str] = {
    "diffusers": "tools.editors.diffusers_engine:DiffusersEditor",
    "openai-images": "tools.editors.openai_images:OpenAIImagesEditor",
}
THINKER_BACKENDS: dict[str, str] = {
    "transformers": "tools.thinkers.transformers_vlm:TransformersThinker",
    "chat-model": "tools.thinkers.chat_model:ChatModelThinker",
}


def _factory(table: dict[str, str], kind: str, name: str) -> Callable[..., Any]:
    try:
        target = table[name]
    except KeyError:
        raise BadInputError(f"unknown {kind} backend {name!r}; choose from {sorted(table)}") from None
    module_name, attr = target.split(":")
    return getattr(importlib.import_module(module_name), attr)


class BackendCache:
    """Build each distinct backend once per process; loading a pipeline takes a while."""

    def __init__(self) -> None:
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
                self._items[key] = _factory(table, kind, config.backend)(config)
            return self._items[key]


#: Backends that run models in this process (torch).
IN_PROCESS_BACKENDS = frozenset({"diffusers", "transformers"})


def prime_in_process_runtime(*configs: EditorConfig | ThinkerConfig) -> None:
    """Start torch's parallel runtime on the calling (main) thread when any backend runs in-process.

    Call this from a process's main thread before its event loop hands model work to worker
    threads; see ``tools.torchutil.start_parallel_runtime`` for why.
    """
    if any(config.backend in IN_PROCESS_BACKENDS for config in configs):
        from tools.torchutil import start_parallel_runtime

        start_parallel_runtime()
