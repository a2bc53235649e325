"""Keep the GPU round's figures: the time budget, memory readings, the JSON file and the printed table."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any

#: What ``bench/gpu_round.py`` and the code it drives import (module -> distribution to install).
REQUIRED = {
    "torch": "torch", "diffusers": "diffusers", "transformers": "transformers", "tokenizers": "tokenizers",
    "safetensors": "safetensors", "huggingface_hub": "huggingface-hub", "jinja2": "jinja2", "PIL": "pillow",
    "numpy": "numpy", "pydantic": "pydantic", "langgraph": "langgraph",
    "langgraph.checkpoint": "langgraph-checkpoint", "langchain_core": "langchain-core",
}
#: Oldest versions the run was written against (the project's own lower bounds).
MINIMUM_VERSIONS = {"torch": (2, 5), "diffusers": (0, 42), "transformers": (5, 24), "langgraph": (1, 0)}
#: Figures every JSON holds, whatever was skipped (``null`` or empty when not measured).
KEYS = ("status", "scale", "environment", "settings", "weights", "memory", "warmup", "loop", "throughput",
        "skipped", "errors", "wall_seconds")


def _release(version: str) -> tuple[int, ...]:
    """Return the leading numbers of a version string ("5.24.0.dev0" -> (5, 24, 0))."""
    numbers = []
    for part in version.split("+")[0].split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
        if digits.group() != part:  # "0rc1": a pre-release of this number
            break
    return tuple(numbers)


def missing_modules() -> list[str]:
    """Return what to install: distributions whose modules cannot be imported, or are too old."""
    from importlib.util import find_spec

    missing = [dist for module, dist in REQUIRED.items() if find_spec(module.split(".")[0]) is None
               or find_spec(module) is None]
    for dist, oldest in MINIMUM_VERSIONS.items():
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        if _release(found) < oldest:
            missing.append(f"{dist}>={'.'.join(map(str, oldest))} (found {found})")
    return missing


def default_json_path() -> Path:
    """Return ``$OUT/gpu_round.json`` when ``$OUT`` is set (the device machine), else ``./gpu_round.json``."""
    out = os.environ.get("OUT")
    return Path(out) / "gpu_round.json" if out else Path("gpu_round.json")


def gib(count: float | None) -> float | None:
    """Return bytes as GiB (two decimals), passing None through."""
    return None if count is None else round(count / 2**30, 2)


class Budget:
    """Skip measurements that would overrun the time budget, and record which and why."""

    def __init__(self, seconds: float, skipped: list[str]) -> None:
        self.seconds, self.skipped, self.started = seconds, skipped, time.perf_counter()

    def elapsed(self) -> float:
        """Return seconds since the run began."""
        return time.perf_counter() - self.started

    def left(self) -> float:
        """Return seconds left in the budget (negative once overrun)."""
        return self.seconds - self.elapsed()

    def allows(self, what: str, estimate: float) -> bool:
        """Say whether ``what``, estimated at ``estimate`` seconds, fits; note it as skipped if not."""
        if estimate <= self.left():
            return True
        self.skipped.append(
            f"{what}: skipped, needs ~{estimate:.0f} s and {max(self.left(), 0):.0f} s of the "
            f"{self.seconds:.0f} s time budget are left"
        )
        return False


class Memory:
    """Read the accelerator's allocated and peak memory (None on a CPU)."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda") and torch.cuda.is_available()

    def allocated(self) -> float | None:
        """Return GiB allocated by tensors now."""
        return gib(self.torch.cuda.memory_allocated()) if self.cuda else None

    def reset_peak(self) -> None:
        """Start a new peak reading."""
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> dict[str, float | None]:
        """Return the peak GiB allocated and reserved since the last reset."""
        if not self.cuda:
            return {"allocated": None, "reserved": None}
        self.torch.cuda.synchronize()
        return {"allocated": gib(self.torch.cuda.max_memory_allocated()),
                "reserved": gib(self.torch.cuda.max_memory_reserved())}


