"""What the server's lifespan builds once and every tool call shares."""

from __future__ import annotations

from dataclasses import dataclass

from agent.nodes import BackendProvider
from agent.runs import Runner
from agent.settings import LoopSettings
from servers.mcp.config import ServerConfig
from servers.mcp.inputs import ImageResolver
from servers.mcp.jobs import RunJobs


@dataclass
class AppState:
    """Hold the Runner, the backend cache, the live runs and the input policy of one server."""

    config: ServerConfig
    settings: LoopSettings
    runner: Runner
    backends: BackendProvider
    jobs: RunJobs
    images: ImageResolver
