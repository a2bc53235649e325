"""Delete a finished run: its record, its checkpoints, the files written for it, and the images no other run uses.

Artifacts are content-addressed, so two runs (a chained edit, the same photo edited twice) can
share an image: an image is removed only when no other run's record or checkpoint names it.
The run's lock is held throughout, so nobody resumes the run while it goes away.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from thinkedit.agent.checkpoint import named_images
from thinkedit.agent.runs import Runner
from thinkedit.agent.state import ACTIVE
from thinkedit.tools.errors import BadInputError

log = logging.getLogger(__name__)

#: The files ``write_outputs`` puts in a run's output folder (a folder the user chose may hold others).
OUTPUT_FILES = ("final.png", "trajectory.json", "report.html")


@dataclass(frozen=True)
class Deleted:
    """What deleting a run removed, and how many of its images other runs still use."""

    run_id: str
    images_deleted: int
    images_kept: int
    files_deleted: int


def _remove_outputs(out_dir: Path) -> int:
    """Remove the files written for the run (and the folder once empty); leave anything else there."""
    if not out_dir.is_dir():
        return 0
    removed = 0
    for path in out_dir.iterdir():
        if path.is_file() and (path.name in OUTPUT_FILES or (path.name.startswith("round-") and path.suffix == ".png")):
            path.unlink()
            removed += 1
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
    return removed


async def delete_run(runner: Runner, run_id: str, outputs_root: Path) -> Deleted:
    """Delete a run that is not running or awaiting review (cancel it first); raise ``BadInputError`` otherwise."""
    record = runner.registry.load(run_id)
    if record.status in ACTIVE:
        raise BadInputError(f"run {run_id} is {record.status.replace('_', ' ')}: cancel it before deleting it")
    await runner.locks.acquire(run_id)  # raises, naming the holder, while another process drives it
    try:
        mine = {ref.sha256: ref for ref in named_images([record, await runner.state(run_id)])}
        used = set()
        for other in runner.registry.list():
            if other.run_id != run_id:
                used |= {ref.sha256 for ref in named_images([other, await runner.state(other.run_id)])}
        await runner.graph.checkpointer.adelete_thread(run_id)
        out_dir = Path(record.out_dir) if record.out_dir else outputs_root / run_id
        gone = [ref for sha, ref in mine.items() if sha not in used]

        def remove() -> int:
            for ref in gone:
                runner.store.delete(ref)
            runner.registry.delete(run_id)
            return _remove_outputs(out_dir.expanduser())

        files = await asyncio.to_thread(remove)
    finally:
        await runner.locks.release(run_id)
    log.info("deleted run %s: %d image(s) removed, %d kept for other runs", run_id, len(gone), len(mine) - len(gone))
    return Deleted(run_id, len(gone), len(mine) - len(gone), files)
