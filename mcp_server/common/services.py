"""Services: the process-wide objects a tool may use, built once per server and handed to every
tool through its context (storage, secrets, the job runner, the outbound HTTP client, AWS
clients), instead of an untyped dict. Each is created on first use; tests may set their own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Coroutine
from typing import TYPE_CHECKING, Any

from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.secrets import SecretStore

if TYPE_CHECKING:
    import mcp_types as types

    from mcp_server.common.jobs import JobRunner
    from mcp_server.common.outbound import OutboundClient
    from mcp_server.config import Config


ToolCaller = Callable[[str, dict[str, Any]], Coroutine[Any, Any, "types.CallToolResult"]]


class Services:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.storage = S3Utils(config)
        self.secrets = SecretStore(config)
        self._jobs: JobRunner | None = None
        self.outbound_client: OutboundClient | None = None  # see `outbound`
        self._aws: dict[str, Any] = {}
        self.github_clients: dict[str, Any] = {}  # PyGithub clients by API URL and token hash (github_integration)
        # Set by the router: call a tool by name exactly as a client would (validation, error
        # results and all). How a workflow drives other capabilities without importing them.
        self.call_tool: ToolCaller | None = None
        self.tool_names: Collection[str] = ()  # the tools call_tool reaches (set by the router)
        self._lock = threading.Lock()

    @property
    def jobs(self) -> JobRunner:
        """The job runner, created on first use (most calls never start a job)."""
        with self._lock:
            if self._jobs is None:
                from mcp_server.common.jobs import JobRunner

                self._jobs = JobRunner(
                    self.storage,
                    self.config.max_concurrent_jobs,
                    limits={
                        "pipeline": self.config.max_concurrent_pipelines,
                        "evaluation": self.config.max_concurrent_evaluations,
                    },
                )
            return self._jobs

    @property
    def outbound(self) -> OutboundClient:
        """The one HTTP client of every outbound channel (allow-list, pinned addresses, retries)."""
        with self._lock:
            if self.outbound_client is None:
                from mcp_server.common.outbound import OutboundClient

                self.outbound_client = OutboundClient(tuple(self.config.outbound_allow))
            return self.outbound_client

    def aws(self, service: str) -> Any:
        """A boto3 client for `service` in the configured region and endpoint (one per service)."""
        with self._lock:
            client = self._aws.get(service)
            if client is None:
                import boto3

                make: Any = boto3.client  # the service name is a plain string here, not a stub literal
                client = make(service, region_name=self.config.aws_region, endpoint_url=self.config.aws_endpoint_url)
                self._aws[service] = client
            return client
