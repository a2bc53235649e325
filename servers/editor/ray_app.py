"""Serve the editor app as a Ray Serve deployment: one replica per GPU, autoscaled on ongoing requests."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from thinkedit.servers.editor.config import EditorServerSettings

log = logging.getLogger(__name__)

APP_NAME = "thinkedit-editor"


@dataclass(frozen=True)
class RayOptions:
    """Say how many replicas to run and what each one reserves."""

    replicas: int = 1
    num_gpus: float | None = None  # per replica; None: 1 when the cluster has GPUs, else 0
    num_cpus: float | None = None  # per replica; None: 1 with GPUs, else 0.5 (a CPU box runs several)
    autoscale_max: int | None = None  # autoscale between ``replicas`` and this; None: a fixed count
    target_ongoing_requests: float = 4.0
    address: str | None = None  # an existing cluster; None starts a local one on 127.0.0.1


def deployment_options(settings: EditorServerSettings, options: RayOptions, cluster_gpus: float) -> dict[str, Any]:
    """Return the ``serve.deployment`` options: replicas or autoscaling, per-replica resources, limits."""
    num_gpus = options.num_gpus if options.num_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    num_cpus = options.num_cpus if options.num_cpus is not None else (1.0 if num_gpus else 0.5)
    result: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": num_cpus, "num_gpus": num_gpus},
        # The replica keeps its own bounded queue; let Ray hand it enough requests to fill a batch.
        "max_ongoing_requests": settings.max_queue + settings.max_batch,
        "graceful_shutdown_timeout_s": settings.shutdown_timeout_s,
        "health_check_period_s": 10.0,
    }
    if options.autoscale_max:
        result["autoscaling_config"] = {
            "min_replicas": options.replicas,
            "initial_replicas": options.replicas,
            "max_replicas": max(options.autoscale_max, options.replicas),
            "target_ongoing_requests": options.target_ongoing_requests,
        }
    else:
        result["num_replicas"] = options.replicas
    return result


def build_application(settings: EditorServerSettings, options: RayOptions, cluster_gpus: float = 0.0) -> Any:
    """Return the bound Serve application: the FastAPI app of ``create_app`` as the ingress of each replica."""
    from ray import serve

    @serve.ingress()
    class EditorDeployment:
        """Run one editor app (one pipeline) per replica, named after the replica."""

        def __init__(self, replica_settings: EditorServerSettings) -> None:
            self._settings = replica_settings
            if replica_settings.backend == "diffusers" and replica_settings.placement == "thread":
                from thinkedit.tools.torchutil import start_parallel_runtime

                start_parallel_runtime()

        def __serve_build_asgi_app__(self) -> Any:
            """Build this replica's app, named after the replica, loading the model before traffic comes."""
            from thinkedit.servers.editor.app import create_app

            replica = serve.get_replica_context().replica_id.unique_id
            # Ray cancels a request whose client hangs up; load before taking traffic.
            settings = self._settings.model_copy(
                update={"replica_id": f"replica-{replica}", "watch_disconnects": False, "load_in_background": False}
            )
            return create_app(settings)

    deployment = serve.deployment(name="editor", **deployment_options(settings, options, cluster_gpus))(
        EditorDeployment
    )
    return deployment.bind(settings)


def serve_with_ray(settings: EditorServerSettings, host: str, port: int, options: RayOptions) -> int:
    """Start (or join) Ray, run the deployment behind Serve's HTTP proxy on host:port, wait for a signal."""
    try:
        import ray
        from ray import serve
    except ImportError:
        print("thinkedit: error: --ray needs Ray Serve: pip install 'thinkedit[ray]'", file=sys.stderr)
        return 1
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    if options.address:
        ray.init(address=options.address, logging_level=logging.WARNING)
    else:
        # Ray's own processes pick their addresses; only Serve's HTTP proxy takes host:port from us.
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        serve.start(http_options={"host": host, "port": port}, detached=False)
        serve.run(build_application(settings, options, gpus), name=APP_NAME, route_prefix="/", blocking=False)
        print(
            f"editor {settings.model}: {options.replicas} Ray Serve replica(s) at http://{host}:{port}/v1",
            file=sys.stderr,
            flush=True,
        )
        stop.wait()
        log.info("shutting down Ray Serve (queued edits finish first)")
        serve.shutdown()
    finally:
        ray.shutdown()
    return 0
