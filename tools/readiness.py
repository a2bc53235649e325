"""Say whether this machine can run a profile's in-process models now, and what is missing if not.

Presence only: nothing is downloaded or loaded to check. A profile's ``[needs.editor]`` and
``[needs.thinker]`` tables say what its full-size models take (GPU memory for their bf16 weights,
disk for the download, a gated hub licence); the checks here hold those against this machine.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from thinkedit.tools.config import EditorConfig, ThinkerConfig
from thinkedit.tools.registry import IN_PROCESS_BACKENDS

GIB = 1024**3
#: Where huggingface_hub looks for a token besides its token file.
TOKEN_ENVS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class SideNeeds(BaseModel):
    """What one full-size in-process model takes: GPU memory, disk for the weights, a hub licence."""

    model_config = ConfigDict(extra="forbid")

    gpu_gib: float = Field(default=0, ge=0, description="GPU memory for the bf16 weights, in GiB (0: runs on a CPU).")
    disk_gib: float = Field(default=0, ge=0, description="Disk for the downloaded weights, in GiB.")
    gated: bool = Field(default=False, description="The hub serves it only after its licence is accepted, with a token.")


#: Device files a GPU driver creates on Linux (NVIDIA, ROCm, WSL); without any, torch is not even imported.
GPU_DRIVER_FILES = ("/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def gpu_free_gib() -> list[float]:
    """Return each CUDA device's free memory in GiB ([] without one); tests replace this probe."""
    if sys.platform == "linux" and not any(Path(f).exists() for f in GPU_DRIVER_FILES):
        return []  # no GPU driver: importing torch to learn that would cost seconds
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.mem_get_info(i)[0] / GIB for i in range(torch.cuda.device_count())]


def hub_cache(env: dict[str, str]) -> Path:
    """Return the folder huggingface_hub downloads models into."""
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    return Path(env.get("HF_HOME") or "~/.cache/huggingface").expanduser() / "hub"


def has_hub_token(env: dict[str, str]) -> bool:
    """Tell whether a hub token is set or saved (``hf auth login`` writes the token file)."""
    if any(env.get(name) for name in TOKEN_ENVS):
        return True
    token_file = env.get("HF_TOKEN_PATH") or str(Path(env.get("HF_HOME") or "~/.cache/huggingface") / "token")
    return Path(token_file).expanduser().is_file()


def _fits(needs: list[float], free: list[float]) -> bool:
    """Place each need, largest first, on the device with the most room left."""
    room = list(free)
    for need in sorted(needs, reverse=True):
        best = max(range(len(room)), key=room.__getitem__)
        if room[best] < need:
            return False
        room[best] -= need
    return True


def _free_disk_gib(folder: Path) -> float:
    """Return the free disk where ``folder`` is (or would be created), in GiB."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free / GIB


def _hub_id(kind: str, config: EditorConfig | ThinkerConfig) -> str | None:
    """Return the hub id a side downloads, when it downloads one."""
    if kind == "editor":
        from thinkedit.tools.editors.models import EDITOR_MODELS

        entry = EDITOR_MODELS.get(config.model)
        return entry.hub_id if entry is not None else None
    return config.model if "/" in config.model else None


#: One side of a run: "editor" or "thinker", its config, and what its model needs (None: unknown, only torch).
Side = tuple[str, "EditorConfig | ThinkerConfig", "SideNeeds | None"]


def missing_pieces(sides: list[Side], env: dict[str, str] | None = None) -> list[str]:
    """Return what this machine lacks to run the in-process ``sides`` ([] when nothing is missing)."""
    env = dict(os.environ if env is None else env)
    local = [(kind, config, needs) for kind, config, needs in sides if config.backend in IN_PROCESS_BACKENDS]
    if not local:
        return []
    if find_spec("torch") is None:
        return ["needs the local extra (pip install 'thinkedit[local]')"]
    known = [(kind, config, needs) for kind, config, needs in local if needs is not None and not config.path]
    problems: list[str] = []
    gpu = [n.gpu_gib for _, config, n in known if n.gpu_gib and (config.device or "cuda").startswith("cuda")]
    if gpu:
        free = gpu_free_gib()
        if not free:
            problems.append(f"no CUDA device (needs {sum(gpu):g} GiB of GPU memory for the bf16 weights)")
        elif not _fits(gpu, free):
            problems.append(f"needs {sum(gpu):g} GiB of free GPU memory, the roomiest device has {max(free):.1f} GiB")
    cache = hub_cache(env)
    to_download = [n.disk_gib for kind, config, n in known
                   if (hub := _hub_id(kind, config)) and not (cache / f"models--{hub.replace('/', '--')}").is_dir()]
    if to_download and (have := _free_disk_gib(cache)) < sum(to_download):
        problems.append(f"needs {sum(to_download):g} GiB of free disk in {cache} for the weights, has {have:.1f} GiB")
    for kind, config, n in known:
        if n.gated and not has_hub_token(env):
            hub = _hub_id(kind, config) or config.model
            problems.append(f"{hub} is gated: accept its licence on huggingface.co and set $HF_TOKEN")
    return problems
