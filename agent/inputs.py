"""Resolve a run's inputs: its effective settings and the image it names."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from thinkedit.agent.settings import LoopSettings
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.images import load_image
from thinkedit.tools.store import ArtifactStore
from thinkedit.tools.types import ImageRef

if TYPE_CHECKING:
    from PIL.Image import Image

    from thinkedit.agent.state import SettingsInput

log = logging.getLogger(__name__)

#: ``thinkedit://artifacts/<sha256>.png`` names an image in the artifact store by content.
ARTIFACT_URI = re.compile(r"^thinkedit://artifacts/([0-9a-f]{64})(?:\.png)?$")


def artifact_uri(ref: ImageRef) -> str:
    """Return the ``thinkedit://artifacts/…`` URI of a stored image."""
    return f"thinkedit://artifacts/{ref.sha256}.png"


def resolve_settings(
    context: LoopSettings | Mapping[str, Any] | None, given: SettingsInput | None
) -> LoopSettings:
    """Combine the runtime context (or the named profile) with the input's overrides.

    The context may be a ``LoopSettings``, a plain mapping of its fields (a parent graph that
    embeds ours as a subgraph often passes its context as a dict), or absent.
    """
    overrides = given.model_dump(exclude_none=True) if given is not None else {}
    fields = context_fields(context)
    if fields and "profile" not in overrides:
        return LoopSettings.model_validate({**fields, **overrides})
    return LoopSettings.model_validate(overrides)


def context_fields(context: Any) -> dict[str, Any]:
    """Return the loop settings a run context carries, whatever shape the caller gave it in.

    A ``LoopSettings`` gives all its fields; a mapping, a pydantic model or a dataclass (a parent
    graph's own context) gives the keys that are loop settings, and the rest belong to the parent.
    """
    if context is None:
        return {}
    if isinstance(context, LoopSettings):
        return context.model_dump()
    if isinstance(context, Mapping):
        data = dict(context)
    elif hasattr(context, "model_dump"):
        data = context.model_dump()
    elif dataclasses.is_dataclass(context) and not isinstance(context, type):
        data = dataclasses.asdict(context)
    else:
        raise BadInputError(
            f"the run context must be LoopSettings or a dict of its fields, not {type(context).__name__}"
        )
    known = {k: v for k, v in data.items() if k in LoopSettings.model_fields}
    if len(known) < len(data):
        log.debug("run context keys that are not loop settings, left to the parent: %s", sorted(set(data) - set(known)))
    return known


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
