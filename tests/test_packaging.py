"""The installed layout: four folders under one namespace, declared in full, imported by full name."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
#: Our folders and the names they install under.
FOLDERS = {folder: name for name, folder in SETUPTOOLS["package-dir"].items()}
OURS = {"agent", "tools", "servers", "apps"}


def tree_packages() -> set[str]:
    """Every folder under ours that holds Python modules or package data, as a dotted name."""
    found = set()
    for folder, name in FOLDERS.items():
        for path in [ROOT / folder, *(p for p in (ROOT / folder).rglob("*") if p.is_dir())]:
            if path.name == "__pycache__" or not any(f.is_file() for f in path.iterdir() if f.suffix != ".pyc"):
                continue
            rel = path.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    return found


def test_every_folder_installs_under_thinkedit() -> None:
    assert set(FOLDERS) == OURS
    assert all(name == f"thinkedit.{folder}" for folder, name in FOLDERS.items())


def test_the_declared_package_list_matches_the_tree() -> None:
    declared = set(SETUPTOOLS["packages"])
    assert declared == tree_packages(), "add the new subpackage to [tool.setuptools] packages in pyproject.toml"


def test_package_data_is_declared_for_every_data_file() -> None:
    data = SETUPTOOLS["package-data"]
    for folder, name in FOLDERS.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix not in {".py", ".pyc"}:
                package = ".".join([name, *path.parent.relative_to(ROOT / folder).parts])
                patterns = data.get(package, [])
                assert any(path.match(p) for p in patterns), f"{path} is not in [tool.setuptools.package-data]"


def test_the_entry_point_names_the_namespace() -> None:
    assert PYPROJECT["project"]["scripts"] == {"thinkedit": "thinkedit.servers.cli:main"}


def python_files() -> list[Path]:
    folders = [*OURS, "tests", "bench", "examples"]
    return [p for f in folders for p in (ROOT / f).rglob("*.py") if "__pycache__" not in p.parts]


def test_nothing_imports_our_folders_by_their_bare_names() -> None:
    offenders = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in OURS]
    assert offenders == []


def test_langgraph_json_points_at_the_graph_module() -> None:
    import json

    graphs = json.loads((ROOT / "langgraph.json").read_text())["graphs"]
    path, _, attr = graphs["think_while_edit"]["path"].partition(":")
    assert (ROOT / path).is_file() and attr == "graph"
    assert graphs["think_while_edit"]["description"].startswith("Edit an image")
