"""Get backends ready to use: chosen by name, loaded once per process, built and placed locally when they run here.

Backends that run models in this process (torch) also find their weights here (the tiny profile's
random-weight models are built once under the data directory) and their torch device and dtype.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from thinkedit.tools.config import EditorConfig, ThinkerConfig, default_data_dir
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
    threads; see ``start_parallel_runtime`` for why.
    """
    if any(config.backend in IN_PROCESS_BACKENDS for config in configs):
        start_parallel_runtime()


def resolve_device(name: str | None) -> str:
    """Return ``name`` or the best device available ('cuda', 'mps', else 'cpu')."""
    import torch

    if name:
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_dtype(name: str | None, device: str, default: str = "bfloat16") -> Any:
    """Return the torch dtype named ``name``; float32 on CPU unless asked otherwise."""
    import torch

    chosen = name or ("float32" if device == "cpu" else default)
    dtype = getattr(torch, chosen, None)
    if not isinstance(dtype, torch.dtype):
        raise BadInputError(f"unknown torch dtype {chosen!r}")
    return dtype


def start_parallel_runtime() -> None:
    """Run one small parallel op on the calling (main) thread, so OpenMP starts its runtime there.

    With the CPU build of torch, when a process's first OpenMP region runs on a worker thread,
    later ops on worker threads run far slower than after one op on the main thread.
    Servers run models on worker threads, so they call this first.
    """
    import torch

    ones = torch.ones(64, 64)
    torch.mm(ones, ones)


#: File written last into a finished model directory; its absence means "not built".
READY_MARKER = ".thinkedit-ready"


def models_dir(data_dir: str | Path | None = None) -> Path:
    """Return the directory holding locally built models."""
    return Path(data_dir or default_data_dir()).expanduser() / "models"


def ensure_local_model(name: str, build: Callable[[Path], None], data_dir: str | Path | None = None) -> Path:
    """Return ``<data_dir>/models/<name>``, calling ``build(tmp_dir)`` first if it is not there yet.

    Building happens in a temporary sibling directory that is renamed into place when complete,
    so a crash or a concurrent builder never leaves a half-written model behind.
    """
    target = models_dir(data_dir) / name
    if (target / READY_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        log.info("building local model %s in %s", name, target)
        build(tmp)
        (tmp / READY_MARKER).write_text("ok\n")
        if target.exists() and not (target / READY_MARKER).is_file():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not (target / READY_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
