"""Resolve a run's inputs: its effective settings and the image it names."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from agent.settings import LoopSettings
from tools.errors import BadInputError
from tools.images import load_image
from tools.store import ArtifactStore
from tools.types import ImageRef

if TYPE_CHECKING:
    from PIL.Image import Image

    from agent.state import SettingsInput

#: ``thinkedit://artifacts/<sha256>.png`` names an image in the artifact store by content.
ARTIFACT_URI = re.compile(r"^thinkedit://artifacts/([0-9a-f]{64})(?:\.png)?$")


def artifact_uri(ref: ImageRef) -> str:
    """Return the ``thinkedit://artifacts/…`` URI of a stored image."""
    return f"thinkedit://artifacts/{ref.sha256}.png"


def resolve_settings(context: LoopSettings | None, given: SettingsInput | None) -> LoopSettings:
    """Combine the runtime context (or the named profile) with the input's overrides."""
    overrides = given.model_dump(exclude_none=True) if given is not None else {}
    if context is not None and "profile" not in overrides:
        return LoopSettings.model_validate({**context.model_dump(), **overrides})
    return LoopSettings.model_validate(overrides)


def resolve_image(name: str, store: ArtifactStore) -> Image:
    """Load the image a run's input names: an artifact URI or a local file path."""
    if name.startswith("thinkedit://"):
        match = ARTIFACT_URI.match(name)
        if match is None:
            raise BadInputError(f"unsupported image URI {name!r}; expected thinkedit://artifacts/<sha256>.png")
        digest = match.group(1)
        try:
            ref = store.lookup(digest)
        except BadInputError:
            raise BadInputError(f"no stored image {digest[:12]}… in {store.url}") from None
        return store.get(ref)
    if re.match(r"^[a-z][a-z0-9+.-]*://", name):
        raise BadInputError(f"fetching URLs is not supported: {name!r}; give a local path")
    return load_image(name)
