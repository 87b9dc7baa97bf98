"""Many clients at once, from threads of one server and from several server processes sharing
storage: versions stay 1..N with no gaps or duplicates, and exactly one version is production."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mcp_server.capabilities.model_registry.store import RegistryStore
from mcp_server.common.exceptions import ConflictError
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.helpers import call
from tests.model_registry.conftest import MotoS3
from tests.model_registry.helpers import bundle_writer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["local", "moto-server"])
def shared_config(request: pytest.FixtureRequest, storage_root: Path) -> Config:
    """Storage several processes can share: a local root, or a bucket behind a moto HTTP server."""
    if request.param == "local":
        return Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    request.getfixturevalue("atomic_conditional_puts")
    moto_s3: MotoS3 = request.getfixturevalue("moto_s3")
    return moto_s3.config(storage_root)


def _config_env(config: Config) -> dict[str, str]:
    env = {"MLOPS_STORAGE_ROOT": str(config.storage_root), "LOG_LEVEL": "WARNING"}
    if config.s3_bucket:
        env["MLOPS_S3_BUCKET"] = config.s3_bucket
    if config.aws_endpoint_url:
        env["AWS_ENDPOINT_URL"] = config.aws_endpoint_url
    return env


def _stored_versions(storage: S3Utils, name: str) -> list[dict[str, Any]]:
    docs, _ = RegistryStore(storage).list_versions(name)
    return docs


def _assert_one_production(storage: S3Utils, name: str, versions: set[int], promotions: list[dict[str, Any]]) -> None:
    docs = _stored_versions(storage, name)
    production = [d["version"] for d in docs if d["status"] == "production"]
    assert len(production) == 1, f"production versions: {production}"
    index = RegistryStore(storage).read_index(name)
    assert index is not None and index["pending"] is None
    assert index["production_version"] == production[0]
    # The promotions happened one after another: each demoted the one before it, exactly once.
    demoted = [p["demoted"]["version"] for p in promotions if p["demoted"]]
    assert len(demoted) == len(set(demoted)) == len(versions) - 1
    assert set(demoted) | set(production) == versions
    for doc in docs:
        if doc["version"] in versions:
            steps = [(h["from"], h["to"]) for h in doc["history"]]
            assert all(a[1] == b[0] for a, b in itertools.pairwise(steps)), steps
            assert doc["status"] == ("production" if doc["version"] == production[0] else "archived")


async def test_moto_server_enforces_conditional_writes(moto_s3: MotoS3, storage_root: Path) -> None:
    storage = S3Utils(moto_s3.config(storage_root))
    loc = storage.resolve("registry/probe.json")
    tag = storage.create_only(loc, b"one")
    with pytest.raises(ConflictError):
        storage.create_only(loc, b"two")
    new_tag = storage.write_if_match(loc, b"three", tag)
    with pytest.raises(ConflictError):
        storage.write_if_match(loc, b"four", tag)  # stale tag: someone wrote in between
    assert storage.read_versioned(loc) == (b"three", new_tag)


async def test_parallel_registrations_get_versions_one_to_n(shared_config: Config, tiny_models: dict[str, Any]) -> None:
    router = make_router(shared_config)
    uri = bundle_writer(router.storage, tiny_models)("models/a")
    results = await asyncio.gather(
        *(call(router, "register_model", model_name="race", model_s3_uri=uri, tags={"i": str(i)}) for i in range(20))
    )
    assert sorted(r["version"] for r in results) == list(range(1, 21))
    docs = _stored_versions(router.storage, "race")
    assert [d["version"] for d in docs] == list(range(1, 21))
    # Every caller's version holds that caller's registration (nothing overwritten or lost).
    by_version = {d["version"]: d["tags"]["i"] for d in docs}
    assert {r["version"]: r["tags"]["i"] for r in results} == by_version
    index = RegistryStore(router.storage).read_index("race")
    assert index is not None and index["latest_version"] == 20


async def test_parallel_promotions_leave_exactly_one_production(
    shared_config: Config, tiny_models: dict[str, Any]
) -> None:
    router = make_router(shared_config)
    uri = bundle_writer(router.storage, tiny_models)("models/a")
    for _ in range(10):
        await call(router, "register_model", model_name="prom", model_s3_uri=uri)
    promotions = await asyncio.gather(
        *(call(router, "update_model_status", model_name="prom", version=v, status="production") for v in range(1, 11))
    )
    _assert_one_production(router.storage, "prom", set(range(1, 11)), promotions)


async def test_readers_never_see_two_production_versions(router: ToolRouter, tiny_models: dict[str, Any]) -> None:
    uri = bundle_writer(router.storage, tiny_models)("models/a")
    for _ in range(6):
        await call(router, "register_model", model_name="seen", model_s3_uri=uri)
    store = RegistryStore(router.storage)
    done = False
    seen: list[list[int]] = []

    def read_until_done() -> None:
        while not done:
            docs, summary = store.list_versions("seen")
            production = [d["version"] for d in docs if d["status"] == "production"]
            seen.append(production)
            assert production == ([summary["production_version"]] if summary["production_version"] else [])

    reader = asyncio.create_task(asyncio.to_thread(read_until_done))
    for _ in range(2):
        await asyncio.gather(
            *(
                call(router, "update_model_status", model_name="seen", version=v, status="production")
                for v in range(1, 7)
            )
        )
    done = True
    await reader
    assert len(seen) > 5 and all(len(p) <= 1 for p in seen)


async def test_registrations_racing_promotions(router: ToolRouter, tiny_models: dict[str, Any]) -> None:
    uri = bundle_writer(router.storage, tiny_models)("models/a")
    for _ in range(4):
        await call(router, "register_model", model_name="mix", model_s3_uri=uri)
    await asyncio.gather(
        *(call(router, "register_model", model_name="mix", model_s3_uri=uri) for _ in range(8)),
        *(call(router, "update_model_status", model_name="mix", version=v, status="production") for v in range(1, 5)),
        call(router, "update_model_status", model_name="mix", version=1, status="archived"),
    )
    docs = _stored_versions(router.storage, "mix")
    assert [d["version"] for d in docs] == list(range(1, 13))
    production = [d["version"] for d in docs if d["status"] == "production"]
    assert len(production) <= 1
    index = RegistryStore(router.storage).read_index("mix")
    assert index is not None and index["production_version"] == (production[0] if production else None)
    assert index["latest_version"] == 12


def _run_workers(config: Config, model: str, uri: str, count: int, processes: int) -> list[dict[str, Any]]:
    env = {**os.environ, **_config_env(config)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.model_registry.registry_worker", model, uri, str(count)],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for worker in workers:  # a handshake, not a clock: each has imported the server and built its router
        assert worker.stdout is not None
        line = worker.stdout.readline()
        assert line.strip() == "ready", (line, worker.stderr.read() if worker.stderr else "")
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=90)
        assert worker.returncode == 0, err[-2000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


async def test_two_server_processes_share_the_registry(shared_config: Config, tiny_models: dict[str, Any]) -> None:
    storage = S3Utils(shared_config)
    uri = bundle_writer(storage, tiny_models)("models/a")
    outputs = await asyncio.to_thread(_run_workers, shared_config, "multi", uri, 8, 2)
    got = [v for out in outputs for v in out["versions"]]
    assert sorted(got) == list(range(1, 17)), got
    assert [d["version"] for d in _stored_versions(storage, "multi")] == list(range(1, 17))
    promotions = [p for out in outputs for p in out["promotions"]]
    _assert_one_production(storage, "multi", set(range(1, 17)), promotions)
