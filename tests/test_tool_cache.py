"""capabilities/tool_cache.py: the tool list is generated once per version of the code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcp_server.capabilities import tool_cache
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from mcp_server.server import UnifiedMLOpsMCPServer


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(tool_cache, "cache_folder", lambda: folder)
    return folder


def count_describes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    described: list[str] = []
    original = ToolRouter._describe

    def counting(spec):  # type: ignore[no-untyped-def]
        described.append(spec.name)
        return original(spec)

    monkeypatch.setattr(ToolRouter, "_describe", staticmethod(counting))
    return described


def test_second_start_reads_the_same_tools_from_the_cache(
    cache: Path, storage_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    described = count_describes(monkeypatch)
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    first = UnifiedMLOpsMCPServer(config).router
    built = len(described)
    second = UnifiedMLOpsMCPServer(config).router
    assert built == len(first.tool_names) and len(described) == built  # nothing generated again
    assert second.list_tools() == first.list_tools()
    assert len(list(cache.glob("tools-*.json"))) == 1


def test_a_changed_source_file_or_setting_is_a_new_key(cache: Path, storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    router = UnifiedMLOpsMCPServer(config).router
    specs = [router.spec(name) for name in router.tool_names]
    key = tool_cache.fingerprint(specs)
    module = Path(__import__(specs[0].input_model.__module__, fromlist=["_"]).__file__ or "")
    stat = module.stat()
    try:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        assert tool_cache.fingerprint(specs) != key
    finally:
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert tool_cache.fingerprint(specs) == key
    read_only = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_READ_ONLY": "true"})
    ro_router = UnifiedMLOpsMCPServer(read_only).router
    assert tool_cache.fingerprint([ro_router.spec(n) for n in ro_router.tool_names]) != key


def test_an_unreadable_cache_is_rebuilt(cache: Path, storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    expected = UnifiedMLOpsMCPServer(config).router.list_tools()
    (stored,) = cache.glob("tools-*.json")
    stored.write_text("{not json")
    assert UnifiedMLOpsMCPServer(config).router.list_tools() == expected
