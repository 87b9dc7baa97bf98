"""Services: the process-wide objects a tool may use, built once per server and handed to every
tool through its context (storage, secrets, the job runner), instead of an untyped dict."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.secrets import SecretStore

if TYPE_CHECKING:
    from mcp_server.common.jobs import JobRunner
    from mcp_server.config import Config


class Services:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.storage = S3Utils(config)
        self.secrets = SecretStore(config)
        self._jobs: JobRunner | None = None
        self._lock = threading.Lock()

    @property
    def jobs(self) -> JobRunner:
        """The job runner, created on first use (most calls never start a job)."""
        with self._lock:
            if self._jobs is None:
                from mcp_server.common.jobs import JobRunner

                self._jobs = JobRunner(self.storage, self.config.max_concurrent_jobs)
            return self._jobs
