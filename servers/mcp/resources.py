"""MCP resources: a run's trajectory and its images, addressed by ``thinkedit://`` URI templates."""

from __future__ import annotations

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from thinkedit.servers.mcp.lifespan import AppState
from thinkedit.servers.mcp.viewer import preview_jpeg
from thinkedit.tools.errors import BadInputError


async def _app(ctx: Context) -> AppState:
    """Return the state the lifespan built, once its Runner is open."""
    return await ctx.request_context.lifespan_context.ready()


async def _png(app: AppState, run_id: str, name: str) -> bytes:
    """Read one of a run's PNGs by name; an unknown run or image is 'not found', not a crash."""
    from thinkedit.agent.run_images import load_run_image  # the agent loads after start-up

    try:
        ref = await load_run_image(app.runner, run_id, name)
        return app.runner.store.read_bytes(ref)
    except BadInputError as exc:
        raise ResourceNotFoundError(str(exc)) from exc


def register_resources(server: MCPServer) -> None:
    """Add the run and image resource templates to ``server``."""

    @server.resource(
        "thinkedit://runs/{run_id}",
        name="run",
        title="Think-while-Edit run",
        description="A run's trajectory: status, every round's instruction, scores and reasoning, the chosen image.",
        mime_type="application/json",
    )
    async def run_trajectory(run_id: str, ctx: Context) -> str:
        """Return the run's trajectory as JSON: what ``get_run`` says of it (its review, an interruption)."""
        from thinkedit.servers.mcp.results import read_run_result

        app = await _app(ctx)
        try:
            result = await read_run_result(app.runner, app.jobs, run_id, app.jobs.outputs_dir(run_id))
        except BadInputError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return result.model_dump_json(indent=1)

    @server.resource(
        "thinkedit://runs/{run_id}/final.png",
        name="run-final",
        title="Chosen image of a run",
        description="The full-size PNG of the round the run chose (once it is done).",
        mime_type="image/png",
    )
    async def run_final(run_id: str, ctx: Context) -> bytes:
        """Return the chosen image's PNG bytes."""
        return await _png(await _app(ctx), run_id, "final")

    @server.resource(
        "thinkedit://runs/{run_id}/source.png",
        name="run-source",
        title="Source image of a run",
        description="The image the run edited.",
        mime_type="image/png",
    )
    async def run_source(run_id: str, ctx: Context) -> bytes:
        """Return the source image's PNG bytes."""
        return await _png(await _app(ctx), run_id, "source")

    @server.resource(
        "thinkedit://runs/{run_id}/rounds/{n}.png",
        name="run-round",
        title="One round's image",
        description="The full-size PNG one round of the run produced (n counts from 1).",
        mime_type="image/png",
    )
    async def run_round(run_id: str, n: str, ctx: Context) -> bytes:
        """Return one round's PNG bytes."""
        if not n.isdigit():
            raise ResourceNotFoundError(f"round {n!r} is not a number")
        return await _png(await _app(ctx), run_id, f"round-{n.lstrip('0')}")

    @server.resource(
        "thinkedit://runs/{run_id}/previews/{name}.jpg",
        name="run-preview",
        title="Small preview of a run's image",
        description="A JPEG of at most 512 px of the source, the chosen image or round N (name: source, final, "
        "round-N), small enough for an MCP App viewer.",
        mime_type="image/jpeg",
    )
    async def run_preview(run_id: str, name: str, ctx: Context) -> bytes:
        """Return a small JPEG of one of the run's images (the run viewer reads these)."""
        from thinkedit.agent.run_images import load_run_image  # the agent loads after start-up

        app = await _app(ctx)
        try:
            ref = await load_run_image(app.runner, run_id, name)
            image = await anyio.to_thread.run_sync(app.runner.store.get, ref)
        except BadInputError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        return await anyio.to_thread.run_sync(preview_jpeg, image)

    @server.resource(
        "thinkedit://artifacts/{sha256}.png",
        name="image",
        title="Stored image",
        description="An image in the artifact store by its SHA-256 (edit_image results).",
        mime_type="image/png",
    )
    async def stored_image(sha256: str, ctx: Context) -> bytes:
        """Return a stored image's PNG bytes."""
        app = await _app(ctx)
        try:
            return app.runner.store.read_bytes(app.runner.store.lookup(sha256))
        except BadInputError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
