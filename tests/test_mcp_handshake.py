"""The handshake cache's keys and files: what misses it, and files it cannot trust or write."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from thinkedit.servers.mcp.handshake import HandshakeCache, installed_distributions, server_key, source_fingerprint

OPTIONS = {"profile": "tiny", "allow_urls": False, "max_image_mb": 8.0, "allow_root": None, "handler": print}
PARAMS = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "desk", "version": "1.0"}}


def test_the_key_follows_the_options_the_client_and_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    base = server_key(OPTIONS)
    assert server_key(dict(OPTIONS)) == base
    # Options that shape the tools change the key; the verbosity and HTTP-only options do not.
    assert server_key({**OPTIONS, "max_image_mb": 2.0}) != base
    assert server_key({**OPTIONS, "profile": "paper"}) != base
    assert server_key({**OPTIONS, "verbose": 2, "port": 1, "token": "secret"}) == base
    monkeypatch.setenv("THINKEDIT_EDITOR_URL", "http://10.0.0.1:8100/v1")
    assert server_key(OPTIONS) != base
    cache = HandshakeCache(Path("/nowhere"), base)
    key = cache.key("initialize", PARAMS, PARAMS)
    newer = {**PARAMS, "clientInfo": {"name": "desk", "version": "1.1"}}
    assert cache.key("initialize", newer, newer) != key
    assert cache.key("initialize", {**PARAMS, "capabilities": {"elicitation": {}}}, PARAMS) != key
    assert cache.key("tools/list", {}, PARAMS) != cache.key("tools/list", {}, newer)


def test_the_key_covers_installed_versions_and_our_sources() -> None:
    names = installed_distributions()
    assert any(n.startswith("mcp-") for n in names) and any(n.startswith("pydantic-") for n in names)
    files = [path for path, _, _ in source_fingerprint()]
    assert any(p.endswith("servers/mcp/schemas.py") for p in files)
    assert any(p.endswith("tools/profiles/tiny.toml") for p in files)
    assert not any("__pycache__" in p for p in files)


def test_a_profile_file_that_changes_changes_the_key(tmp_path: Path) -> None:
    profile = tmp_path / "mine.toml"
    profile.write_text("[editor]\nmodel = 'a'\n")
    before = server_key({**OPTIONS, "profile": str(profile)})
    profile.write_text("[editor]\nmodel = 'bb'\n")
    assert server_key({**OPTIONS, "profile": str(profile)}) != before


def test_the_cache_keeps_the_most_recently_used_answers(tmp_path: Path) -> None:
    import os

    from thinkedit.servers.mcp import handshake

    cache = HandshakeCache(tmp_path / "mcp", "k")
    cache.folder.mkdir()
    dead = cache.folder / ".handshake-dead.tmp"  # a writer killed between writing and renaming
    dead.write_text("{")
    os.utime(dead, (1, 1))
    fresh = cache.folder / ".handshake-live.tmp"  # another writer, busy now
    fresh.write_text("{")
    for n in range(handshake.MAX_ENTRIES):
        cache.store(f"old{n}", "initialize", {"n": n})
        os.utime(cache.path(f"old{n}"), (1000 + n, 1000 + n))  # stored long ago, in this order
    assert cache.load("old0", "initialize") == {"n": 0}  # used now: the most recent
    cache.store("new", "initialize", {"n": "new"})  # one past the limit: the least recently used goes
    names = {p.name for p in cache.folder.iterdir()}
    assert "handshake-old1.json" not in names and {"handshake-old0.json", "handshake-new.json"} <= names
    assert len([n for n in names if n.startswith("handshake-")]) == handshake.MAX_ENTRIES
    assert ".handshake-dead.tmp" not in names and ".handshake-live.tmp" in names


def test_stored_answers_round_trip_atomically(tmp_path: Path) -> None:
    cache = HandshakeCache(tmp_path / "mcp", "k")
    assert cache.load("abc", "initialize") is None
    cache.store("abc", "initialize", {"protocolVersion": "2025-11-25"})
    assert cache.load("abc", "initialize") == {"protocolVersion": "2025-11-25"}
    assert [p.name for p in (tmp_path / "mcp").iterdir()] == ["handshake-abc.json"]  # no temp file left
    assert cache.load("abc", "tools/list") is None  # an answer is only ever used for its own method
    cache.remove("abc")
    assert cache.load("abc", "initialize") is None


@pytest.mark.parametrize("content", ["{not json", "[]", '{"method": "initialize"}', '{"method": "initialize", "result": 3}'])
def test_a_corrupt_file_is_ignored_with_a_log_line(tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture) -> None:
    cache = HandshakeCache(tmp_path, "k")
    cache.path("abc").write_text(content)
    with caplog.at_level(logging.WARNING):
        assert cache.load("abc", "initialize") is None
    assert "corrupt" in caplog.text and "handshake-abc.json" in caplog.text


def test_an_unreadable_file_is_ignored_and_an_unwritable_folder_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = HandshakeCache(tmp_path, "k")
    cache.path("abc").mkdir()  # a folder where the file should be: reading it fails
    with caplog.at_level(logging.WARNING):
        assert cache.load("abc", "initialize") is None
    assert "cannot be read" in caplog.text
    (tmp_path / "file").write_text("")
    blocked = HandshakeCache(tmp_path / "file" / "mcp", "k")  # its folder cannot be made
    with caplog.at_level(logging.DEBUG):
        blocked.store("abc", "initialize", {"x": 1})
    assert "not stored" in caplog.text
    assert blocked.load("abc", "initialize") is None
