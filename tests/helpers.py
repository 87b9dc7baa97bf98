"""Helpers for tests: call a tool through the router and get its structured result; bounded waits
and the one job-poll loop (through the router or a client session)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
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


async def until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Wait (on the event loop) until `condition()` holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await anyio.sleep(0.01)


Caller = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
ENDED = frozenset({"succeeded", "failed", "cancelled"})


def router_caller(router: ToolRouter) -> Caller:
    async def caller(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await call(router, name, **arguments)

    return caller


async def poll_job(
    caller: Caller, job_id: str, statuses: Iterable[str] = ENDED, timeout: float = 120.0, interval: float = 0.1
) -> dict[str, Any]:
    """Poll get_training_metrics until the job's status is one of `statuses`; fails after `timeout`."""
    wanted = set(statuses)
    deadline = time.monotonic() + timeout
    while True:
        status = await caller("get_training_metrics", {"job_id": job_id})
        if status["status"] in wanted:
            return status
        assert time.monotonic() < deadline, f"job {job_id} still {status['status']} after {timeout} s: {status}"
        await anyio.sleep(interval)