def environment(device: str) -> dict[str, Any]:
    """Return the device's name and memory, and the versions of what the figures depend on."""
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda}
    for dist in ("diffusers", "transformers", "tokenizers", "langgraph", "xgrammar"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    info: dict[str, Any] = {"device": device, "versions": versions, "gpu": None, "gpu_memory_gib": None}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, gpu_memory_gib=gib(props.total_memory), capability=f"{props.major}.{props.minor}")
    return info


def new_report(scale: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Return an empty report with every key present."""
    report: dict[str, Any] = {key: None for key in KEYS}
    report.update(status="running", scale=scale, settings=settings, skipped=[], errors=[], memory={})
    report.update(loop={}, throughput=[], warmup={})
    return report


def save(report: dict[str, Any], path: Path) -> None:
    """Write the report as JSON (atomically), so a run cut short still leaves its figures."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(path)


def _f(value: Any, digits: int = 2) -> str:
    """Format a number for the table ("-" when missing)."""
    return "-" if value is None else f"{value:.{digits}f}"


def _count(billions: float) -> str:
    """Format a parameter count given in billions."""
    return f"{billions:.3f}B" if billions >= 0.001 else f"{billions * 1e6:.0f}k"


def render(report: dict[str, Any]) -> str:
    """Return the report as the readable table the script prints."""
    env, settings, memory = report["environment"] or {}, report["settings"], report["memory"]
    versions = env.get("versions", {})
    lines = [
        f"thinkedit GPU round: scale {report['scale']}, {env.get('gpu') or env.get('device')}, "
        f"torch {versions.get('torch')} (CUDA {versions.get('cuda')}), diffusers {versions.get('diffusers')}, "
        f"transformers {versions.get('transformers')}",
        f"editor {settings['editor']} at {settings['size']}px, {settings['steps']} steps; thinker "
        f"{settings['thinker']}, {settings['think_tokens']} new tokens ({settings['decoding']}) on two "
        f"{settings['size']}px images",
    ]
    weights = report["weights"] or {}
    if weights:
        lines.append("\nweights (GiB, parameters): " + ", ".join(
            f"{name} {item['gib']:.3g} ({_count(item['params_b'])})" for name, item in weights.items()))
    if memory:
        lines.append("memory (GiB): " + ", ".join(f"{k} {_f(v)}" for k, v in memory.items()))
    loop = report["loop"] or {}
    if loop.get("rounds"):
        lines.append("\nloop round | edit s | think s | overhead s | wall s | prompt tok | new tok | prefill s"
                     " | ms/token")
        for r in loop["rounds"]:
            lines.append(
                f"{r['round']:>10} | {_f(r['edit_s']):>6} | {_f(r['think_s']):>7} | {_f(r['overhead_s']):>10} | "
                f"{_f(r['wall_s']):>6} | {r.get('prompt_tokens') or '-':>10} | {r.get('new_tokens') or '-':>7} | "
                f"{_f(r.get('prefill_s')):>9} | {_f(r.get('decode_ms_per_token'), 1):>8}"
            )
        lines.append(f"run: {loop['stop_reason']} after {len(loop['rounds'])} rounds, {_f(loop['wall_s'])} s "
                     f"(before round 1: {_f(loop['before_first_round_s'])} s)")
    if report["throughput"]:
        lines.append("\nbest-of-K edit | seconds | images/s | vs K=1 | peak GiB | round with K critiques s")
        for row in report["throughput"]:
            if row.get("error"):
                lines.append(f"{'K=' + str(row['k']):>14} | {row['error']}")
                continue
            lines.append(
                f"{'K=' + str(row['k']):>14} | {_f(row['seconds']):>7} | {_f(row['images_per_s'], 3):>8} | "
                f"{_f(row.get('ratio_vs_k1')):>6} | {_f(row['peak_gib']):>8} | {_f(row.get('best_of_k_round_s')):>7}"
            )
    for note in report["skipped"]:
        lines.append(f"skipped: {note}")
    for error in report["errors"]:
        lines.append(f"error: {error}")
    lines.append(f"\nstatus {report['status']}, {_f(report['wall_seconds'], 1)} s in all")
    return "\n".join(lines)
