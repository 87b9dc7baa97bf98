"""The Lambda handler, called in-process with the event shapes a function URL (payload 2.0) and
an API Gateway REST API (payload 1.0) deliver; the Lambda runtime itself is not here."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config
from mcp_server.lambda_handler import LambdaHandler, build_handler

TOKEN = "lambda-token-0123456789"
HOST = "abcdefghij.lambda-url.eu-west-1.on.aws"


class FakeContext:
    """The attributes of the Lambda context object that the handler and Mangum read."""

    function_name = "unified-mlops"
    aws_request_id = "8f5a3c1e-0000-4000-8000-000000000000"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:unified-mlops"
    memory_limit_in_mb = 3008

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def function_url_event(body: Any, method: str = "POST", path: str = "/mcp", **headers: str) -> dict[str, Any]:
    """A function URL request, as recorded in the Lambda developer guide (payload format 2.0)."""
    raw = json.dumps(body) if not isinstance(body, str | bytes) else body
    encoded = isinstance(raw, bytes)
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "host": HOST,
            "x-forwarded-proto": "https",
            "x-forwarded-port": "443",
            "x-forwarded-for": "203.0.113.7",
            "x-amzn-trace-id": "Root=1-5e1b3f2a-0123456789abcdef01234567",
            "user-agent": "mcp-client",
            **{k.lower().replace("_", "-"): v for k, v in headers.items()},
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefghij",
            "domainName": HOST,
            "domainPrefix": "abcdefghij",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "mcp-client",
            },
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Dec/2026:10:00:00 +0000",
            "timeEpoch": 1796119200000,
        },
        "body": base64.b64encode(raw).decode() if encoded else raw,
        "isBase64Encoded": encoded,
    }


def rest_api_event(body: Any, **headers: str) -> dict[str, Any]:
    """An API Gateway REST API proxy request (payload format 1.0)."""
    all_headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Host": "abc123.execute-api.eu-west-1.amazonaws.com",
        **headers,
    }
    return {
        "resource": "/{proxy+}",
        "path": "/mcp",
        "httpMethod": "POST",
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": "mcp"},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": "POST",
            "path": "/prod/mcp",
            "stage": "prod",
            "accountId": "111122223333",
            "apiId": "abc123",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "mcp-client"},
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def rpc(method: str, params: dict[str, Any] | None = None, id_: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": method, **({"params": params} if params is not None else {})}


def answer(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200, response
    body = base64.b64decode(response["body"]) if response.get("isBase64Encoded") else response["body"]
    return dict(json.loads(body))


AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def lambda_handler(storage_root: Path) -> LambdaHandler:
    x = np.random.default_rng(0).normal(size=(3000, 8))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)]).assign(target=(x[:, 0] > 0).astype(int))
    (storage_root / "data").mkdir()
    frame.to_parquet(storage_root / "data" / "big.parquet")
    (storage_root / "d.csv").write_text("a,b\n1,x\n2,y\n")
    return build_handler(
        Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_HTTP_TOKEN": TOKEN, "LOG_LEVEL": "WARNING"})
    )


def call_tool(handler: LambdaHandler, name: str, arguments: dict[str, Any], ms: int = 60_000) -> dict[str, Any]:
    # With a progress token, as clients send it: a JSON answer has nowhere to put progress, which
    # must not fail the call.
    params = {"name": name, "arguments": arguments, "_meta": {"progressToken": "p"}}
    event = function_url_event(rpc("tools/call", params), **AUTH)
    return answer(handler(event, FakeContext(ms)))["result"]


def test_function_url_initialize_list_and_call(lambda_handler: LambdaHandler) -> None:
    init = rpc(
        "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    )
    info = answer(lambda_handler(function_url_event(init, **AUTH), FakeContext()))
    assert info["result"]["serverInfo"]["name"] == "unified-mlops"
    tools = answer(lambda_handler(function_url_event(rpc("tools/list", id_=2), **AUTH), FakeContext()))
    assert "load_dataset" in {t["name"] for t in tools["result"]["tools"]}
    result = call_tool(lambda_handler, "load_dataset", {"s3_uri": "d.csv"})
    assert not result.get("isError")
    assert (result["structuredContent"]["rows"], result["structuredContent"]["columns"]) == (2, 2)


def test_rest_api_event_reaches_the_same_tools(lambda_handler: LambdaHandler) -> None:
    response = lambda_handler(rest_api_event(rpc("tools/list"), Authorization=f"Bearer {TOKEN}"), FakeContext())
    assert "train_xgboost" in {t["name"] for t in answer(response)["result"]["tools"]}


def test_attack_lambda_requests_without_token_bad_origin_or_oversized(lambda_handler: LambdaHandler) -> None:
    listing = rpc("tools/list")
    assert lambda_handler(function_url_event(listing), FakeContext())["statusCode"] == 401
    wrong = function_url_event(listing, authorization=f"Bearer {TOKEN}0")
    assert lambda_handler(wrong, FakeContext())["statusCode"] == 401
    evil = function_url_event(listing, origin="https://evil.example", **AUTH)
    assert lambda_handler(evil, FakeContext())["statusCode"] == 403
    big = function_url_event(b"x" * (4 * 1024 * 1024 + 1), **AUTH)
    assert lambda_handler(big, FakeContext())["statusCode"] == 413
    assert lambda_handler(rest_api_event(listing), FakeContext())["statusCode"] == 401


def test_lambda_health_answers_without_auth(lambda_handler: LambdaHandler) -> None:
    response = lambda_handler(function_url_event("", method="GET", path="/healthz"), FakeContext())
    assert answer(response)["status"] == "ok"
    assert TOKEN not in json.dumps(response)


def test_lambda_refuses_wait_false_and_points_at_ecs(lambda_handler: LambdaHandler, storage_root: Path) -> None:
    args = {"train_data_s3_uri": "data/big.parquet", "target_column": "target", "model_output_s3_uri": "m/a"}
    result = call_tool(lambda_handler, "train_random_forest", {**args, "wait": False})
    assert result["isError"] and "ECS" in result["content"][0]["text"]
    assert not (storage_root / "m/a").exists()


def test_lambda_job_runs_within_the_invocation(lambda_handler: LambdaHandler, storage_root: Path) -> None:
    args = {"train_data_s3_uri": "data/big.parquet", "target_column": "target", "model_output_s3_uri": "m/ok"}
    result = call_tool(lambda_handler, "train_xgboost", {**args, "hyperparameters": {"n_estimators": 20}})
    assert not result.get("isError"), result
    assert result["structuredContent"]["status"] == "succeeded"
    assert (storage_root / "m/ok/metadata.json").exists()


def test_lambda_job_that_cannot_finish_in_time_is_stopped(lambda_handler: LambdaHandler, storage_root: Path) -> None:
    long = {"n_estimators": 5000, "max_depth": 8, "learning_rate": 0.01, "n_jobs": 1}
    args = {"train_data_s3_uri": "data/big.parquet", "target_column": "target", "model_output_s3_uri": "m/long"}
    # 5.3 s left, 5 s of which are kept to answer: the job gets 0.3 s, too little for 5000 rounds
    result = call_tool(lambda_handler, "train_xgboost", {**args, "hyperparameters": long}, ms=5_300)
    text = result["content"][0]["text"]
    assert result["isError"] and "Lambda invocation" in text and "ECS" in text
    assert not (storage_root / "m/long/metadata.json").exists()


def test_lambda_will_not_start_without_a_token(aws: Any, storage_root: Path) -> None:
    with pytest.raises(ConfigError, match="MLOPS_HTTP_TOKEN"):
        build_handler(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
