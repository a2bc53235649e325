"""Write the editor model table from ``tools/editors/models.py`` (the same table ``thinkedit models`` prints).

Read straight from ``EDITOR_MODELS``, without computing working sizes: FLUX.1 Kontext's list of sizes comes
from diffusers, and the docs build must not import it (or torch).
"""

from __future__ import annotations

from typing import Any

from md import cell



def markdown() -> str:
    """Return a section: one row per diffusers editor model."""
    from thinkedit.tools.editors.models import EDITOR_MODELS

    rows = ["| model | pipeline | weights | inputs | defaults | settings (range) | working size |",
            "|---|---|---|---|---|---|---|"]
    for entry in EDITOR_MODELS.values():
        weights = "built locally, random weights" if entry.local else f"`{entry.hub_id}`"
        defaults = ", ".join(f"`{k}={v!r}`" for k, v in entry.defaults.items() if v is not None)
        settings = ", ".join(
            f"`{name}`" + (f" ({spec.ge:g}–{spec.le:g})" if spec.ge is not None and spec.le is not None else "")
            for name, spec in entry.settings.items())
        images = "1" if entry.max_images == 1 else f"source + up to {entry.max_images - 1} references"
        working = entry.working_note or ("the input's size, bounded by the profile's `max_side`"
                                         if entry.working_area is None else f"{entry.working_area} px")
        rows.append(f"| `{entry.name}` | `{entry.pipeline_class}` | {weights} | {images} | {cell(defaults)} "
                    f"| {cell(settings)} | {cell(working)} |")
    return "\n".join([
        "## Editor models (diffusers)",
        "",
        "Generated from `tools/editors/models.py`; `thinkedit models` prints the same with each model's working "
        "size for a 4000×3000 photo, and `thinkedit models --json` for scripts.",
        "",
        *rows,
    ])
