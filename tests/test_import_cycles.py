"""Imports point one way: no thinkedit module imports itself back, directly, lazily (in a function) or by name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "tools", "apps", "servers")
TABLE = "thinkedit.servers.cli.commands"


def modules() -> dict[str, Path]:
    """Map every thinkedit module's name to its file."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(("thinkedit", *(parts[:-1] if parts[-1] == "__init__" else parts)))] = path
    return found


def command_table_modules() -> set[str]:
    """Return the modules the CLI's command table names as strings (imported by name, on demand)."""
    from thinkedit.servers.cli.commands import COMMANDS

    names, tables = set(), [COMMANDS]
    while tables:
        for command in tables.pop().values():
            if command.subcommands is not None:
                tables.append(command.subcommands)
            else:
                names.add(command.module)
    return names


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Return the thinkedit modules ``name`` imports anywhere in its file (a function's lazy import counts too).

    Importing ``a.b.c`` runs ``a/b/__init__.py`` first, so the parent packages count as imported, except
    the module's own (always run before it). ``importlib.import_module`` of a constant string counts, and
    the module that imports modules by the names the command table gives (``TABLE``) depends on every one.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                 for t in n.targets if isinstance(t, ast.Name)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    uses_table = name == TABLE or TABLE in path.read_text(encoding="utf-8")
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *([base] if base else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                targets.add(arg.value)
            elif isinstance(arg, ast.Name) and isinstance(constants.get(arg.id), str):
                targets.add(constants[arg.id])
            elif isinstance(arg, ast.Attribute) and uses_table:  # a command table entry's module, by name
                targets.update(command_table_modules())
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(2, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known and candidate != name and not name.startswith(candidate + "."):
                found.add(candidate)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return out


def test_no_import_cycle_reaches_the_servers() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    # The CLI imports the server modules by name: those edges are seen.
    assert any("thinkedit.servers.editor.cli" in graph[name] for name in graph if name.startswith("thinkedit.servers.cli"))
    assert [group for group in cycles(graph) if any(m.startswith("thinkedit.servers") for m in group)] == []


def test_no_module_imports_itself_back_even_lazily() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []


def test_a_lazy_import_back_is_a_cycle(tmp_path: Path) -> None:
    """The scan sees an import inside a function: a lazy cycle is caught like any other."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from thinkedit.agent.state import Round\n")
    known = {"thinkedit.agent.state": tmp_path / "state.py", "thinkedit.agent.x": path}
    assert imports_of("thinkedit.agent.x", path, known) == {"thinkedit.agent.state"}


def test_server_packages_do_not_import_the_cli() -> None:
    known = modules()
    for name, path in known.items():
        if name.startswith("thinkedit.servers.") and not name.startswith("thinkedit.servers.cli"):
            assert not {m for m in imports_of(name, path, known) if m.startswith("thinkedit.servers.cli")}, name


def test_every_command_gets_its_one_line_help_from_the_table() -> None:
    import argparse

    from thinkedit.servers.cli import build_parser
    from thinkedit.servers.cli.commands import COMMANDS, SERVERS

    def helps(parser: argparse.ArgumentParser) -> tuple[dict[str, str], dict[str, argparse.ArgumentParser]]:
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return {c.dest: c.help for c in sub._choices_actions}, sub.choices

    for argv in (None, ["serve", "editor"], ["mcp-config"]):  # the full parser, and ones built for one command
        top, choices = helps(build_parser(argv))
        assert top == {name: command.help for name, command in COMMANDS.items()}
        if "serve" in (argv or ["serve"]):
            assert helps(choices["serve"])[0] == {name: command.help for name, command in SERVERS.items()}



def bench_imports(path: Path) -> list[tuple[int, str]]:
    """Return (line, module) for every import of ``bench`` in a file: ``import``, ``from``, ``import_module``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[object] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module":
            names = [node.args[0].value] if node.args and isinstance(node.args[0], ast.Constant) else []
        found += [(node.lineno, name) for name in names
                  if isinstance(name, str) and (name == "bench" or name.startswith("bench."))]
    return found


def test_tests_import_only_the_package_and_tests() -> None:
    """Test code lives in tests/; bench/ may import it, never the reverse."""
    hits = [f"{path.relative_to(ROOT)}:{line}: {name}"
            for path in sorted((ROOT / "tests").rglob("*.py")) for line, name in bench_imports(path)]
    assert hits == []


def test_the_bench_scan_sees_every_way_of_importing(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text("import bench.loop\nfrom bench import spread\ndef f():\n    from bench.load import x\n"
                    "import importlib\nimportlib.import_module('bench.run_all')\nimport benchmark_lib\n"
                    "from tests.bench_support import spread\n")
    assert sorted(name for _, name in bench_imports(path)) == ["bench", "bench.load", "bench.loop", "bench.run_all"]
