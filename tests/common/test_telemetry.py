"""Telemetry: per-tool metrics as EMF log lines or PutMetricData, and log lines shipped to
CloudWatch Logs from a background thread (moto stands in for CloudWatch)."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.common.logger import JsonFormatter, get_logger
from mcp_server.common.telemetry import (
    NAMESPACE,
    CloudWatchLogsHandler,
    Telemetry,
    _Batcher,
    default_log_stream,
    ship_logs_to_cloudwatch,
)
from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the stderr handler would print, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_emf_line_is_a_valid_embedded_metric_document(captured: io.StringIO, storage_root: Path) -> None:
    telemetry = Telemetry(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # metrics do not depend on LOG_LEVEL
    try:
        telemetry.record("train_xgboost", 1234.5678, error=True)
    finally:
        root.setLevel(level)
    (doc,) = [json.loads(line) for line in captured.getvalue().splitlines()]
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE == "MLOpsMCP"
    assert directive["Dimensions"] == [["Tool"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        "ToolCalls": "Count",
        "ToolErrors": "Count",
        "ToolDuration": "Milliseconds",
    }
    assert abs(doc["_aws"]["Timestamp"] - time.time() * 1000) < 60_000
    assert (doc["Tool"], doc["ToolCalls"], doc["ToolErrors"], doc["ToolDuration"]) == ("train_xgboost", 1, 1, 1234.568)
    assert {"ts", "level", "logger", "msg"} <= set(doc)  # still one of our log lines


def test_metrics_off_writes_nothing(captured: io.StringIO, storage_root: Path) -> None:
    Telemetry(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_METRICS": "off"})).record("x", 1, False)
    assert captured.getvalue() == ""


async def test_server_records_each_call_with_only_known_tool_names(captured: io.StringIO, storage_root: Path) -> None:
    import mcp_types as types

    (storage_root / "d.csv").write_text("a,b\n1,2\n")
    server = UnifiedMLOpsMCPServer(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))

    class Session:
        async def report_progress(self, *args: Any) -> None:
            pass

    class Ctx:
        session = Session()

    for name, arguments in (("load_dataset", {"s3_uri": "d.csv"}), ("load_dataset", {})):
        await server._call_tool(Ctx(), types.CallToolRequestParams(name=name, arguments=arguments))
    with pytest.raises(MCPError):  # an unknown tool is a JSON-RPC error, and still counted
        await server._call_tool(Ctx(), types.CallToolRequestParams(name="no_such_tool_1234", arguments={}))
    docs = [json.loads(line) for line in captured.getvalue().splitlines()]
    emf = [(d["Tool"], d["ToolErrors"]) for d in docs if "_aws" in d]
    assert emf == [("load_dataset", 0), ("load_dataset", 1), ("unknown", 1)]


def test_put_metric_data_mode_publishes_per_tool_metrics(aws: Any, storage_root: Path) -> None:
    import boto3

    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_METRICS": "cloudwatch"})
    telemetry = Telemetry(config)
    telemetry.record("evaluate_classifier", 20.0, error=False)
    telemetry.record("evaluate_classifier", 40.0, error=True)
    telemetry.record("train_pca", 5.0, error=False)
    assert telemetry.flush(10)
    cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
    listed = cloudwatch.list_metrics(Namespace="MLOpsMCP")["Metrics"]
    assert {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed} == {
        (name, tool)
        for name in ("ToolCalls", "ToolErrors", "ToolDuration")
        for tool in ("evaluate_classifier", "train_pca")
    }

    def stat(name: str, statistic: str) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="MLOpsMCP",
            MetricName=name,
            Dimensions=[{"Name": "Tool", "Value": "evaluate_classifier"}],
            StartTime=time.time() - 600,
            EndTime=time.time() + 600,
            Period=3600,
            Statistics=[statistic],
        )["Datapoints"]
        return float(sum(p[statistic] for p in points))

    assert stat("ToolCalls", "Sum") == 2
    assert stat("ToolErrors", "Sum") == 1
    assert stat("ToolDuration", "Maximum") == 40.0


@pytest.fixture
def log_group(aws: Any) -> str:
    import boto3

    boto3.client("logs", region_name="us-east-1").create_log_group(logGroupName="/aws/mcp/test")
    return "/aws/mcp/test"


def _events(group: str, stream: str) -> list[dict[str, Any]]:
    import boto3

    logs = boto3.client("logs", region_name="us-east-1")
    return list(logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"])


def test_log_lines_are_shipped_to_cloudwatch_logs_masked(log_group: str, storage_root: Path) -> None:
    config = Config.from_env(
        {"MLOPS_STORAGE_ROOT": str(storage_root), "CLOUDWATCH_LOG_GROUP": log_group, "CLOUDWATCH_LOG_STREAM": "s1"}
    )
    handler = ship_logs_to_cloudwatch(config)
    assert handler is not None
    try:
        log = get_logger("mcp_server.test")
        log.setLevel(logging.INFO)
        for i in range(25):
            log.info("line %d", i, extra={"fields": {"github_token": "ghp_" + "a" * 36}})
        handler.flush(10)
        events = _events(log_group, "s1")
        messages = [json.loads(e["message"]) for e in events]
        assert [m["msg"] for m in messages if m["logger"] == "mcp_server.test"] == [f"line {i}" for i in range(25)]
        assert all(m["github_token"] == "***" for m in messages if m["logger"] == "mcp_server.test")
        assert "ghp_" not in json.dumps(events)
        # installing again replaces the handler instead of shipping every line twice
        second = ship_logs_to_cloudwatch(config)
        assert [h for h in logging.getLogger().handlers if isinstance(h, CloudWatchLogsHandler)] == [second]
    finally:
        for h in [h for h in logging.getLogger().handlers if isinstance(h, CloudWatchLogsHandler)]:
            logging.getLogger().removeHandler(h)


def test_default_log_stream_is_host_and_pid(log_group: str, storage_root: Path) -> None:
    import os
    import socket

    assert default_log_stream() == f"{socket.gethostname()}-{os.getpid()}"
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})
    handler = CloudWatchLogsHandler(config, log_group)
    handler.emit(logging.LogRecord("x", logging.WARNING, __file__, 1, "hello", None, None))
    handler.flush(10)
    assert json.loads(_events(log_group, default_log_stream())[0]["message"])["msg"] == "hello"


def test_a_stuck_cloudwatch_never_blocks_the_caller() -> None:
    release = threading.Event()
    sent: list[int] = []

    def slow_send(batch: list[Any]) -> None:
        release.wait(30)
        sent.extend(batch)

    batcher = _Batcher("test-stuck", slow_send, max_batch=10, interval=0.01, max_queue=50)
    started = time.monotonic()
    for i in range(500):
        batcher.put(i)
    assert time.monotonic() - started < 1.0  # 500 puts while the sender is stuck: no waiting
    assert batcher.dropped >= 500 - 50 - 10  # the queue is bounded: the excess is dropped and counted
    release.set()
    assert batcher.flush(10)
    assert len(sent) == 500 - batcher.dropped


def test_a_failing_cloudwatch_does_not_stop_later_batches() -> None:
    calls: list[list[Any]] = []

    def flaky(batch: list[Any]) -> None:
        calls.append(batch)
        if len(calls) == 1:
            raise RuntimeError("throttled")

    batcher = _Batcher("test-flaky", flaky, max_batch=5, interval=0.01)
    batcher.put(1)
    assert batcher.flush(5)
    batcher.put(2)
    assert batcher.flush(5)
    assert calls == [[1], [2]]
