"""A real editor server process around a scripted engine whose edits take exactly as long as asked.

Test double only: queueing, disconnects and shutdown need edits of a known duration, and the
tiny model's speed swings tenfold with CPU load and warm-up. ``num_inference_steps`` here means
tenths of a second to sleep; the "edit" inverts the image.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections.abc import Sequence

from PIL import ImageOps

from thinkedit.tools.types import EditRequest, EditResult


class SleepyEditor:
    """Sleep ``num_inference_steps`` / 10 s per batch, then return each image inverted."""

    name = "sleepy"

    def edit_batch(self, requests: list[EditRequest]) -> list[EditResult]:
        seconds = max(int(r.settings.get("num_inference_steps", 1)) for r in requests) / 10
        time.sleep(seconds)
        return [
            EditResult(images=[ImageOps.invert(r.image)] * r.num_images, model=self.name, seconds=seconds)
            for r in requests
        ]

    async def edit(self, request: EditRequest) -> EditResult:
        return self.edit_batch([request])[0]


class ThreadNamingEditor(SleepyEditor):
    """Edit at once and name, as the result's model, the thread that ran the pipeline call."""

    name = "thread-naming"

    def edit_batch(self, requests: list[EditRequest]) -> list[EditResult]:
        import threading

        ran_on = "main" if threading.current_thread() is threading.main_thread() else threading.current_thread().name
        return [EditResult(images=[r.image] * r.num_images, model=ran_on, seconds=0.0) for r in requests]


class SlowLoadingEditor(SleepyEditor):
    """Take ``seconds`` to load, as a big model's weights do."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def load(self) -> None:
        time.sleep(self.seconds)


def slow_loading_engine(seconds: float, _settings: object) -> SlowLoadingEditor:
    """Build the slow-loading engine (bind ``seconds`` with functools.partial: it stays picklable)."""
    return SlowLoadingEditor(seconds)


def thread_naming_engine(_settings: object) -> ThreadNamingEditor:
    """Build the thread-naming engine (picklable: it goes to the worker process)."""
    return ThreadNamingEditor()


def sleepy_engine(_settings: object) -> SleepyEditor:
    """Build the engine (in the server's worker process, like a real pipeline)."""
    return SleepyEditor()


def main(argv: Sequence[str] | None = None) -> int:
    from thinkedit.servers.editor.app import create_app
    from thinkedit.servers.editor.cli import editor_server
    from thinkedit.servers.editor.settings import EditorServerSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("-v", action="count", default=0)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--body-timeout", type=float, default=300.0)
    parser.add_argument("--max-output-pixels", type=int)
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    parser.add_argument("--load-seconds", type=float, default=0.0, help="How long the engine takes to load.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    settings = EditorServerSettings(
        model="sleepy", backend="sleepy", max_queue=args.max_queue, max_batch=args.max_batch,
        header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout,
        body_idle_timeout_s=min(30.0, args.body_timeout), max_output_pixels=args.max_output_pixels,
        shutdown_timeout_s=args.shutdown_timeout,
    )
    # By module name, not __main__: the factory is sent to a worker.
    from tests.sleepy_editor import slow_loading_engine, sleepy_engine

    factory = functools.partial(slow_loading_engine, args.load_seconds) if args.load_seconds else sleepy_engine
    app = create_app(settings, engine_factory=factory)
    editor_server(app, settings, "127.0.0.1", args.port).run()  # the product's server setup
    return 0


if __name__ == "__main__":
    sys.exit(main())
