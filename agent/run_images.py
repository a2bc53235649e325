"""A run's images by name (``source``, ``reference-N``, ``round-N``, ``final``): one resolver for every surface.

The gallery's image URLs, the MCP ``thinkedit://runs/...`` resources and previews, and image
inputs that name an earlier run all resolve names here, so a name means the same image everywhere.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from thinkedit.tools.errors import BadInputError
from thinkedit.tools.types import ImageRef

if TYPE_CHECKING:
    from thinkedit.agent.runs import Runner, RunRecord
    from thinkedit.agent.state import RunState

#: ``source``, ``final``, ``round-N`` (N from 1) and ``reference-N`` (N from 2: the image number the thinker is told).
IMAGE_NAME = re.compile(r"^(?:source|final|round-(?P<round>[1-9][0-9]{0,5})|reference-(?P<reference>[2-9]|[1-9][0-9]{1,5}))$")


def image_names(record: RunRecord, state: RunState | None) -> list[str]:
    """Return the names of the images a run has now, in the order a viewer shows them."""
    names = ["source", *(f"reference-{n}" for n in range(2, 2 + len(record.references)))]
    if state is not None:
        names += [f"round-{r.index}" for r in state.rounds]
        if state.final_image is not None:
            names.append("final")
    return names


def run_image(record: RunRecord, state: RunState | None, name: str) -> ImageRef:
    """Return the image ``name`` points to in a run, or raise ``BadInputError`` naming the images it has.

    ``final`` is the image the run chose, and only that. A run that has not chosen yet (running,
    awaiting review, cancelled, failed) has no final image, and asking for one is an error that
    lists the rounds it has. Falling back to the latest round (or the source) would hand out a
    different picture under the same name as the run goes on: a link or a ``thinkedit://`` URI
    passed to the next edit as "the result" would silently edit an intermediate round. Whoever
    wants the latest round asks for ``round-N`` by number.
    """
    match = IMAGE_NAME.fullmatch(name)  # not ``match``: its ``$`` also matches before a final newline
    if match is None:
        raise BadInputError(f"unknown image {name!r}: use source, final, round-N (N from 1) or reference-N (N from 2)")
    if name == "source":
        return record.source
    if reference := match["reference"]:
        n = int(reference)
        if n - 2 < len(record.references):
            return record.references[n - 2]
        raise BadInputError(f"run {record.run_id} has no reference image {n}: {_has(record, state)}")
    if name == "final":
        if state is not None and state.final_image is not None:
            return state.final_image
        raise BadInputError(f"run {record.run_id} has no final image yet (status: {record.status}): {_has(record, state)}")
    n = int(match["round"])
    for r in state.rounds if state is not None else []:
        if r.index == n:
            return r.image
    raise BadInputError(f"run {record.run_id} has no round {n}: {_has(record, state)}")


async def load_run_image(runner: Runner, run: str | RunRecord, name: str) -> ImageRef:
    """Return the image ``name`` points to in a run: by its id, or by its record when the caller read it already.

    ``source`` comes from the record alone; every other name also reads the checkpointed state (an error
    lists the rounds the run has).
    """
    record = runner.registry.load(run) if isinstance(run, str) else run
    if name == "source":
        return record.source  # the record alone names it: no checkpoint read
    return run_image(record, await runner.state(record.run_id), name)


def _has(record: RunRecord, state: RunState | None) -> str:
    """Say which images a run has, for an error."""
    return "it has " + ", ".join(image_names(record, state))
