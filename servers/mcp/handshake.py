"""The handshake cache: the SDK's own answers to ``initialize`` and ``tools/list``, kept for the next start.

A stdio client starts the server afresh for every session and waits for ``initialize`` while the
``mcp`` SDK imports (about a second). The answer depends only on the request, the server's options
and the code that builds it, so the SDK's answer is stored under a hash of all of those and sent
at once the next time the same client starts the same server (``stdio.StdioFront``). The cache
never holds an answer the SDK did not give, and the SDK still checks each one it replaces.

Standard library only: this runs before the SDK or pydantic are imported.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The requests whose answers are kept: the handshake, and the tool list every client asks next.
CACHED_METHODS = ("initialize", "tools/list")

#: Our packages whose sources shape the answers (tool schemas, profiles, instructions).
SOURCE_PACKAGES = ("thinkedit.servers", "thinkedit.agent", "thinkedit.tools")

#: Installed distributions whose versions shape the answers (the SDK's negotiation, pydantic's schemas).
DISTRIBUTIONS = ("mcp", "mcp_types", "pydantic", "pydantic_core", "thinkedit")

#: Options that do not change what the server says in its handshake or tool list.
IGNORED_OPTIONS = frozenset(
    {"handler", "command", "server", "transport", "host", "port", "token", "verbose", "verbose_after"}
)

#: Answers kept at most: the least recently used go past this (every code change of an editable
#: install, upgrade or new client version makes new keys; a file is a few kB to tens of kB).
MAX_ENTRIES = 64
#: A temporary file older than this was left by a writer that died before renaming it.
STALE_TEMP_S = 3600.0

#: Environment variables left out of the key (secrets, and what only changes the logs).
IGNORED_ENV = frozenset({"THINKEDIT_MCP_TOKEN", "THINKEDIT_TOKEN", "THINKEDIT_LOG_LEVEL"})


class HandshakeCache:
    """Keep the SDK's answers to cacheable requests as JSON files, one per key, under ``<data dir>/mcp``."""

    def __init__(self, folder: Path, server_key: str) -> None:
        self.folder = folder
        #: The hash of everything about this server process that an answer can depend on.
        self.server_key = server_key

    @classmethod
    def for_server(cls, data_dir: Path, options: dict[str, Any]) -> HandshakeCache:
        """Make the cache for a server started with these command-line ``options``."""
        return cls(data_dir / "mcp", server_key(options))

    def key(self, method: str, params: Any, initialize_params: Any) -> str:
        """Return the key of one request: this server, the session's ``initialize`` params, the request."""
        parts = [self.server_key, initialize_params, method, params]
        return hashlib.sha256(_canonical(parts).encode()).hexdigest()[:32]

    def path(self, key: str) -> Path:
        """Return the file that holds the answer under ``key``."""
        return self.folder / f"handshake-{key}.json"

    def load(self, key: str, method: str) -> Any | None:
        """Return the stored result for ``key``, or None when there is none or it cannot be read."""
        path = self.path(key)
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            log.debug("handshake cache: no answer stored for %s (%s)", method, path.name)
            return None
        except OSError as exc:
            log.warning("handshake cache: ignoring %s, which cannot be read: %s", path, exc)
            return None
        try:
            entry = json.loads(text)
            if not isinstance(entry, dict) or entry.get("method") != method or not isinstance(entry["result"], dict):
                raise ValueError(f"not a stored {method} answer")
        except (ValueError, KeyError) as exc:
            log.warning("handshake cache: ignoring %s, which is corrupt: %s", path, exc)
            return None
        try:
            os.utime(path)  # recently used: the last to be pruned
        except OSError:
            pass
        return entry["result"]

    def store(self, key: str, method: str, result: Any) -> None:
        """Write the SDK's ``result`` under ``key`` atomically; a folder we cannot write is skipped quietly."""
        import tempfile  # not on the way to a cached answer

        path = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".handshake-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump({"method": method, "result": result}, out)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.debug("handshake cache: not stored in %s: %s", self.folder, exc)
            return
        log.debug("handshake cache: stored the SDK's answer to %s (%s)", method, path.name)
        self.prune()

    def prune(self, keep: int = MAX_ENTRIES) -> None:
        """Remove all but the ``keep`` most recently used answers, and temporary files a dead writer left."""
        answers: list[tuple[float, Path]] = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return
        for entry in entries:
            try:
                if entry.name.startswith("handshake-") and entry.name.endswith(".json"):
                    answers.append((entry.stat().st_mtime, Path(entry.path)))
                elif entry.name.startswith(".handshake-") and time.time() - entry.stat().st_mtime > STALE_TEMP_S:
                    os.unlink(entry.path)
            except OSError:
                continue  # another server pruned it first
        for _, stale in sorted(answers, reverse=True)[keep:]:
            try:
                stale.unlink()
                log.debug("handshake cache: pruned %s", stale.name)
            except OSError:
                pass

    def remove(self, key: str) -> None:
        """Forget the answer under ``key`` (the SDK refused the request it answered)."""
        try:
            self.path(key).unlink()
        except OSError:
            pass


def server_key(options: dict[str, Any]) -> str:
    """Hash what shapes the server's answers: its options, environment, code and installed versions."""
    shaping = {k: v for k, v in options.items() if k not in IGNORED_OPTIONS}
    env = {k: v for k, v in os.environ.items() if k.startswith("THINKEDIT_") and k not in IGNORED_ENV}
    profile = str(options.get("profile") or "")
    parts = {
        "options": shaping,
        "env": env,
        "cwd": os.getcwd(),
        "python": sys.version,
        "profile_file": _stat(Path(profile).expanduser()) if profile.endswith(".toml") else None,
        "distributions": installed_distributions(),
        "sources": list(source_fingerprint()),
    }
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()


def installed_distributions() -> list[str]:
    """Name the installed versions of ``DISTRIBUTIONS`` from their ``.dist-info`` folders (no metadata import)."""
    try:
        spec = importlib.util.find_spec("mcp")
    except (ImportError, ValueError):  # blocked or half-imported: no versions to name
        return []
    if spec is None or not spec.origin:
        return []
    site = Path(spec.origin).parent.parent
    try:
        names = os.listdir(site)
    except OSError:
        return []
    return sorted(n for n in names if n.endswith(".dist-info") and n.split("-")[0].lower() in DISTRIBUTIONS)


def source_fingerprint() -> Iterator[tuple[str, int, int]]:
    """Yield (path, size, mtime) of every file of our packages: an editable install changes without a version."""
    for package in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(package)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for folder, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                for name in sorted(files):
                    path = os.path.join(folder, name)
                    stat = _stat(Path(path))
                    if stat:
                        yield path, stat[0], stat[1]


def _stat(path: Path) -> tuple[int, int] | None:
    """Return a file's size and modification time, or None when it is not there."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _canonical(value: Any) -> str:
    """Serialise ``value`` the same way every time (sorted keys; paths and the like as text)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
