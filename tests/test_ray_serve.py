"""The editor app as a Ray Serve deployment with two CPU replicas, driven by the openai SDK."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import threading
import time
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import openai
import pytest
from PIL import Image

from thinkedit.servers.editor.settings import EditorServerSettings
from thinkedit.servers.editor.ray_app import (
    APP_NAME, PortTaken, RayOptions, deployment_options, proxy_problem, reserved_port,
)
from tests.servers import ServerProcess, free_port, png_bytes

pytestmark = pytest.mark.slow


def test_deployment_options_pick_resources_and_autoscaling() -> None:
    settings = EditorServerSettings(model="tiny-kontext", max_queue=10, max_batch=4)
    cpu = deployment_options(settings, RayOptions(replicas=2), cluster_gpus=0)
    assert cpu["num_replicas"] == 2 and cpu["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.0}
    assert cpu["max_ongoing_requests"] == 14
    gpu = deployment_options(settings, RayOptions(replicas=1, autoscale_max=8), cluster_gpus=8)
    assert gpu["ray_actor_options"]["num_gpus"] == 1.0 and "num_replicas" not in gpu
    assert gpu["autoscaling_config"]["min_replicas"] == 1 and gpu["autoscaling_config"]["max_replicas"] == 8


def test_a_port_another_program_holds_is_refused_and_a_reserved_one_cannot_be_taken() -> None:
    with socket.create_server(("127.0.0.1", 0)) as other:
        taken = other.getsockname()[1]
        with pytest.raises(PortTaken, match=f"127.0.0.1:{taken} is in use by another program"):
            with reserved_port("127.0.0.1", taken):
                pass
    port = free_port()
    with reserved_port("127.0.0.1", port):  # while Ray starts: none of its services can bind the port
        with socket.socket() as ray_service, pytest.raises(OSError):
            ray_service.bind(("", port))
    with socket.create_server(("127.0.0.1", port)):  # then Serve's proxy can
        pass


@contextmanager
def answering(replies: list[tuple[int, bytes]]) -> Iterator[tuple[int, list[str]]]:
    """Serve ``replies`` in turn (the last one from then on) on a loopback port; yield the port and the paths asked."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            asked.append(self.path)
            status, body = replies[min(len(asked), len(replies)) - 1]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], asked
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_checks_that_serve_routes_its_port_to_this_app() -> None:
    ours = json.dumps({"/": APP_NAME}).encode()
    with answering([(503, b"Route table is not populated yet."), (200, ours)]) as (port, asked):
        assert proxy_problem("127.0.0.1", port, timeout=10) is None  # waits out the proxy's 503
    assert asked == ["/-/routes", "/-/routes"]
    with answering([(200, json.dumps({"/": "someone-else"}).encode())]) as (port, _):
        assert "is not this one" in (proxy_problem("127.0.0.1", port, timeout=10) or "")
    with answering([(405, b"")]) as (port, _):
        assert f"another program answers on 127.0.0.1:{port} (HTTP 405" in (proxy_problem("127.0.0.1", port) or "")
    assert "nothing answered" in (proxy_problem("127.0.0.1", free_port(), timeout=0.5) or "")


def test_ray_s_metrics_exporter_on_the_port_is_named_not_taken_for_serve() -> None:
    """Ray's Prometheus exporter, on a port it found free, answers every GET with 200: not Serve's proxy."""
    from prometheus_client import start_http_server

    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        problem = proxy_problem("127.0.0.1", port, timeout=10)
    finally:
        server.shutdown()
        thread.join()
    assert problem is not None and "not Serve's proxy" in problem


def listeners(root_pid: int) -> list[tuple[str, str, int]]:
    """Return (process name, address, port) of every TCP socket the server's process tree listens on."""
    import psutil

    root = psutil.Process(root_pid)
    found = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            found += [(proc.name(), c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="inet")
                      if c.status == psutil.CONN_LISTEN]
        except psutil.NoSuchProcess:
            continue
    return found


def loopback(ip: str) -> bool:
    import ipaddress

    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def check_ray_exposure(server: ServerProcess) -> None:
    """Ray's own services listen on loopback, refuse clients without the token, and what is left is named."""
    import grpc
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    found = listeners(server.proc.pid)  # type: ignore[union-attr]
    names = {name for name, _, _ in found}
    assert "gcs_server" in names and "raylet" in names and "ray::ProxyActor" in names, names
    open_ones = [(n, ip, port) for n, ip, port in found if not loopback(ip)]
    core = ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray::ProxyActor", "python")
    assert not [o for o in open_ones if o[0].startswith(core)], open_ones  # GCS, raylet, agents, driver: loopback
    assert 8265 not in {port for _, _, port in found}  # no dashboard
    assert (dict((port, ip) for _, ip, port in found)[server.port]) == "127.0.0.1"  # the proxy follows --host
    for name, ip, port in open_ones:  # whatever still listens beyond loopback is named (checked every 5 s)
        for _ in range(60):
            if f"{name} " in server.log_tail(400_000) and f"{ip}:{port}" in server.log_tail(400_000):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"{name} {ip}:{port} listens beyond loopback but was never named")
    gcs_port = next(port for name, _, port in found if name == "gcs_server")
    with grpc.insecure_channel(f"127.0.0.1:{gcs_port}") as channel:  # a client without the token
        with pytest.raises(grpc.RpcError) as refused:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_two_replicas_answer_through_serve_and_ray_stays_on_loopback(
    server_data_dir: Path, server_logs: Path
) -> None:
    server = ServerProcess(["editor", "--model", "tiny-kontext", "--ray", "--replicas", "2"], server_data_dir,
                           server_logs / "ray.log")
    server.start(timeout=180)
    try:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="unused", max_retries=0)
        image = png_bytes(Image.new("RGB", (48, 48), (200, 120, 40)))
        replicas: set[str] = set()
        images: list[bytes] = []
        deadline = time.monotonic() + 90  # the proxy answers once one replica is up; the other may still load
        while time.monotonic() < deadline:
            answers = await asyncio.gather(*(
                client.images.with_raw_response.edit(image=("a.png", image, "image/png"), prompt="x",
                                                     extra_body={"seed": 7})
                for _ in range(8)
            ))
            replicas |= {a.headers["x-thinkedit-replica"] for a in answers}
            images += [base64.b64decode(a.parse().data[0].b64_json) for a in answers]
            if len(replicas) == 2:
                break
            await asyncio.sleep(0.5)
        assert len(replicas) == 2, f"only {replicas} answered"
        check_ray_exposure(server)  # both replicas are up now
        pictures = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16) for data in images]
        for picture in pictures[1:]:  # one seed, one picture, whichever replica and batch made it
            assert np.abs(picture - pictures[0]).max() <= 3
    finally:
        code = server.stop(signal.SIGTERM, timeout=60)
    assert code == 0, server.log_tail()
