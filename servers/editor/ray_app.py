"""Serve the editor app as a Ray Serve deployment: one replica per GPU, autoscaled on ongoing requests.

A local cluster is started as closed as Ray allows: node address 127.0.0.1, no dashboard, token
authentication on with a fresh token (so a client without it is refused), and Serve's proxy on the
``--host`` address. Ray's own gRPC servers (GCS, raylet, agents, workers) still listen on every
interface; at start-up each such socket is listed by process name as a warning. The server holds its
port while Ray starts, and announces it only once the proxy's ``/-/routes`` routes it to this editor.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from thinkedit.servers.editor.settings import EditorServerSettings

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
                from thinkedit.tools.registry import start_parallel_runtime

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


def local_cluster_env(token: str) -> dict[str, str]:
    """Return the environment a local cluster starts with: token auth on, loopback node address, no usage reports.

    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is Ray's single-machine mode (its default on macOS and
    Windows): the node address is 127.0.0.1, where ``ray.init`` would otherwise turn 127.0.0.1 into
    the machine's public address for the agents and the proxy.
    """
    return {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }


def exposed_listeners(root_pid: int | None = None) -> list[str]:
    """List the TCP sockets this process and its descendants listen on beyond loopback, as 'name pid addr:port'."""
    import psutil

    root = psutil.Process(root_pid or os.getpid())
    found: list[str] = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            connections = proc.net_connections(kind="inet")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        for conn in connections:
            if conn.status != psutil.CONN_LISTEN or not conn.laddr:
                continue
            address = ipaddress.ip_address(conn.laddr.ip.split("%")[0])
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
                address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback too
            if not address.is_loopback:
                found.append(f"{name} {proc.pid} {conn.laddr.ip}:{conn.laddr.port}")
    return sorted(set(found))


def warn_exposed(listeners: list[str]) -> None:
    """Say which Ray sockets listen beyond loopback, and why that is tolerable (token auth) or not."""
    if listeners:
        log.warning(
            "Ray listens beyond loopback on %d socket(s) it cannot bind to 127.0.0.1 (token authentication "
            "refuses clients without this server's token; firewall them on a shared network): %s",
            len(listeners),
            "; ".join(listeners),
        )


class PortTaken(Exception):
    """The server's port is held by another program."""


@contextmanager
def reserved_port(host: str, port: int) -> Iterator[None]:
    """Hold ``host:port`` while Ray starts, then free it for Serve's proxy.

    Ray's own services (the metrics exporter among them) take free ports as they start; holding
    ours until then keeps them off it. Raise ``PortTaken`` if another program holds it already.
    """
    address = host.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError as exc:
            message = f"{host}:{port} is in use by another program ({exc.strerror}); choose another --port"
            raise PortTaken(message) from exc
        yield


def proxy_problem(host: str, port: int, timeout: float = 30.0) -> str | None:
    """Wait until Serve's proxy on ``host:port`` routes ``/`` to this app; return None, or why it does not.

    Whatever else answers on the port (an HTTP server that is not Serve's proxy, or Serve routing
    another app there) is named, so the server never claims an address another program serves.
    """
    address = host.strip("[]")
    address = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)
    url = f"http://{f'[{address}]' if ':' in address else address}:{port}/-/routes"
    deadline = time.monotonic() + timeout
    why = "nothing answered"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own address
                routes = json.loads(response.read())
            if isinstance(routes, dict) and routes.get("/") == APP_NAME:
                return None
            return f"the server at {host}:{port} is not this one (its routes: {str(routes)[:200]})"
        except urllib.error.HTTPError as exc:
            if exc.code != 503:  # 503: Serve's proxy has not had its route table yet
                return f"another program answers on {host}:{port} (HTTP {exc.code} for /-/routes)"
            why = "Serve's proxy did not get its routes"
        except ValueError:
            return f"another program answers on {host}:{port} (not Serve's proxy: /-/routes is not JSON)"
        except OSError as exc:
            why = f"nothing answered ({exc})"
        time.sleep(0.2)
    return f"{why} on {host}:{port} within {timeout:.0f} s"


def serve_with_ray(settings: EditorServerSettings, host: str, port: int, options: RayOptions) -> int:
    """Start (or join) Ray, run the deployment behind Serve's HTTP proxy on host:port, wait for a signal."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports leave the machine
    if not options.address:
        # A fresh token per server, in the environment Ray's processes inherit (never written to ~/.ray).
        # Set before Ray is imported: its C++ config reads RAY_AUTH_MODE once, at import.
        os.environ.update(local_cluster_env(secrets.token_urlsafe(32)))
    try:
        import ray
        from ray import serve
    except ImportError:
        print("thinkedit: error: --ray needs Ray Serve: pip install 'thinkedit[ray]'", file=sys.stderr)
        return 1
    try:
        with reserved_port(host, port):
            if options.address:
                ray.init(address=options.address, logging_level=logging.WARNING)
            else:
                ray.init(
                    _node_ip_address="127.0.0.1",
                    include_dashboard=False,
                    dashboard_host="127.0.0.1",
                    logging_level=logging.WARNING,
                )
    except PortTaken as exc:
        print(f"thinkedit: error: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        serve.start(http_options={"host": host, "port": port}, detached=False)
        serve.run(build_application(settings, options, gpus), name=APP_NAME, route_prefix="/", blocking=False)
        if (problem := proxy_problem(host, port)) is not None:
            print(f"thinkedit: error: Ray Serve is not serving this editor: {problem}", file=sys.stderr)
            serve.shutdown()
            return 1
        named: set[str] = set()
        print(
            f"editor {settings.model}: {options.replicas} Ray Serve replica(s) at http://{host}:{port}/v1",
            file=sys.stderr,
            flush=True,
        )
        interval = 0.0
        while not stop.wait(interval):
            interval = 5.0
            if not options.address:  # replicas start (and autoscale) later: name each new socket once
                new = [entry for entry in exposed_listeners() if entry not in named]
                named.update(new)
                warn_exposed(new)
        log.info("shutting down Ray Serve (queued edits finish first)")
        serve.shutdown()
    finally:
        ray.shutdown()
    return 0
