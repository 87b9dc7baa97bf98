"""Operational telemetry: per-tool CloudWatch metrics, and log lines shipped to CloudWatch Logs.

Metrics (`common/metrics.py` holds the ML scores; this is about the server): every tool call
counts `ToolCalls`, `ToolErrors` (0 or 1) and `ToolDuration` (milliseconds) with the dimension
`Tool`, in the namespace `MLOpsMCP`. `MLOPS_METRICS` picks the sink:
- `emf` (default): one log line per call that is also a CloudWatch Embedded Metric Format document
  (the usual `ts`/`level`/`logger`/`msg` plus `_aws` and the values). ECS (the awslogs driver) and
  Lambda send stderr to CloudWatch Logs, which turns those lines into metrics with no API call and
  no extra permission. Its logger is pinned at INFO, so `LOG_LEVEL=WARNING` keeps the metrics.
- `cloudwatch`: `PutMetricData`, batched from a background thread.
- `off`: nothing.

Logs: when `CLOUDWATCH_LOG_GROUP` is set, every log record is also shipped with batched
`PutLogEvents` to the stream `CLOUDWATCH_LOG_STREAM` (default `<host name>-<pid>`), for runs
where stderr does not reach CloudWatch by itself (a plain EC2 host, a desktop).

Both AWS sinks go through `_Batcher`: a bounded queue drained by one daemon thread, so a tool
never waits on CloudWatch; when the queue is full the newest items are dropped (and counted),
never blocking the caller. boto3 is imported in that thread only, keeping start-up light.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp_server.common.logger import JsonFormatter, get_logger

if TYPE_CHECKING:
    from mcp_server.config import Config

_log = get_logger(__name__)
_emf_log = get_logger("mcp_server.metrics.emf")
_emf_log.setLevel(logging.INFO)

NAMESPACE = "MLOpsMCP"
_METRICS = (("ToolCalls", "Count"), ("ToolErrors", "Count"), ("ToolDuration", "Milliseconds"))
# PutLogEvents takes at most 10 000 events and 1 MiB (each event counting 26 bytes more) per call;
# a single event at most 256 KiB. PutMetricData takes 1000 datums per call.
_LOG_BATCH_EVENTS = 1000
_LOG_BATCH_BYTES = 900 * 1024
_LOG_EVENT_MAX_BYTES = 200 * 1024
_METRIC_BATCH = 150  # datums: three per tool call


class _Batcher:
    """A bounded queue drained by a daemon thread that hands batches to `send`."""

    def __init__(
        self,
        name: str,
        send: Callable[[list[Any]], None],
        *,
        max_batch: int,
        interval: float = 2.0,
        max_queue: int = 10_000,
        size: Callable[[Any], int] | None = None,
        max_bytes: int | None = None,
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._interval = interval
        self._size = size  # with max_bytes: a batch is sent once its items add up to that many bytes
        self._max_bytes = max_bytes
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._idle = threading.Condition()
        self._pending = 0  # items queued or in the batch being sent
        self.dropped = 0
        self.thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self.thread.start()

    def put(self, item: Any) -> None:
        """Queue `item`; never blocks (a full queue drops it)."""
        with self._idle:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.dropped += 1
                return
            self._pending += 1

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far has been sent (or given up on)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _drain(self) -> None:
        while True:
            batch = [self._queue.get()]
            nbytes = self._size(batch[0]) if self._size else 0
            deadline = time.monotonic() + self._interval
            while len(batch) < self._max_batch:
                if self._size and self._max_bytes and nbytes >= self._max_bytes:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=min(remaining, 0.05)))
                    nbytes += self._size(batch[-1]) if self._size else 0
                except queue.Empty:
                    with self._idle:
                        if self._queue.empty() and self._pending == len(batch):
                            break  # nothing more is coming right now: send without waiting out the interval
            try:
                self._send(batch)
            except Exception:  # CloudWatch trouble must not kill the drain thread; say so once per batch
                _log.warning("could not send %d telemetry item(s) to CloudWatch", len(batch), exc_info=True)
            with self._idle:
                self._pending -= len(batch)
                self._idle.notify_all()


def _aws_client(config: Config, service: str) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    make_client: Any = boto3.client  # `service` is a plain str here, which the stubs' overloads refuse
    return make_client(
        service,
        region_name=config.aws_region,
        endpoint_url=config.aws_endpoint_url,
        config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10),
    )


# --------------------------------------------------------------------------------------- metrics
class Telemetry:
    """Records one tool call: `record("train_xgboost", 1234.5, error=False)`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.mode = config.metrics
        self._client: Any = None
        self._batcher: _Batcher | None = None
        if self.mode == "cloudwatch":
            self._batcher = _Batcher("metrics-cloudwatch", self._put_metric_data, max_batch=_METRIC_BATCH)
            atexit.register(self.flush)

    def record(self, tool: str, duration_ms: float, error: bool) -> None:
        values = {"ToolCalls": 1, "ToolErrors": 1 if error else 0, "ToolDuration": round(duration_ms, 3)}
        if self.mode == "emf":
            _emf_log.info("tool metrics", extra={"fields": emf_document(tool, values)})
        elif self._batcher is not None:
            now = time.time()
            for (name, unit), value in zip(_METRICS, values.values(), strict=True):
                self._batcher.put(
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": "Tool", "Value": tool}],
                        "Timestamp": now,
                        "Value": float(value),
                        "Unit": unit,
                    }
                )

    def flush(self, timeout: float = 5.0) -> bool:
        return self._batcher.flush(timeout) if self._batcher is not None else True

    def _put_metric_data(self, datums: list[dict[str, Any]]) -> None:
        if self._client is None:
            self._client = _aws_client(self.config, "cloudwatch")
        self._client.put_metric_data(Namespace=NAMESPACE, MetricData=datums)


