from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_server.capabilities.model_registry.store import TRANSITIONS, RegistryStore
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.model_registry.helpers import MakeBundle


async def _register(router: ToolRouter, uri: str, n: int, name: str = "m") -> None:
    for _ in range(n):
        await call(router, "register_model", model_name=name, model_s3_uri=uri)


def _statuses(router: ToolRouter, name: str = "m") -> dict[int, str]:
    docs, _ = RegistryStore(router.storage).list_versions(name)
    return {doc["version"]: doc["status"] for doc in docs}


def _index(router: ToolRouter, name: str = "m") -> dict[str, Any]:
    return dict(json.loads(router.storage.read_bytes(router.storage.resolve(f"registry/{name}/index.json"))))


async def test_promotion_demotes_previous_production_to_archived(
    any_router: ToolRouter, make_bundle: MakeBundle
) -> None:
    await _register(any_router, make_bundle("models/a"), 3)
    staged = await call(any_router, "update_model_status", model_name="m", version=1, status="staging")
    assert (staged["previous_status"], staged["status"], staged["demoted"]) == ("none", "staging", None)
    first = await call(any_router, "update_model_status", model_name="m", version=1, status="production")
    assert first["previous_status"] == "staging" and first["production_version"] == 1
    second = await call(
        any_router, "update_model_status", model_name="m", version=2, status="production", reason="better recall"
    )
    assert second["demoted"] == {"version": 1, "previous_status": "production", "status": "archived"}
    assert second["production_version"] == 2
    assert _statuses(any_router) == {1: "archived", 2: "production", 3: "none"}
    index = _index(any_router)
    assert index["production_version"] == 2 and index["pending"] is None

    got = await call(any_router, "get_model_version", model_name="m", version=1)
    history = got["versions"][0]["history"]
    assert [(h["from"], h["to"]) for h in history] == [
        (None, "none"),
        ("none", "staging"),
        ("staging", "production"),
        ("production", "archived"),
    ]
    assert "version 2 promoted" in history[-1]["reason"] and "better recall" in history[-1]["reason"]


async def test_promotion_can_demote_previous_to_staging(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 2)
    await call(router, "update_model_status", model_name="m", version=1, status="production")
    out = await call(
        router, "update_model_status", model_name="m", version=2, status="production", demote_previous_to="staging"
    )
    assert out["demoted"]["status"] == "staging"
    assert _statuses(router) == {1: "staging", 2: "production"}


async def test_same_status_is_a_no_op(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 1)
    await call(router, "update_model_status", model_name="m", version=1, status="production")
    again = await call(router, "update_model_status", model_name="m", version=1, status="production")
    assert again["changed"] is False and again["previous_status"] == "production"
    got = await call(router, "get_model_version", model_name="m", version=1)
    assert len(got["versions"][0]["history"]) == 2


@pytest.mark.parametrize(
    ("path", "target"),
    [(["production"], "none"), (["archived"], "none"), (["staging", "production"], "none")],
)
async def test_invalid_transition_names_allowed_statuses(
    router: ToolRouter, make_local_bundle: MakeBundle, path: list[str], target: str
) -> None:
    await _register(router, make_local_bundle("models/a"), 1)
    for status in path:
        await call(router, "update_model_status", model_name="m", version=1, status=status)
    text = await call_error(router, "update_model_status", model_name="m", version=1, status=target)
    current = path[-1]
    assert f"cannot go from {current} to {target}" in text
    assert ", ".join(TRANSITIONS[current]) in text
    assert _statuses(router) == {1: current}


async def test_archived_version_can_return_to_staging(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 1)
    await call(router, "update_model_status", model_name="m", version=1, status="archived")
    out = await call(router, "update_model_status", model_name="m", version=1, status="staging")
    assert out["previous_status"] == "archived"


async def test_unpromoting_production_leaves_no_production(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 1)
    await call(router, "update_model_status", model_name="m", version=1, status="production")
    out = await call(router, "update_model_status", model_name="m", version=1, status="archived")
    assert out["production_version"] is None
    text = await call_error(router, "get_model_version", model_name="m", version="production")
    assert "no production version" in text


async def test_unknown_model_and_version_are_clear_errors(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 2)
    text = await call_error(router, "update_model_status", model_name="nope", version=1, status="staging")
    assert "'nope' is not registered" in text and "m" in text
    text = await call_error(router, "update_model_status", model_name="m", version=7, status="staging")
    assert "has no version 7" in text and "1..2" in text
    text = await call_error(router, "get_model_version", model_name="m", version=9)
    assert "has no version 9" in text
    text = await call_error(router, "list_model_versions", model_name="ghost")
    assert "not registered" in text
    text = await call_error(router, "update_model_status", model_name="m", version=1, status="retired")
    assert "status" in text


