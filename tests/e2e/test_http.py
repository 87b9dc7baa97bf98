"""The real server over streamable HTTP: the official client against `python -m mcp_server
--transport http` on 127.0.0.1, the request checks (Host, Origin, token, body size, in that
order) as attacks, the health endpoint, jobs and progress, and replicas sharing storage."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pandas as pd
import pytest

from mcp_server.client import connect_http, result_text, server_env
from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer
from tests.conftest import threaded_moto_server
from tests.e2e.client_helpers import call_ok, poll
from tests.e2e.http_server import INITIALIZE, MCP_HEADERS, REPO, TOKEN, http_server
from tests.e2e.test_training import LONG_XGBOOST

pytestmark = pytest.mark.e2e
# A job of about a minute in slow steps: it is still running when a cancel arrives, and its
# history stays short (a long XGBoost run finishes in seconds and records every round).
SLOW_FOREST = {
    "train_data_s3_uri": "data/big.parquet",
    "target_column": "target",
    "hyperparameters": {"n_estimators": 3000, "n_jobs": 1},
}


def write_data(root: Path) -> None:
    import numpy as np

    (root / "data").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)]).assign(target=(x[:, 0] + x[:, 1] > 0).astype(int))
    frame.to_parquet(root / "data" / "big.parquet")
    pd.DataFrame({"x": [1.0, 2.0, None], "y": ["a", "b", "c"]}).to_csv(root / "good.csv", index=False)


def env(root: Path, **extra: str) -> dict[str, str]:
    return {"MLOPS_STORAGE_ROOT": str(root), "MLOPS_HTTP_TOKEN": TOKEN, **extra}


def raw_post(url: str, body: bytes | dict[str, Any], **headers: str) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.post(url, content=content, headers={**MCP_HEADERS, **headers}, timeout=30)


async def test_http_client_lists_the_same_tools_and_calls_them(storage_root: Path, tmp_path: Path) -> None:
    write_data(storage_root)
    expected = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})).router.tool_names
    with http_server(env(storage_root), tmp_path) as server:
        async with connect_http(server.url, TOKEN) as session:
            tools = (await session.list_tools()).tools
            assert [t.name for t in tools] == expected
            out = await call_ok(session, "load_dataset", {"s3_uri": "good.csv", "preview_rows": 2})
            assert (out["rows"], out["columns"]) == (3, 2)
            bad = await session.call_tool("load_dataset", {"s3_uri": "file:///etc/passwd"})
            assert bad.is_error and "outside the storage root" in result_text(bad)
        stderr = server.stderr()
    # telemetry: one Embedded Metric Format line per call, with the tool as dimension
    emf = [doc for doc in map(json.loads, stderr.splitlines()) if "_aws" in doc]
    loads = [doc for doc in emf if doc["Tool"] == "load_dataset"]
    assert [(d["ToolCalls"], d["ToolErrors"]) for d in loads] == [(1, 0), (1, 1)]
    assert loads[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLOpsMCP"
    assert TOKEN not in stderr


async def test_attack_requests_without_or_with_a_wrong_token_get_401(storage_root: Path, tmp_path: Path) -> None:
    with http_server(env(storage_root), tmp_path) as server:
        assert raw_post(server.url, INITIALIZE).status_code == 401
        assert raw_post(server.url, INITIALIZE, Authorization=f"Bearer {TOKEN}x").status_code == 401
        assert raw_post(server.url, INITIALIZE, Authorization=f"Bearer {TOKEN[:-1]}").status_code == 401
        assert raw_post(server.url, INITIALIZE, Authorization=f"Basic {TOKEN}").status_code == 401
        assert raw_post(server.url, INITIALIZE, Authorization=TOKEN).status_code == 401
        refused = raw_post(server.url, INITIALIZE)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert raw_post(server.url, INITIALIZE, Authorization=f"Bearer {TOKEN}").status_code == 200
        with pytest.raises(Exception):  # the official client surfaces the 401 its own way
            async with connect_http(server.url, "wrong-token"):
                pass
        assert TOKEN not in server.stderr()


async def test_attack_dns_rebinding_origin_and_host_are_refused(storage_root: Path, tmp_path: Path) -> None:
    settings = env(storage_root, MLOPS_ALLOWED_ORIGINS="https://app.example.com")
    with http_server(settings, tmp_path) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        # a browser page on another site (or a rebound DNS name) calling the local server
        assert raw_post(server.url, INITIALIZE, Origin="https://evil.example", **auth).status_code == 403
        assert raw_post(server.url, INITIALIZE, Origin="null", **auth).status_code == 403
        assert raw_post(server.url, INITIALIZE, Host="evil.example", **auth).status_code == 421
        assert raw_post(server.url, INITIALIZE, Host=f"evil.example:{server.port}", **auth).status_code == 421
        # the configured origin, the default hosts, and no Origin at all pass
        assert raw_post(server.url, INITIALIZE, Origin="https://app.example.com", **auth).status_code == 200
        assert raw_post(server.url, INITIALIZE, Host=f"localhost:{server.port}", **auth).status_code == 200
        assert raw_post(server.url, INITIALIZE, **auth).status_code == 200


async def test_attack_oversized_body_gets_413(storage_root: Path, tmp_path: Path) -> None:
    with http_server(env(storage_root, MLOPS_HTTP_MAX_BODY_MB="1"), tmp_path) as server:
        big = {**INITIALIZE, "params": {**INITIALIZE["params"], "pad": "x" * (1024 * 1024 + 10)}}
        assert raw_post(server.url, big, Authorization=f"Bearer {TOKEN}").status_code == 413
        # a chunked body (no Content-Length) is counted as it arrives
        chunks = (b"x" * 65536 for _ in range(20))
        streamed = httpx2.post(
            server.url, content=chunks, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        assert streamed.status_code == 413
        async with connect_http(server.url, TOKEN) as session:  # normal traffic still works
            assert (await session.list_tools()).tools


async def test_checks_run_in_order_host_origin_token_size(storage_root: Path, tmp_path: Path) -> None:
    with http_server(env(storage_root, MLOPS_HTTP_MAX_BODY_MB="1"), tmp_path) as server:
        big = b"x" * (2 * 1024 * 1024)
        assert raw_post(server.url, big, Host="evil.example", Origin="https://evil.example").status_code == 421
        assert raw_post(server.url, big, Origin="https://evil.example").status_code == 403
        assert raw_post(server.url, big).status_code == 401  # no token: nothing about the body is revealed
        assert raw_post(server.url, big, Authorization=f"Bearer {TOKEN}").status_code == 413


async def test_health_answers_without_auth_and_reveals_nothing(storage_root: Path, tmp_path: Path) -> None:
    with http_server(env(storage_root, MLOPS_S3_BUCKET="secret-bucket-name"), tmp_path) as server:
        health = httpx2.get(f"{server.base}/healthz", timeout=10)
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok" and body["tools"] > 0
        for secret in (TOKEN, "secret-bucket-name", str(storage_root)):
            assert secret not in health.text
        assert httpx2.get(f"{server.base}/healthz", headers={"Host": "evil.example"}, timeout=10).status_code == 200
        raw_post(server.url, INITIALIZE)  # an access line that is logged
        time.sleep(0.5)
        access = [line for line in server.stderr().splitlines() if '"uvicorn.access"' in line]
        assert access and not any("/healthz" in line for line in access)  # probes are not logged


def test_refuses_to_serve_a_public_address_without_a_token(tmp_path: Path) -> None:
    with threaded_moto_server() as endpoint:  # Secrets Manager answers: no such secret
        proc = subprocess.run(
            [sys.executable, "-m", "mcp_server", "--transport", "http", "--host", "0.0.0.0", "--port", "0"],
            env=server_env({"MLOPS_STORAGE_ROOT": str(tmp_path), "AWS_ENDPOINT_URL": endpoint, "MLOPS_HTTP_TOKEN": ""}),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert proc.returncode == 2
    assert "refusing to serve HTTP on 0.0.0.0 without a token" in proc.stderr


def test_attack_short_token_stops_the_server(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mcp_server", "--transport", "http", "--port", "0"],
        env=server_env({"MLOPS_STORAGE_ROOT": str(tmp_path), "MLOPS_HTTP_TOKEN": "letmein"}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 2
    assert "shorter than 16 characters" in proc.stderr and "letmein" not in proc.stderr


async def test_token_from_secrets_manager(storage_root: Path, tmp_path: Path) -> None:
    import boto3

    with threaded_moto_server() as endpoint:
        client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        client.create_secret(Name="mlops/http-token", SecretString="from-secrets-manager-42")
        settings = {"MLOPS_STORAGE_ROOT": str(storage_root), "AWS_ENDPOINT_URL": endpoint}
        with http_server(settings, tmp_path) as server:
            assert raw_post(server.url, INITIALIZE).status_code == 401
            async with connect_http(server.url, "from-secrets-manager-42") as session:
                assert (await session.list_tools()).tools
            assert "from-secrets-manager-42" not in server.stderr()


async def test_progress_and_job_handle_over_http(storage_root: Path, tmp_path: Path) -> None:
    write_data(storage_root)
    messages: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    small = {**LONG_XGBOOST, "hyperparameters": {"n_estimators": 60}, "model_output_s3_uri": "models/p"}
    with http_server(env(storage_root), tmp_path) as server:
        async with connect_http(server.url, TOKEN) as session:
            out = await call_ok(session, "train_xgboost", small, progress_callback=on_progress)
            assert out["status"] == "succeeded"
            assert messages and all(m.startswith(out["job_id"]) for m in messages)
            started = await call_ok(
                session, "train_xgboost", {**small, "model_output_s3_uri": "models/q", "wait": False}
            )
            done = await poll(session, started["job_id"], {"succeeded", "failed", "cancelled"}, timeout=120)
            assert done["status"] == "succeeded", done
    assert (storage_root / "models/q/metadata.json").exists()


async def test_explicit_cancel_over_http_stops_the_job(storage_root: Path, tmp_path: Path) -> None:
    write_data(storage_root)
    job_ids: list[str] = []
    running = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if message and "trees" in message:
            job_ids.append(message.split(":")[0])
            running.set()

    with http_server(env(storage_root), tmp_path) as server:
        async with connect_http(server.url, TOKEN) as session:
            async with anyio.create_task_group() as group:
                args = {**SLOW_FOREST, "model_output_s3_uri": "models/c"}
                group.start_soon(lambda: session.call_tool("train_random_forest", args, progress_callback=on_progress))
                with anyio.fail_after(60):
                    await running.wait()
                group.cancel_scope.cancel()  # the client sends notifications/cancelled
            status = await poll(session, job_ids[0], {"cancelled", "succeeded", "failed"}, timeout=30)
    assert status["status"] == "cancelled", status
    assert not (storage_root / "models/c/metadata.json").exists()


def _call_then_disconnect(url: str, session_headers: dict[str, str], arguments: dict[str, Any]) -> str:
    """POST a tools/call with a progress token, read the SSE stream up to the first progress
    notification (which names the job), then drop the connection without any cancel."""
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "train_xgboost", "arguments": arguments, "_meta": {"progressToken": "p1"}},
    }
    headers = {**MCP_HEADERS, **session_headers}
    with (
        httpx2.Client(timeout=60) as client,
        client.stream("POST", url, content=json.dumps(call).encode(), headers=headers) as response,
    ):
        assert response.status_code == 200
        seen = []
        for line in response.iter_lines():
            seen.append(line)
            if line.startswith("data:"):
                message = json.loads(line[5:])
                text = message.get("params", {}).get("message") or ""
                if message.get("method") == "notifications/progress" and "round" in text:
                    return str(text.split(":")[0])
    raise AssertionError(f"no progress notification arrived: {seen}")


@pytest.mark.parametrize("mode", ["stateful", "stateless"])
async def test_client_that_disconnects_detaches_from_its_job(storage_root: Path, tmp_path: Path, mode: str) -> None:
    write_data(storage_root)
    args = ("--stateless",) if mode == "stateless" else ()
    with http_server(env(storage_root), tmp_path, *args) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        session_headers = dict(auth)
        if mode == "stateful":
            opened = raw_post(server.url, INITIALIZE, **auth)
            session_headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
            initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            assert raw_post(server.url, initialized, **session_headers).status_code == 202
        # long enough (seconds) for per-round progress to reach the client before it disconnects
        rounds = {**LONG_XGBOOST["hyperparameters"], "n_estimators": 2000}
        moderate = {**LONG_XGBOOST, "hyperparameters": rounds, "model_output_s3_uri": "m/d"}
        job_id = _call_then_disconnect(server.url, session_headers, moderate)
        await anyio.sleep(1.0)  # the server has noticed the dropped stream by now
        async with connect_http(server.url, TOKEN) as session:
            status = await poll(session, job_id, {"succeeded", "failed", "cancelled"}, timeout=120)
        assert status["status"] == "succeeded", status
    assert (storage_root / "m/d/metadata.json").exists()


async def test_two_servers_sharing_storage_answer_each_others_job_ids(tmp_path: Path) -> None:
    import boto3

    data = tmp_path / "seed"
    data.mkdir()
    write_data(data)
    with threaded_moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket="replicas")
        s3.upload_file(str(data / "data" / "big.parquet"), "replicas", "data/big.parquet")
        shared = {"MLOPS_S3_BUCKET": "replicas", "AWS_ENDPOINT_URL": endpoint, "MLOPS_HTTP_TOKEN": TOKEN}
        roots = [tmp_path / "a", tmp_path / "b"]
        for root in roots:
            root.mkdir()
        with (
            http_server({**shared, "MLOPS_STORAGE_ROOT": str(roots[0])}, tmp_path, "--stateless", name="a") as a,
            http_server({**shared, "MLOPS_STORAGE_ROOT": str(roots[1])}, tmp_path, "--stateless", name="b") as b,
        ):
            args = {**LONG_XGBOOST, "hyperparameters": {"n_estimators": 300, "n_jobs": 1}, "wait": False}
            async with connect_http(a.url, TOKEN) as on_a:
                started = await call_ok(on_a, "train_xgboost", {**args, "model_output_s3_uri": "models/r"})
            async with connect_http(b.url, TOKEN) as on_b:
                seen = await call_ok(on_b, "get_training_metrics", {"job_id": started["job_id"]})
                assert seen["status"] in ("queued", "running", "succeeded"), seen  # not "lost"
                done = await poll(on_b, started["job_id"], {"succeeded", "failed", "cancelled"}, timeout=120)
                assert done["status"] == "succeeded", done
                ended = await call_ok(on_b, "cancel_training_job", {"job_id": started["job_id"]})
                assert "already ended" in ended["message"]
            # a cancel sent to the replica that does not run the job still stops it
            async with connect_http(a.url, TOKEN) as on_a:
                forest = {**SLOW_FOREST, "model_output_s3_uri": "m/x", "wait": False}
                long = await call_ok(on_a, "train_random_forest", forest)
            async with connect_http(b.url, TOKEN) as on_b:
                await poll(on_b, long["job_id"], {"running"})
                requested = await call_ok(on_b, "cancel_training_job", {"job_id": long["job_id"]})
                assert "requested" in requested["message"]
                stopped = await poll(on_b, long["job_id"], {"cancelled", "succeeded", "failed"}, timeout=60)
                assert stopped["status"] == "cancelled", stopped
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="replicas")["Contents"]}
    assert f"jobs/{started['job_id']}.json" in keys and "models/r/metadata.json" in keys
    assert "m/x/metadata.json" not in keys


async def test_server_ships_logs_and_metrics_to_cloudwatch(storage_root: Path, tmp_path: Path) -> None:
    import boto3

    write_data(storage_root)
    with threaded_moto_server() as endpoint:
        logs = boto3.client("logs", endpoint_url=endpoint, region_name="us-east-1")
        logs.create_log_group(logGroupName="/aws/mcp/unified-mlops-server")
        cloudwatch = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")
        settings = env(
            storage_root,
            AWS_ENDPOINT_URL=endpoint,
            CLOUDWATCH_LOG_GROUP="/aws/mcp/unified-mlops-server",
            CLOUDWATCH_LOG_STREAM="replica-1",
            MLOPS_METRICS="cloudwatch",
        )
        with http_server(settings, tmp_path) as server:
            async with connect_http(server.url, TOKEN) as session:
                await call_ok(session, "load_dataset", {"s3_uri": "good.csv"})
            deadline = time.monotonic() + 30
            while True:
                try:
                    events = logs.get_log_events(
                        logGroupName="/aws/mcp/unified-mlops-server", logStreamName="replica-1", startFromHead=True
                    )["events"]
                except logs.exceptions.ResourceNotFoundException:  # the stream is created with the first batch
                    events = []
                metrics = cloudwatch.list_metrics(Namespace="MLOpsMCP")["Metrics"]
                shipped = [json.loads(e["message"]) for e in events]
                if (any(m.get("msg") == "tool done" for m in shipped) and metrics) or time.monotonic() > deadline:
                    break
                await anyio.sleep(0.5)
    assert any(m.get("msg") == "tool done" and m.get("tool") == "load_dataset" for m in shipped), shipped
    assert {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in metrics} >= {("ToolCalls", "load_dataset")}
    assert TOKEN not in json.dumps(shipped)
