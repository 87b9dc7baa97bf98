"""A small MCP client for the server, over stdio (or streamable HTTP) with the official `mcp` client.

Used by the demo, the benchmarks and the end-to-end tests: it spawns `python -m mcp_server` with
the storage settings passed explicitly (stdio_client only forwards a whitelist of env vars).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TextIO

import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

_FORWARDED_PREFIXES: tuple[str, ...] = (
    "MLOPS_",
    "AWS_",
    "LOG_LEVEL",
    "GITHUB_",
    "RLLIB_",
    "RAY_",
    "HOME",
    "PYTHON",
    "TMPDIR",
)
_FORWARDED_PREFIXES += ("SLACK_", "SMTP_", "TEAMS_", "DISCORD_")  # notification destinations and secrets


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: our settings from this process, then `extra` on top."""
    env = {k: v for k, v in os.environ.items() if k.startswith(_FORWARDED_PREFIXES)}
    env.update(extra or {})
    return env


@asynccontextmanager
async def connect(
    env: Mapping[str, str] | None = None, errlog: TextIO | None = None, args: list[str] | None = None
) -> AsyncIterator[ClientSession]:
    """Spawn the server and yield an initialised `ClientSession`."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_server", *(args or [])], env=server_env(env)
    )
    async with (
        stdio_client(params, errlog=errlog or sys.stderr) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def structured(result: types.CallToolResult) -> dict[str, Any]:
    """The result's structured content, or its text parsed as JSON for clients that ignore it
    (the text is a one-line summary, then the JSON)."""
    if result.structured_content is not None:
        return dict(result.structured_content)
    for item in result.content:
        if isinstance(item, types.TextContent):
            _, _, body = item.text.partition("\n")
            if body.startswith("{"):
                return dict(json.loads(body))
    return {}


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(item.text for item in result.content if isinstance(item, types.TextContent))


@asynccontextmanager
async def connect_http(
    url: str, token: str | None = None, headers: Mapping[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    """Connect to a running server's streamable HTTP endpoint (`http://host:port/mcp`)."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    all_headers = dict(headers or {})
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    async with (
        httpx2.AsyncClient(headers=all_headers, timeout=httpx2.Timeout(30, read=300)) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session
