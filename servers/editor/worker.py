"""Run the editor pipeline in a worker process of its own, away from the server's event loop and GIL.

The server keeps its queue, batcher and HTTP in the parent; each batch crosses a private socket
(pickled requests and results) to the worker, which owns the pipeline. Inside the worker the
pipeline runs on one thread, chosen by ``thread``: ``"main"`` (default) runs every call on the
worker's main thread, as the paper's servers do; ``"pipeline"`` starts torch's parallel runtime on
the main thread and runs every call on one pipeline thread. On a quiet machine the first way is
a little faster. On a machine whose cores other jobs want, the main thread used to be far slower:
libgomp's idle threads spun for long, and a descheduled spinner held the team at every barrier.
The worker's threads now spin briefly (``WORKER_SPINCOUNT``), and both ways take about the same
time under load. ``bench/editor_server.py`` compares our server with the paper's design in one run.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from thinkedit.tools.errors import BackendError

log = logging.getLogger(__name__)


#: How long (libgomp's busy-wait iterations) an idle OpenMP thread of the worker's torch spins before
#: it sleeps, unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is set already. libgomp's default,
#: 300,000, keeps every thread of the team spinning between parallel regions: on a machine whose
#: cores other jobs want, a descheduled spinner holds the whole team at each barrier. This count
#: spins long enough to lose nothing on a quiet machine and short enough that busy neighbours do
#: not hold the team up; sleeping at once (``OMP_WAIT_POLICY=PASSIVE``), or far fewer spins, costs
#: time on a quiet machine.
WORKER_SPINCOUNT = "20000"


def worker_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the worker process's environment: ``environ``, with ``WORKER_SPINCOUNT`` unless OpenMP's wait is set."""
    env = dict(environ)
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env["GOMP_SPINCOUNT"] = WORKER_SPINCOUNT  # read when torch's libgomp loads: before the worker imports torch
    return env


def picklable(value: Any) -> bool:
    """Say whether ``value`` (an engine factory) can be sent to a worker process."""
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - lambdas, closures, local classes
        return False
    return True


class PipelineWorker:
    """Own one worker process: start it (it builds and loads the engine), send it batches, stop it."""

    def __init__(self, factory: Any, settings: Any, thread: str = "main") -> None:
        self._factory, self._settings, self._thread = factory, settings, thread
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._killed = False  # kill() came first: a start after it must not leave a worker running

    def start(self) -> None:
        """Start the worker and block until its engine is loaded; raise the worker's load error."""
        if self._killed:
            raise BackendError("the editor worker was stopped while it started")
        ours, theirs = socket.socketpair()  # private to the two processes: no address, no key
        with theirs:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "thinkedit.servers.editor.worker", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                env=worker_environment(os.environ),
            )
        if self._killed:  # kill() ran (from another thread) while the process started
            self.kill()
            ours.close()
            raise BackendError("the editor worker was stopped while it started")
        self._conn = Connection(ours.detach())
        self._conn.send(list(sys.path))  # first, so the factory's module imports in the worker
        self._conn.send((self._factory, self._settings, self._thread))
        status, payload = self._receive()
        if status != "ready":
            self.kill()
            raise payload

    def _receive(self) -> tuple[str, Any]:
        assert self._conn is not None
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.poll() if self._proc else None
            raise BackendError(f"the editor worker process died (exit status {code})") from exc

    def run(self, requests: list[Any]) -> list[Any]:
        """Run one batch in the worker (blocking) and return its results, or raise its error."""
        with self._lock:
            if self._conn is None:
                raise BackendError("the editor worker process is not running")
            try:
                self._conn.send(requests)
            except (OSError, ValueError) as exc:
                raise BackendError(f"the editor worker process died ({exc})") from exc
            status, payload = self._receive()
        if status == "error":
            raise payload
        return payload

    @property
    def alive(self) -> bool:
        """Say whether the worker process still runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit after its current batch; kill it if it does not within ``timeout`` s."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except (OSError, ValueError):
                    pass
                self._conn.close()
                self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """End the worker now, also while another thread waits in ``start`` for it to load."""
        self._killed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def _serve(conn: Connection) -> None:
    """Build the engine, then run batches until told to stop (or the server goes away)."""
    sys.path[:] = conn.recv()
    factory, settings, thread = conn.recv()
    pool = None
    if thread == "pipeline":
        if settings.backend == "diffusers":  # a torch pipeline
            from thinkedit.tools.registry import start_parallel_runtime

            start_parallel_runtime()  # on the main thread, before the pipeline thread touches torch
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")

    def call(fn: Any, *args: Any) -> Any:
        return pool.submit(fn, *args).result() if pool is not None else fn(*args)

    try:
        engine = call(factory, settings)
        load = getattr(engine, "load", None)
        if callable(load):
            call(load)
    except Exception as exc:  # noqa: BLE001 - reported to the server, which shows it on /health
        conn.send(("failed", _sendable(exc)))
        return
    conn.send(("ready", None))

    def run(requests: list[Any]) -> list[Any]:
        return list(engine.edit_batch(requests))

    while True:
        try:
            requests = conn.recv()
        except (EOFError, OSError):
            return  # the server went away
        if requests is None:
            return
        try:
            results = call(run, requests)
        except Exception as exc:  # noqa: BLE001 - one failed batch must not end the worker
            conn.send(("error", _sendable(exc)))
        else:
            conn.send(("ok", results))


def _sendable(exc: BaseException) -> BaseException:
    """Return ``exc`` if it survives pickling, else a BackendError carrying its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001
        return BackendError(f"{type(exc).__name__}: {exc}")


def main() -> None:
    """Connect back to the server that started this process and serve its pipeline."""
    from thinkedit.tools.secrets import SecretFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(SecretFilter())  # a token in this process's errors stays out of the server's log
    logging.basicConfig(level=os.environ.get("THINKEDIT_LOG_LEVEL", "WARNING").upper(), handlers=[handler])
    conn = Connection(int(sys.argv[1]))
    try:
        _serve(conn)
    finally:
        conn.close()


if __name__ == "__main__":
    main()
