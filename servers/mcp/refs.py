"""The ``thinkedit://`` URIs of runs and images, and how each maps to a stored image."""

from __future__ import annotations

import re

from thinkedit.agent.settings import ARTIFACT_URI, artifact_uri
from thinkedit.agent.run_images import load_run_image
from thinkedit.agent.runs import Runner
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import ImageRef

SCHEME = "thinkedit://"
_RUN_IMAGE = re.compile(r"^thinkedit://runs/(?P<run_id>[A-Za-z0-9_-]+)/(?P<part>final|source)\.png$")
_ROUND_IMAGE = re.compile(r"^thinkedit://runs/(?P<run_id>[A-Za-z0-9_-]+)/rounds/(?P<n>\d+)\.png$")
_STORED_IMAGE = ARTIFACT_URI  # thinkedit://artifacts/<sha256>.png, as the agent names stored images


def run_uri(run_id: str) -> str:
    """Return the URI of a run's trajectory."""
    return f"{SCHEME}runs/{run_id}"


def final_uri(run_id: str) -> str:
    """Return the URI of a run's chosen image."""
    return f"{SCHEME}runs/{run_id}/final.png"


def source_uri(run_id: str) -> str:
    """Return the URI of a run's source image."""
    return f"{SCHEME}runs/{run_id}/source.png"


def round_uri(run_id: str, n: int) -> str:
    """Return the URI of one round's edited image."""
    return f"{SCHEME}runs/{run_id}/rounds/{n}.png"


def image_uri(ref: ImageRef) -> str:
    """Return the URI of a stored image by content hash (results of edit_image)."""
    return artifact_uri(ref)


async def resolve_uri(runner: Runner, uri: str) -> ImageRef:
    """Map a ``thinkedit://`` image URI to the stored image it names (run images by ``load_run_image``'s rules)."""
    if m := _RUN_IMAGE.match(uri):
        return await load_run_image(runner, m["run_id"], m["part"])
    if m := _ROUND_IMAGE.match(uri):
        return await load_run_image(runner, m["run_id"], f"round-{m['n'].lstrip('0')}")
    if m := _STORED_IMAGE.match(uri):
        return runner.store.lookup(m.group(1))
    raise BadInputError(
        f"{uri!r} is not a thinkedit image URI; use thinkedit://runs/<run_id>/final.png, "
        "thinkedit://runs/<run_id>/rounds/<n>.png or thinkedit://artifacts/<sha256>.png"
    )
