"""Check resolved settings against this machine before any run exists: one line naming what is wrong.

``LoopSettings`` validates types and ranges without touching the machine; what only the machine can
say (is the data dir a directory, does a local model path exist, is ``cuda:1`` here) is checked
here, once, by every command that starts runs (``edit``, ``eval``, ``ui``, ``serve mcp``), so a bad
setting is a clear refusal instead of a run that is created and then fails.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.config import is_http_url
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.profiles import ENV_OVERRIDES
from thinkedit.tools.registry import IN_PROCESS_BACKENDS

#: A torch device this project runs on: a type, and an index for the accelerators.
DEVICE = re.compile(r"^(?P<type>cpu|cuda|mps|xpu)(?::(?P<index>\d+))?$")


def setting_name(section: str, field: str, value: object) -> str:
    """Name a setting as the user gave it: the environment variable that set it, else section.field."""
    for var, where in ENV_OVERRIDES.items():
        if where == (section, field) and os.environ.get(var) == value:
            return f"${var}"
    return f"{section}.{field}"


def device_problem(device: str) -> str | None:
    """Say why ``device`` cannot run a model here (not a device, or not on this machine), or None."""
    match = DEVICE.match(device.strip().lower())
    if match is None:
        return "is not a device (cpu, cuda, cuda:N, mps or xpu)"
    kind, index = match["type"], int(match["index"] or 0)
    if kind == "cpu":
        return None if match["index"] in (None, "0") else "is not a device (the CPU has no index)"
    if find_spec("torch") is None:
        return None  # the missing extra is reported on its own
    import torch

    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    elif kind == "xpu":
        count = torch.xpu.device_count() if hasattr(torch, "xpu") and torch.xpu.is_available() else 0
    else:
        count = 1 if torch.backends.mps.is_available() else 0
    if index >= count:
        have = f"{count} {kind.upper()} device(s)" if count else f"no {kind.upper()} device"
        return f"is not available on this machine ({have})"
    return None


def local_path_problem(path: str) -> str | None:
    """Say why a local model path cannot be read, or None; ``org/name`` is a hub id, not a path."""
    looks_local = path.startswith(("/", ".", "~")) or path.count("/") > 1
    return "does not exist" if looks_local and not Path(path).expanduser().exists() else None


def data_dir_problem(data_dir: str) -> str | None:
    """Say why runs cannot be kept in ``data_dir`` (not a directory, not writable), or None."""
    path = Path(data_dir).expanduser()
    if path.exists() and not path.is_dir():
        return "is not a directory"
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f"cannot be created: {existing} is not a directory"
    if existing is not None and not os.access(existing, os.W_OK | os.X_OK):
        return f"is not writable ({existing})"
    return None


def _problems(settings: LoopSettings) -> Iterator[tuple[str, object, str | None]]:
    """Yield (setting name, value, problem or None) for every setting that touches the machine, cheapest first."""
    dir_name = "$THINKEDIT_DATA_DIR" if os.environ.get("THINKEDIT_DATA_DIR") == settings.data_dir else "data dir"
    yield dir_name, settings.data_dir, data_dir_problem(settings.data_dir)
    for section, config in (("editor", settings.editor), ("thinker", settings.thinker)):
        if config.base_url is not None and not is_http_url(config.base_url):
            yield (setting_name(section, "base_url", config.base_url), config.base_url,
                   "is not an http(s) URL with a host, e.g. http://127.0.0.1:8100/v1")
        if config.backend in IN_PROCESS_BACKENDS and config.path:
            yield setting_name(section, "path", config.path), config.path, local_path_problem(config.path)
    prompt = settings.thinker.prompt_file
    if prompt and not Path(prompt).expanduser().is_file():
        yield setting_name("thinker", "prompt_file", prompt), prompt, "is not a file"
    for section, config in (("editor", settings.editor), ("thinker", settings.thinker)):
        if config.backend in IN_PROCESS_BACKENDS and config.device:
            yield setting_name(section, "device", config.device), config.device, device_problem(config.device)


def check_settings(settings: LoopSettings) -> None:
    """Raise ``BadInputError`` (one line, naming the setting) for the first setting this machine cannot honour."""
    for name, value, problem in _problems(settings):
        if problem:
            raise BadInputError(f"{name} {str(value)!r} {problem}")
