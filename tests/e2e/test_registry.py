"""The model registry through the real stdio server and the official MCP client."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from mcp_server.client import connect, result_text
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.e2e.client_helpers import call_ok
from tests.model_registry.helpers import bundle_writer, train_tiny_models

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
REGISTRY_TOOLS = {
    "register_model": (False, False, False),  # read_only, destructive, idempotent
    "list_model_versions": (True, False, True),
    "get_model_version": (True, False, True),
    "update_model_status": (False, False, True),
    "rollback_model": (False, False, False),
    "search_models": (True, False, True),
}


@pytest.fixture(scope="module")
def tiny_models() -> dict[str, Any]:
    return train_tiny_models()


async def test_registry_workflow_over_stdio(tmp_path: Path, tiny_models: dict[str, Any]) -> None:
    env = {"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_CAPABILITIES": "model_registry", "LOG_LEVEL": "WARNING"}
    make = bundle_writer(S3Utils(Config.from_env(env)), tiny_models)
    good, weak = make("models/logreg"), make("models/tree", kind="tree")
    async with connect(env) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(REGISTRY_TOOLS) <= set(tools)
        for name, (read_only, destructive, idempotent) in REGISTRY_TOOLS.items():
            hints = tools[name].annotations
            assert hints is not None
            assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
                read_only,
                destructive,
                idempotent,
            )
            assert hints.open_world_hint is False

        v1 = await call_ok(session, "register_model", model_name="iris", model_s3_uri=weak, tags={"algo": "tree"})
        v2 = await call_ok(session, "register_model", model_name="iris", model_s3_uri=good, tags={"algo": "logreg"})
        assert (v1["version"], v2["version"]) == (1, 2)
        assert v2["metrics"]["accuracy"] == pytest.approx(tiny_models["logreg"][2])

        await call_ok(session, "update_model_status", model_name="iris", version=1, status="production")
        staged = await call_ok(session, "update_model_status", model_name="iris", version=2, status="staging")
        assert staged["status"] == "staging"
        promoted = await call_ok(session, "update_model_status", model_name="iris", version=2, status="production")
        assert promoted["previous_status"] == "staging" and promoted["demoted"]["version"] == 1

        listed = await call_ok(session, "list_model_versions", model_name="iris")
        assert [(v["version"], v["status"]) for v in listed["versions"]] == [(1, "archived"), (2, "production")]

        found = await call_ok(session, "search_models", metric="accuracy>=0.9", order_by="metrics.accuracy desc")
        assert [(m["model_name"], m["version"]) for m in found["models"]] == [("iris", 2)]

        rolled = await call_ok(session, "rollback_model", model_name="iris", reason="canary errors")
        assert (rolled["from_version"], rolled["to_version"]) == (2, 1)

        bad = await session.call_tool("update_model_status", {"model_name": "iris", "version": 1, "status": "none"})
        assert bad.is_error and "cannot go from production to none" in result_text(bad)
        unsafe = await session.call_tool("list_model_versions", {"model_name": "../etc"})
        assert unsafe.is_error and "not a valid model name" in result_text(unsafe)


async def test_two_servers_register_concurrently(tmp_path: Path, tiny_models: dict[str, Any]) -> None:
    env = {"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_CAPABILITIES": "model_registry", "LOG_LEVEL": "WARNING"}
    uri = bundle_writer(S3Utils(Config.from_env(env)), tiny_models)("models/logreg")
    async with AsyncExitStack() as stack:
        # Two server processes on one storage root (entered in this task: anyio scopes are per task).
        sessions = [await stack.enter_async_context(connect(env)) for _ in range(2)]
        results = await asyncio.gather(
            *(call_ok(sessions[i % 2], "register_model", model_name="shared", model_s3_uri=uri) for i in range(10))
        )
        assert sorted(r["version"] for r in results) == list(range(1, 11))
        listed = await call_ok(sessions[0], "list_model_versions", model_name="shared")
        assert listed["count"] == 10 and listed["latest_version"] == 10


async def test_demo_registry_section_runs(tmp_path: Path, tiny_models: dict[str, Any]) -> None:
    from demo.__main__ import Demo
    from demo.registry import run

    env = {"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_CAPABILITIES": "model_registry", "LOG_LEVEL": "WARNING"}
    uri = bundle_writer(S3Utils(Config.from_env(env)), tiny_models)("models/best")
    async with connect(env) as session:
        out = await run(Demo(session), uri)
    assert out["versions"] == [1, 2]
    assert (out["rolled_back_from"], out["production_version"]) == (2, 1)
    assert out["search_matches"] == 2
    assert out["metrics"]["accuracy"] == pytest.approx(tiny_models["logreg"][2])
