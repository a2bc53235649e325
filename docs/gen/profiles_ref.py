"""Write the profile table from the packaged profiles (``tools/profiles/*.toml``), read as TOML."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from md import cell
import models_ref

PROFILES = Path(__file__).resolve().parents[2] / "tools" / "profiles"


def profiles() -> dict[str, dict[str, Any]]:
    """Return every packaged profile's TOML, by name."""
    return {path.stem: tomllib.loads(path.read_text("utf-8")) for path in sorted(PROFILES.glob("*.toml"))}



def _side(section: dict[str, Any]) -> str:
    said = f"`{section.get('model', '?')}` ({section.get('backend', '?')}"
    if "protocol" in section:
        said += f", {section['protocol']} protocol"
    if "base_url" in section:
        said += f", at `{section['base_url']}`"
    return said + ")"


def _settings(section: dict[str, Any]) -> str:
    values = section.get("settings", {})
    return ", ".join(f"`{k} = {v!r}`" for k, v in values.items())


def markdown() -> str:
    """Return the profile reference page."""
    rows = ["| profile | editor | thinker | key variables | loop | editor settings |", "|---|---|---|---|---|---|"]
    details = []
    for name, data in profiles().items():
        editor, thinker = data.get("editor", {}), data.get("thinker", {})
        keys = sorted({s["api_key_env"] for s in (editor, thinker) if s.get("api_key_env")})
        loop = ", ".join(f"`{k} = {v!r}`" for k, v in data.get("loop", {}).items())
        rows.append(f"| [`{name}`](#{name}) | {_side(editor)} | {_side(thinker)} | "
                    f"{', '.join(f'`{k}`' for k in keys)} | {loop} | {_settings(editor)} |")
        details += [f"## `{name}` {{ #{name} }}", "", data.get("description", "").strip(), ""]
        prices = data.get("pricing", {})
        if prices:
            details += ["Prices for the cost estimate (USD):", ""]
            details += [f"- `{model}`: " + ", ".join(f"{k} {v}" for k, v in price.items()) for model, price in prices.items()]
            details.append("")
    return "\n".join([
        "# Profile table",
        "",
        "Generated when the site is built (`docs/gen/profiles_ref.py`) from the packaged profiles, "
        "`tools/profiles/*.toml`. What a profile is and how to write your own: [Profiles and models](../profiles.md).",
        "",
        *rows,
        "",
        *details,
        models_ref.markdown(),
        "",
    ])