async def test_list_and_get_versions(any_router: ToolRouter, make_bundle: MakeBundle) -> None:
    await _register(any_router, make_bundle("models/a"), 3)
    await call(any_router, "update_model_status", model_name="m", version=2, status="production")
    listed = await call(any_router, "list_model_versions", model_name="m")
    assert [v["version"] for v in listed["versions"]] == [1, 2, 3]
    assert listed["latest_version"] == 3 and listed["production_version"] == 2 and listed["count"] == 3
    assert listed["versions"][0]["history"] is None
    assert listed["versions"][1]["status"] == "production"
    assert "accuracy" in listed["versions"][0]["metrics"]
    latest = await call(any_router, "get_model_version", model_name="m", version="latest")
    assert latest["version"] == 3
    production = await call(any_router, "get_model_version", model_name="m", version="production")
    assert production["version"] == 2 and production["status"] == "production"
    assert production["versions"][0]["lineage"]["data_fingerprint"] == "sha256:feedbeef"


async def test_rollback_restores_previous_production(any_router: ToolRouter, make_bundle: MakeBundle) -> None:
    await _register(any_router, make_bundle("models/a"), 3)
    for version in (1, 2, 3):
        await call(any_router, "update_model_status", model_name="m", version=version, status="production")
    out = await call(any_router, "rollback_model", model_name="m", reason="v3 drifts")
    assert (out["from_version"], out["to_version"]) == (3, 2)
    assert out["to_previous_status"] == "archived" and out["from_status"] == "archived"
    assert _statuses(any_router) == {1: "archived", 2: "production", 3: "archived"}
    got = await call(any_router, "get_model_version", model_name="m", version=3)
    assert "v3 drifts" in got["versions"][0]["history"][-1]["reason"]
    # Rolling back again undoes the rollback, like `kubectl rollout undo`.
    again = await call(any_router, "rollback_model", model_name="m")
    assert (again["from_version"], again["to_version"]) == (2, 3)


async def test_rollback_to_chosen_version(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 3)
    await call(router, "update_model_status", model_name="m", version=3, status="production")
    out = await call(router, "rollback_model", model_name="m", to_version=1)
    assert (out["from_version"], out["to_version"], out["to_previous_status"]) == (3, 1, "none")
    assert _statuses(router) == {1: "production", 2: "none", 3: "archived"}


async def test_rollback_restores_last_production_when_none_is_live(
    router: ToolRouter, make_local_bundle: MakeBundle
) -> None:
    await _register(router, make_local_bundle("models/a"), 2)
    await call(router, "update_model_status", model_name="m", version=2, status="production")
    await call(router, "update_model_status", model_name="m", version=2, status="archived")
    out = await call(router, "rollback_model", model_name="m")
    assert (out["from_version"], out["to_version"]) == (None, 2)


async def test_rollback_with_nothing_to_roll_back_to(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    await _register(router, make_local_bundle("models/a"), 2)
    text = await call_error(router, "rollback_model", model_name="m")
    assert "nothing to roll back to" in text and "to_version" in text
    await call(router, "update_model_status", model_name="m", version=1, status="production")
    text = await call_error(router, "rollback_model", model_name="m")
    assert "version 1 is the only version" in text
    text = await call_error(router, "rollback_model", model_name="m", to_version=1)
    assert "already in production" in text
    text = await call_error(router, "rollback_model", model_name="m", to_version=5)
    assert "has no version 5" in text
    assert _statuses(router) == {1: "production", 2: "none"}


async def test_pending_change_left_by_a_crash_is_completed(router: ToolRouter, make_local_bundle: MakeBundle) -> None:
    """A writer that committed a promotion to the index and died before updating the version
    documents: readers already see the change, and the next writer finishes it."""
    await _register(router, make_local_bundle("models/a"), 2)
    await call(router, "update_model_status", model_name="m", version=1, status="production")
    storage = router.storage
    index_loc = storage.resolve("registry/m/index.json")
    index = json.loads(storage.read_bytes(index_loc))
    index["production_version"] = 2
    index["pending"] = {
        "op_id": "crashed-op",
        "at": "2026-01-01T00:00:00+00:00",
        "by": "crashed",
        "changes": [
            {"version": 2, "from": "none", "to": "production", "reason": None, "op": "status_change"},
            {"version": 1, "from": "production", "to": "archived", "reason": "demoted", "op": "demotion"},
        ],
    }
    storage.write_bytes(index_loc, json.dumps(index).encode())
    listed = await call(router, "list_model_versions", model_name="m")
    assert [v["status"] for v in listed["versions"]] == ["archived", "production"]
    await call(router, "update_model_status", model_name="m", version=1, status="staging")
    assert _statuses(router) == {1: "staging", 2: "production"}
    index = _index(router)
    assert index["pending"] is None and index["production_version"] == 2
    stored = json.loads(storage.read_bytes(storage.resolve("registry/m/versions/2.json")))
    assert [h["op_id"] for h in stored["history"]].count("crashed-op") == 1
