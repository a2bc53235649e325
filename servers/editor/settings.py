"""Settings of one editor server process (or one Ray Serve replica), validated once at start-up."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from thinkedit.tools.config import EditorConfig
from thinkedit.tools.images import SERVER_MAX_PIXELS


#: The editor backends a server hosts: local pipelines. A hosted editor (openai-images, openai-gpt-image,
#: replicate) is called by the loop itself, as its profile says; it needs no server of ours.
SERVED_BACKENDS = ("diffusers",)


def default_replica_id() -> str:
    """Name this process for response headers and metrics: host and pid."""
    return f"{socket.gethostname()}-{os.getpid()}"


class EditorServerSettings(BaseModel):
    """Say which model to serve and how to queue, batch and guard requests."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Editor model name in the backend's table, e.g. 'tiny-kontext'.")
    backend: str = Field(default="diffusers", description="Editor backend registry name.")
    path: str | None = Field(default=None, description="Local directory or hub id to load the model from.")
    device: str | None = Field(default=None, description="Torch device; auto when unset.")
    dtype: str | None = Field(default=None, description="Torch dtype name; per model when unset.")
    max_side: int | None = Field(default=None, gt=0, description="Downscale inputs to this longer side first.")
    max_queue: int = Field(default=64, ge=1, description="Requests waiting beyond this get 503 + Retry-After.")
    max_batch: int = Field(default=8, ge=1, description="Most compatible requests in one pipeline call (1: off).")
    batch_window_ms: float = Field(
        default=5.0, ge=0.0, description="How long the first request of a batch waits for companions."
    )
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Largest request body accepted.")
    max_pixels: int = Field(default=SERVER_MAX_PIXELS, gt=0, description="Largest input image, in pixels (shared with the MCP server).")
    max_images: int = Field(default=8, ge=1, le=16, description="Most images one request may ask for (n).")
    max_input_pixels: int | None = Field(
        default=None, gt=0, description="Most pixels per input image at the working size; default 4x the model's working area."
    )
    max_output_pixels: int | None = Field(
        default=None, gt=0, description="Most images x output pixels per request; default max_images x 4x the working area."
    )
    bind_host: str = Field(
        default="127.0.0.1", description="Address served on; on loopback only loopback Host names are accepted."
    )
    header_timeout_s: float = Field(default=10.0, gt=0, description="Close a connection whose headers take longer.")
    body_idle_timeout_s: float = Field(default=30.0, gt=0, description="Fail a body read that stalls this long (408).")
    body_timeout_s: float = Field(default=300.0, gt=0, description="Fail a body that takes longer than this in all (408).")
    token: SecretStr | None = Field(default=None, description="Bearer token every request must carry.")
    shutdown_timeout_s: float = Field(default=60.0, ge=0.0, description="How long shutdown waits for queued work.")
    watch_disconnects: bool = Field(
        default=True, description="Drop a queued request when its client hangs up (uvicorn; Ray cancels itself)."
    )
    load_in_background: bool = Field(
        default=True, description="Answer /health with 503 while the model loads (uvicorn); Ray waits instead."
    )
    placement: Literal["process", "process-thread", "thread"] = Field(
        default="process",
        description="Where the pipeline runs: on the main thread of a worker process (default; where torch ran "
        "fastest on a quiet machine), on a thread of a worker process ('process-thread'), or on a thread of "
        "this process ('thread').",
    )
    replica_id: str = Field(default_factory=default_replica_id, description="This replica's name in headers.")

    def editor_config(self) -> EditorConfig:
        """Return the config the editor backend is built from."""
        return EditorConfig(
            backend=self.backend,
            model=self.model,
            path=self.path,
            device=self.device,
            dtype=self.dtype,
            max_side=self.max_side,
        )

    @property
    def token_value(self) -> str | None:
        """Return the bearer token in clear (None when the server is open on loopback)."""
        return self.token.get_secret_value() if self.token else None
