"""The generated tool list, built once per version of the code and reused by later start-ups.

Generating every tool's JSON Schemas means building every pydantic model (~0.1 s of CPU for 31
tools, growing with each tool), and a client waits for it before its first `tools/list`. The
list is a pure function of the code, so it is cached in the user's cache folder under a key made
of every file that can shape it (this package's sources and the modules of the tools' models,
by size and mtime) plus the library versions and the tool specs themselves; any change is a new
key. A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

import mcp_types as types

from mcp_server.capabilities.base import ToolSpec
from mcp_server.common.logger import get_logger

_log = get_logger(__name__)
_PACKAGE = Path(__file__).resolve().parents[1]
_PREFIX = "tools-"


def cached_tools(specs: list[ToolSpec], describe: Callable[[ToolSpec], types.Tool]) -> list[types.Tool]:
    path = cache_folder() / f"{_PREFIX}{fingerprint(specs)}.json"
    try:
        return [types.Tool.model_validate(tool) for tool in json.loads(path.read_text())]
    except (OSError, ValueError):
        pass
    tools = [describe(spec) for spec in specs]
    _store(path, tools)
    return tools


def cache_folder() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mlops-mcp"))


def fingerprint(specs: Iterable[ToolSpec]) -> str:
    digest = hashlib.sha256()
    for name in ("mcp", "pydantic", "pydantic-core"):
        digest.update(f"{name}={_version(name)};".encode())
    files = set(_PACKAGE.rglob("*.py"))
    for spec in specs:
        digest.update(repr((spec.name, spec.title, spec.description, spec.read_only, spec.destructive)).encode())
        digest.update(repr((spec.idempotent, spec.open_world)).encode())
        for model in (spec.input_model, spec.output_model):
            digest.update(f"{model.__module__}.{model.__qualname__};".encode())
            module_file = getattr(sys.modules.get(model.__module__), "__file__", None)
            if module_file:
                files.add(Path(module_file).resolve())
    for file in sorted(files):
        try:
            stat = file.stat()
        except OSError:
            continue
        digest.update(f"{file}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def _store(path: Path, tools: list[types.Tool]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob(f"{_PREFIX}*.json"):  # one version of the code at a time
            old.unlink(missing_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps([tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools]))
        os.replace(temp, path)
    except OSError:
        _log.debug("tool list cache not written", exc_info=True)
