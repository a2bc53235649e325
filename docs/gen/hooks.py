"""MkDocs hooks: add the pages generated from the code, so no reference page is typed by hand.

``mkdocs build`` runs ``on_files`` before it reads any page: the CLI reference (argparse), the MCP
tool reference (the server's own tool list), the profile table (the packaged TOML files) and the
changelog (``CHANGELOG.md`` at the repository root) join the site as generated files, never written
into ``docs/``; ``on_page_markdown`` fills the loop-settings table. The generators import the command
modules, the MCP server and pydantic, not torch. For the Python API page, mkdocstrings reads the sources
through ``build/docs-src/thinkedit/``, links laid out here when MkDocs loads this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import cli_ref  # noqa: E402
import mcp_ref  # noqa: E402
import profiles_ref  # noqa: E402
import settings_ref  # noqa: E402


#: The namespace as it installs (``thinkedit.agent`` is ``agent/``, ...), for mkdocstrings to read statically.
SOURCE_TREE = ROOT / "build" / "docs-src" / "thinkedit"
PACKAGES = ("agent", "apps", "servers", "tools")


def link_sources() -> None:
    """Lay out ``build/docs-src/thinkedit/<package>`` as links to the repository's folders."""
    SOURCE_TREE.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES:
        link = SOURCE_TREE / name
        if link.is_symlink() and link.resolve() == (ROOT / name).resolve():
            continue
        if link.is_symlink():  # a copy of the repository moved: point at this one
            link.unlink()
        link.symlink_to(ROOT / name, target_is_directory=True)


def keep_the_script_out_of_the_namespace() -> None:
    """Drop from ``sys.path`` every folder that holds the ``thinkedit`` console script.

    ``.venv/bin/mkdocs`` puts its own folder first on ``sys.path``, and that folder holds the ``thinkedit``
    script, which griffe would merge into the namespace package and then miss its members.
    """
    sys.path[:] = [p for p in sys.path if not (Path(p or ".") / "thinkedit").is_file()]


# Now, while MkDocs loads its configuration: mkdocstrings reads its handler's paths before any hook event runs.
link_sources()
keep_the_script_out_of_the_namespace()


def pages() -> dict[str, str]:
    """Return every generated page's Markdown by its path in the site."""
    return {
        "reference/cli.md": cli_ref.markdown(),
        "reference/mcp-tools.md": mcp_ref.markdown(),
        "reference/profiles.md": profiles_ref.markdown(),
        "changelog.md": (ROOT / "CHANGELOG.md").read_text("utf-8"),
    }


def on_files(files: Files, config, **_: object) -> Files:  # noqa: ANN001 - MkDocs' own config type
    """Add the generated pages to the site."""
    for path, text in pages().items():
        files.append(File.generated(config, path, content=text))
    return files


def on_page_markdown(markdown: str, **_: object) -> str:
    """Fill a page's generated tables (the loop settings) where it holds their placeholder."""
    if settings_ref.MARKER in markdown:
        markdown = markdown.replace(settings_ref.MARKER, settings_ref.markdown())
    return markdown
