"""What the server's lifespan builds once and every tool call shares."""

from __future__ import annotations

from dataclasses import dataclass

from thinkedit.agent.nodes import BackendProvider
from thinkedit.agent.runs import Runner
from thinkedit.agent.settings import LoopSettings
from thinkedit.servers.mcp.config import ServerConfig
from thinkedit.servers.mcp.inputs import ImageResolver
from thinkedit.servers.mcp.jobs import RunJobs


@dataclass
class AppState:
    """Hold the Runner, the backend cache, the live runs and the input policy of one server."""

    config: ServerConfig
    settings: LoopSettings
    runner: Runner
    backends: BackendProvider
    jobs: RunJobs
    images: ImageResolver
