"""The calls every end-to-end test makes over a real client session: call a tool and require
success (its structured result, and the whole result when the test reads its content), and poll a
job to one of the statuses wanted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import mcp_types as types
from mcp.client.session import ClientSession

from mcp_server.client import result_text, structured
from tests.helpers import ENDED, Caller, poll_job


async def call_result(
    session: ClientSession,
    tool: str,
    arguments: dict[str, Any] | None = None,
    /,
    progress_callback: Any = None,
    **named: Any,
) -> tuple[dict[str, Any], types.CallToolResult]:
    """Call `tool` with `arguments` and/or named arguments; fail the test with the error text if it errs.
    Returns its structured content and the whole result (resource links, images)."""
    result = await session.call_tool(tool, {**(arguments or {}), **named}, progress_callback=progress_callback)
    assert isinstance(result, types.CallToolResult), f"{tool}: not a tool result: {result}"
    assert not result.is_error, f"{tool}: {result_text(result)}"
    return structured(result), result


async def call_ok(
    session: ClientSession,
    tool: str,
    arguments: dict[str, Any] | None = None,
    /,
    progress_callback: Any = None,
    **named: Any,
) -> dict[str, Any]:
    """`call_result`'s structured content only."""
    return (await call_result(session, tool, arguments, progress_callback, **named))[0]


def session_caller(session: ClientSession) -> Caller:
    async def caller(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await call_ok(session, name, arguments)

    return caller


async def poll(
    session: ClientSession, job_id: str, until: Iterable[str] = ENDED, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll get_training_metrics over the session until the job's status is one of `until`."""
    return await poll_job(session_caller(session), job_id, until, timeout)
