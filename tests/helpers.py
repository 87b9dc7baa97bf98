"""Helpers for tests: call a tool through the router and get its structured result."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from mcp_server.client import result_text, structured
from mcp_server.router import ToolRouter


async def call(router: ToolRouter, name: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool the way the server does; fail the test with the error text if it errs."""
    result = await router.call(name, arguments)
    assert not result.is_error, f"{name} failed: {result_text(result)}"
    return structured(result)


async def call_error(router: ToolRouter, name: str, **arguments: Any) -> str:
    """Call a tool that must fail; returns the error text."""
    result = await router.call(name, arguments)
    assert result.is_error, f"{name} should have failed but returned {structured(result)}"
    assert isinstance(result.content[0], types.TextContent)
    assert "Traceback" not in result_text(result)
    return result_text(result)
