"""Delete a finished run: its record, its checkpoints, the files written for it, and the images no other run uses.

Artifacts are content-addressed, so two runs (a chained edit, the same photo edited twice) can
share an image: an image is removed only when no other run's record or checkpoint names it.
The run's lock is held throughout, so nobody resumes the run while it goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from thinkedit.agent.checkpoint import named_images
from thinkedit.agent.runs import Runner
from thinkedit.agent.state import ACTIVE, RunState
from thinkedit.tools.errors import BadInputError
from thinkedit.tools.store import ArtifactStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deleted:
    """What deleting a run removed, and how many of its images other runs still use."""

    run_id: str
    images_deleted: int
    images_kept: int
    files_deleted: int


def outputs_of(run_id: str, state: RunState | None, store: ArtifactStore, out_dir: Path) -> list[Path]:
    """Return the files in ``out_dir`` that are this run's outputs (``write_outputs``), and no others.

    A folder the user chose may hold files of their own, or the outputs another run wrote there
    later under the same names. So the folder holds this run's outputs only while its
    ``trajectory.json`` names this run; then ``report.html`` counts when its title names it too, and
    a PNG when its bytes are the stored image of the round (or the final choice) it is named after.
    """
    trajectory = out_dir / "trajectory.json"
    try:
        data = json.loads(trajectory.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("run_id") != run_id:
        return []
    found = [trajectory]
    with contextlib.suppress(OSError):
        if f"<title>thinkedit run {run_id}</title>".encode() in (out_dir / "report.html").read_bytes():
            found.append(out_dir / "report.html")
    images = {f"round-{r.index}.png": r.image for r in state.rounds} if state is not None else {}
    if state is not None and state.final_image is not None:
        images["final.png"] = state.final_image
    for name, ref in images.items():
        with contextlib.suppress(OSError, BadInputError):  # gone, unreadable, or no longer in the store
            if (out_dir / name).read_bytes() == store.read_bytes(ref):
                found.append(out_dir / name)
    return found


async def delete_run(runner: Runner, run_id: str, outputs_root: Path) -> Deleted:
    """Delete a run that is not running or awaiting review (cancel it first); raise ``BadInputError`` otherwise."""
    record = runner.registry.load(run_id)
    if record.status in ACTIVE:
        raise BadInputError(f"run {run_id} is {record.status.replace('_', ' ')}: cancel it before deleting it")
    await runner.locks.acquire(run_id)  # raises, naming the holder, while another process drives it
    try:
        state = await runner.state(run_id)
        mine = {ref.sha256: ref for ref in named_images([record, state])}
        used = set()
        for other in runner.registry.list(strict=True):  # a run whose record cannot be read may use any image
            if other.run_id != run_id:
                used |= {ref.sha256 for ref in named_images([other, await runner.state(other.run_id)])}
        await runner.graph.checkpointer.adelete_thread(run_id)
        out_dir = (Path(record.out_dir) if record.out_dir else outputs_root / run_id).expanduser()
        gone = [ref for sha, ref in mine.items() if sha not in used]

        def remove() -> tuple[int, int]:
            files = outputs_of(run_id, state, runner.store, out_dir)  # before its images leave the store
            # A run started from the same photo while the checkpoints were read names it in its record
            # by now: read the records again, right before the images go.
            named = {ref.sha256 for other in runner.registry.list(strict=True) if other.run_id != run_id
                     for ref in named_images([other])}
            removed = [ref for ref in gone if ref.sha256 not in named]
            for ref in removed:
                runner.store.delete(ref)
            runner.registry.delete(run_id)
            for path in files:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # gone already, or holding files that are not the run's
                out_dir.rmdir()
            return len(removed), len(files)

        images, files = await asyncio.to_thread(remove)
    finally:
        await runner.locks.release(run_id)
    log.info("deleted run %s: %d image(s) removed, %d kept for other runs", run_id, images, len(mine) - images)
    return Deleted(run_id, images, len(mine) - images, files)
