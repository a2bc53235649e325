"""Installed as a user installs it: the wheel's files, a core-only install, and an app beside us.

Builds a fresh virtual environment (thinkedit's core dependencies from the package index, no
extras) and installs, editable and not, an app shaped like LangGraph's project template — its own
``agent`` package with a ``graph.py``, and a top-level ``tools.py`` — beside thinkedit.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.procs import ROOT

pytestmark = pytest.mark.slow


@dataclass
class Venv:
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(args, cwd=cwd or self.path, capture_output=True, text=True, timeout=600,
                             env={"PATH": f"{self.path / 'bin'}:/usr/bin:/bin", "HOME": str(self.path)})
        if check and out.returncode != 0:
            raise AssertionError(f"{args} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        return out

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(self.python, "-m", "pip", "--disable-pip-version-check", "-q", *args)

    def py(self, code: str, cwd: Path | None = None) -> str:
        return self.run(self.python, "-c", textwrap.dedent(code), cwd=cwd).stdout

    def installed(self) -> set[str]:
        lines = self.run(self.python, "-m", "pip", "list", "--format=freeze").stdout.splitlines()
        return {line.split("==")[0].lower() for line in lines}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (built,) = out.glob("thinkedit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Venv:
    """A fresh environment with thinkedit's core install only (no extras) from the built wheel."""
    env = Venv(tmp_path_factory.mktemp("venv") / "env")
    subprocess.run([sys.executable, "-m", "venv", str(env.path)], check=True, timeout=300)
    env.pip("install", str(wheel))
    return env


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An app shaped like LangGraph's project template, with a ``tools.py`` beside its package."""
    root = tmp_path_factory.mktemp("app")
    (root / "src" / "agent").mkdir(parents=True)
    (root / "pyproject.toml").write_text(textwrap.dedent("""\
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "my-langgraph-app"
        version = "0.0.1"
        dependencies = []

        [tool.setuptools]
        packages = ["agent"]
        py-modules = ["tools"]
        package-dir = {"" = "src"}
    """))
    (root / "src" / "agent" / "__init__.py").write_text('"""The app\'s own agent."""\nfrom agent.graph import graph\n')
    (root / "src" / "agent" / "graph.py").write_text(textwrap.dedent("""\
        from typing import TypedDict

        from langgraph.graph import END, START, StateGraph

        import tools
        from thinkedit.agent import build_graph

        OWNER = "my-langgraph-app"


        class State(TypedDict, total=False):
            image: str
            instruction: str
            stop_reason: str


        graph = (
            StateGraph(State)
            .add_node("think_while_edit", build_graph())
            .add_node("note", lambda state: {"stop_reason": tools.label(state.get("stop_reason", ""))})
            .add_edge(START, "think_while_edit")
            .add_edge("think_while_edit", "note")
            .add_edge("note", END)
            .compile()
        )
    """))
    (root / "src" / "tools.py").write_text('OWNER = "my-langgraph-app"\n\ndef label(text):\n    return f"app:{text}"\n')
    return root


CHECK_BOTH = """
    import importlib, sys
    import agent, tools
    import thinkedit.agent, thinkedit.agent.graph, thinkedit.tools.config, thinkedit.servers.cli
    app_graph = sys.modules["agent.graph"]  # (the template's agent/__init__ re-exports `graph`, the object)
    assert app_graph.OWNER == "my-langgraph-app" and tools.OWNER == "my-langgraph-app", (app_graph, tools)
    assert "think_while_edit" in agent.graph.nodes
    assert thinkedit.agent.graph.build_graph is thinkedit.agent.build_graph
    assert not hasattr(thinkedit.agent.graph, "OWNER") and not hasattr(thinkedit.tools, "OWNER")
    print("both ok")
"""


def thinkedit_works(env: Venv) -> None:
    env.py("from thinkedit.agent import build_graph; build_graph(); import thinkedit.servers.cli")
    assert env.run(str(env.path / "bin" / "thinkedit"), "--version").stdout.startswith("thinkedit ")


def install_thinkedit(env: Venv, wheel: Path, editable: bool) -> None:
    env.pip("uninstall", "-y", "thinkedit")
    env.pip("install", "--no-deps", *(["-e", str(ROOT)] if editable else [str(wheel)]))


def test_the_wheel_holds_only_the_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {"thinkedit", wheel.name.split("-py3")[0] + ".dist-info"}, top
    assert "thinkedit/__init__.py" not in names  # a namespace package (PEP 420)
    for needed in ("thinkedit/agent/graph.py", "thinkedit/agent/templates/run.html", "thinkedit/agent/templates/run.js",
                   "thinkedit/tools/profiles/tiny.toml", "thinkedit/tools/thinkers/prompts/editthinker.txt",
                   "thinkedit/apps/evaluation/prompts/judge-expert.txt", "thinkedit/servers/cli/__init__.py"):
        assert needed in names, needed
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "thinkedit = thinkedit.servers.cli:main" in entry_points


def test_a_core_install_gives_help_version_and_names_missing_extras(venv: Venv) -> None:
    assert not {"fastapi", "torch", "mcp", "openai", "ray"} & venv.installed()
    exe = str(venv.path / "bin" / "thinkedit")
    assert "edit" in venv.run(exe, "--help").stdout
    assert venv.run(exe, "--version").stdout.strip().startswith("thinkedit 0.")
    assert "--model" in venv.run(exe, "serve", "editor", "--help").stdout
    image = str(ROOT / "examples" / "chelsea.png")
    for args, extra in [
        (["serve", "editor", "--model", "tiny-kontext"], "server"),
        (["serve", "mcp"], "mcp"),
        (["edit", image, "add a hat", "--profile", "tiny"], "local"),
    ]:
        out = venv.run(exe, *args, check=False)
        assert out.returncode == 2, (args, out.stderr)
        assert f"pip install 'thinkedit[{extra}]'" in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize(("thinkedit_editable", "app_editable"), [(False, True), (True, False), (False, False)])
def test_an_app_with_its_own_agent_and_tools_lives_beside_us(
    venv: Venv, wheel: Path, app: Path, tmp_path: Path, thinkedit_editable: bool, app_editable: bool
) -> None:
    install_thinkedit(venv, wheel, thinkedit_editable)
    venv.pip("install", "--no-deps", *(["-e", str(app)] if app_editable else [str(app)]))
    try:
        assert "both ok" in venv.py(CHECK_BOTH, cwd=tmp_path)
        site = Path(venv.py("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
        if not thinkedit_editable:
            assert (site / "thinkedit" / "agent" / "graph.py").is_file()
        if not app_editable:
            assert (site / "agent" / "graph.py").read_text().count("my-langgraph-app") == 1
        # Uninstall the app: thinkedit keeps working, and nothing of ours went with it.
        venv.pip("uninstall", "-y", "my-langgraph-app")
        thinkedit_works(venv)
        assert "ModuleNotFoundError" in venv.run(venv.python, "-c", "import agent", cwd=tmp_path, check=False).stderr
        # And the other way round: uninstall thinkedit, the app's own modules still import.
        venv.pip("install", "--no-deps", *(["-e", str(app)] if app_editable else [str(app)]))
        venv.pip("uninstall", "-y", "thinkedit")
        probe = venv.run(venv.python, "-c", "import tools; print(tools.OWNER); import agent.graph", cwd=tmp_path,
                         check=False)
        assert probe.stdout.strip() == "my-langgraph-app"
        assert "No module named 'thinkedit" in probe.stderr  # the app's graph needs us, and says so
    finally:
        venv.pip("uninstall", "-y", "my-langgraph-app")
        install_thinkedit(venv, wheel, editable=False)
