"""``thinkedit ui``: serve the local gallery of runs (loopback by default; a token for any other address)."""

from __future__ import annotations

import argparse
import sys

from thinkedit.servers.exposure import check_exposure, resolve_token, url_host
from thinkedit.servers.options import (
    add_address, add_data_dir, add_model_servers, add_profile, add_storage_options, int_at_least, storage_urls,
)

DEFAULT_PORT = 8770


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``ui``."""
    p = subparsers.add_parser(
        "ui",
        description="Serve a small web app listing the runs of the data dir (and shared stores) with thumbnails, "
        "status and scores; each run opens as its report, live while it runs; runs can be started from an "
        "uploaded image and reviewed from the page. Works offline, no front-end build.",
    )
    add_address(p, port=DEFAULT_PORT)
    add_profile(p)
    add_model_servers(p)
    p.add_argument("--max-upload-mb", type=int_at_least(1), default=20, help="Largest uploaded image in MiB (default 20).")
    add_data_dir(p)
    add_storage_options(p)
    p.set_defaults(handler=cmd_ui)


def _fail(message: str) -> int:
    print(f"thinkedit: error: {message}", file=sys.stderr)
    return 2


def cmd_ui(args: argparse.Namespace) -> int:
    """Check the address and settings, then serve the gallery until interrupted."""
    from pydantic import ValidationError

    from thinkedit.agent.settings import resolve_settings
    from thinkedit.agent.settings_check import check_settings
    from thinkedit.tools.errors import one_line
    from thinkedit.tools.config import default_data_dir
    from thinkedit.tools.errors import BadInputError

    token = resolve_token(args.token)
    if (refusal := check_exposure(args.host, token)) is not None:
        return _fail(refusal)
    data_dir = (args.data_dir or default_data_dir()).expanduser().resolve()
    try:
        settings = resolve_settings(args.profile, data_dir=str(data_dir), editor_url=args.editor,
                                    editor_model=args.editor_model, thinker_url=args.thinker,
                                    thinker_model=args.thinker_model)
        check_settings(settings)
    except (BadInputError, ValidationError) as exc:
        return _fail(one_line(exc))
    import uvicorn

    from thinkedit.servers.timeouts import HEADER_TIMEOUT_S, guarded_protocol
    from thinkedit.servers.ui.app import GalleryConfig, build_app
    from thinkedit.tools.registry import prime_in_process_runtime

    storage = storage_urls(args)
    config = GalleryConfig(
        data_dir=data_dir,
        settings=settings,
        checkpoints_url=storage["checkpoints"],
        artifacts_url=storage["artifacts"],
        token=token,
        max_upload_bytes=args.max_upload_mb * 1024 * 1024,
    )
    prime_in_process_runtime(settings.editor, settings.thinker)
    print(f"thinkedit ui: http://{url_host(args.host)}:{args.port}/ · runs in {data_dir}", file=sys.stderr, flush=True)
    # Headers get a deadline, as on every server of ours: connections held open with half a request go.
    uvicorn.run(build_app(config), host=args.host, port=args.port, log_level="warning",
                http=guarded_protocol(HEADER_TIMEOUT_S), timeout_keep_alive=5)
    return 0