def emf_document(tool: str, values: dict[str, float]) -> dict[str, Any]:
    """One Embedded Metric Format document: the `_aws` directive plus the dimension and values."""
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Tool"]],
                    "Metrics": [{"Name": name, "Unit": unit} for name, unit in _METRICS],
                }
            ],
        },
        "Tool": tool,
        **values,
    }


# ------------------------------------------------------------------------------------------ logs
class CloudWatchLogsHandler(logging.Handler):
    """A logging handler that ships formatted records with batched `PutLogEvents`."""

    def __init__(self, config: Config, group: str, stream: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.group = group
        self.stream = stream or default_log_stream()
        self.setFormatter(JsonFormatter())
        self._client: Any = None
        self._batcher = _Batcher(
            "logs-cloudwatch",
            self._put_log_events,
            max_batch=_LOG_BATCH_EVENTS,
            size=lambda event: len(event["message"].encode("utf-8")) + 26,  # how PutLogEvents counts
            max_bytes=_LOG_BATCH_BYTES,
        )

    def emit(self, record: logging.LogRecord) -> None:
        if threading.current_thread() is self._batcher.thread:
            return  # botocore logging about our own PutLogEvents call: shipping it would loop
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return
        encoded = message.encode("utf-8")
        if len(encoded) > _LOG_EVENT_MAX_BYTES:
            message = encoded[:_LOG_EVENT_MAX_BYTES].decode("utf-8", "ignore") + " [truncated]"
        self._batcher.put({"timestamp": int(record.created * 1000), "message": message})

    def flush(self, timeout: float = 5.0) -> None:
        self._batcher.flush(timeout)

    @property
    def dropped(self) -> int:
        return self._batcher.dropped

    def _put_log_events(self, events: list[dict[str, Any]]) -> None:
        if self._client is None:
            client = _aws_client(self.config, "logs")
            # Already there when a restarted process reuses its stream name.
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
            self._client = client
        events.sort(key=lambda event: event["timestamp"])  # PutLogEvents wants them in order
        self._client.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)


def default_log_stream() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def ship_logs_to_cloudwatch(config: Config) -> CloudWatchLogsHandler | None:
    """Add (or replace) the root logger's CloudWatch Logs handler when `CLOUDWATCH_LOG_GROUP` is set."""
    if not config.cloudwatch_log_group:
        return None
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, CloudWatchLogsHandler)]:
        root.removeHandler(old)
        old.flush()
    handler = CloudWatchLogsHandler(config, config.cloudwatch_log_group, config.cloudwatch_log_stream)
    root.addHandler(handler)
    atexit.register(handler.flush)
    return handler
