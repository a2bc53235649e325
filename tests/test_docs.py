"""The documentation cannot drift from the code: the generated references cover the real CLI and MCP server.

The site itself is built strictly by ``make docs`` (in ``.ci/run``); these tests check what a strict build
cannot: that every command the real parser has and every tool the real server lists is in the reference
pages the site generates, that the README stays a short entry point, and that no page carries the wording
of a work diary.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mcp_support import stdio_session

ROOT = Path(__file__).resolve().parent.parent
GEN = ROOT / "docs" / "gen"

#: Wording that belongs to a diary of work sessions, not to documentation (case-insensitive).
SESSION_WORDING = [
    r"\bthis round\b",
    r"\b(until|before|after) this round('s)?\b",
    r"\bprevious round's table\b",
    r"\b(one|this|an|that|the same) (evening|afternoon|night)\b",
    r"\bissue \d+\b",
    r"\bissue #\d+\b",
    r"\b(a|the) (second|third|fourth|fifth) (`make bench` )?run\b",
    r"\bthis session\b",
    r"\btoday's (figures|table|run)\b",
    r"\bmerge[ds]? (branch|i\d+)\b",
]


def generator(name: str):  # noqa: ANN201 - a module of docs/gen
    """Import one of the site's generators (docs/gen is not a package of thinkedit)."""
    if str(GEN) not in sys.path:
        sys.path.insert(0, str(GEN))
    return importlib.import_module(name)


def parser_commands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> dict[str, argparse.ArgumentParser]:
    """Return every command below ``parser`` by its full name, walking argparse's sub-parsers."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = (*words, name)
                found[" ".join(("thinkedit", *full))] = sub
                found.update(parser_commands(sub, full))
    return found


def section(page: str, heading: str) -> str:
    """Return the text of the ``## heading`` section of a Markdown page (up to the next ``## ``)."""
    start = page.index(f"## {heading}")
    end = page.find("\n## ", start + 1)
    return page[start:] if end < 0 else page[start:end]


def test_every_command_and_option_is_in_the_cli_reference() -> None:
    from thinkedit.servers.cli import build_parser

    page = generator("cli_ref").markdown()
    commands = parser_commands(build_parser(None))
    assert {"thinkedit edit", "thinkedit serve mcp", "thinkedit data build", "thinkedit ui"} <= set(commands)
    for name, parser in commands.items():
        text = section(page, f"`{name}`")
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}" in text, f"{name}: {option} missing from the CLI reference"


async def test_every_tool_the_server_lists_is_in_the_tool_reference(tmp_path: Path) -> None:
    page = await asyncio.to_thread(generator("mcp_ref").markdown)  # it runs its own event loop
    async with stdio_session(tmp_path / "data") as client:
        tools = (await client.list_tools()).tools
    assert {"think_while_edit", "edit_image", "critique_edit", "get_run", "cancel_run", "list_models"} <= {
        t.name for t in tools
    }
    for tool in tools:
        text = section(page, f"`{tool.name}`")
        for field in tool.input_schema.get("properties", {}):
            assert f"| `{field}` |" in text, f"{tool.name}: input {field} missing from the tool reference"
        for field in (tool.output_schema or {}).get("properties", {}):
            assert f"| `{field}` |" in text, f"{tool.name}: output {field} missing from the tool reference"


def test_every_packaged_profile_is_in_the_profile_table() -> None:
    page = generator("profiles_ref").markdown()
    names = [p.stem for p in (ROOT / "tools" / "profiles").glob("*.toml")]
    assert names
    for name in names:
        assert f"## `{name}`" in page


def test_the_generators_import_no_model_library() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(GEN)!r})\n"
        "import cli_ref, mcp_ref, profiles_ref, settings_ref\n"
        "for m in (cli_ref, mcp_ref, profiles_ref, settings_ref): assert m.markdown()\n"
        "print(sorted(n for n in ('torch', 'diffusers', 'transformers', 'vllm', 'ray') if n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    lines = text.splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines"
    first_block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert first_block is not None and text.index("```bash") < text.index("\n## ")
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make demo", "make test"]


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_reads_like_a_work_diary(path: Path) -> None:
    text = path.read_text("utf-8")
    found = [m.group(0) for pattern in SESSION_WORDING for m in re.finditer(pattern, text, re.I)]
    assert not found, f"{path.name}: {found}"


def test_the_generated_pages_read_like_documentation_too() -> None:
    text = "\n".join(generator(name).markdown() for name in ("cli_ref", "mcp_ref", "profiles_ref"))
    found = [m.group(0) for pattern in SESSION_WORDING for m in re.finditer(pattern, text, re.I)]
    assert not found, found


def test_readme_links_point_at_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t and not t.startswith("#")]
    assert targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, missing
