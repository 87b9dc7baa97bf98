"""Secrets from AWS Secrets Manager (`<MLOPS_SECRETS_PREFIX><name>`), falling back to env vars.

Values are cached briefly and never logged: only the secret's name and where it came from are.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from mcp_server.common.logger import get_logger, log_event

if TYPE_CHECKING:
    from mcp_server.config import Config

_log = get_logger(__name__)
CACHE_SECONDS = 300.0


class SecretStore:
    def __init__(self, config: Config, env: dict[str, str] | None = None) -> None:
        self.config = config
        self._env = env
        self._client: Any = None
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            self._client = boto3.client(
                "secretsmanager",
                region_name=self.config.aws_region,
                endpoint_url=self.config.aws_endpoint_url,
                config=BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=5),
            )
        return self._client

    def get(self, name: str, env_var: str | None = None) -> str | None:
        """The secret `name` (e.g. `github-token`), or the env var `env_var`, or None.

        A JSON secret with a single key, or with a `value`/`token` key, is unwrapped.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached and now - cached[0] < CACHE_SECONDS:
                return cached[1]
        value = self._from_secrets_manager(name)
        source = "secretsmanager"
        if value is None and env_var:
            value = (self._env if self._env is not None else os.environ).get(env_var) or None
            source = "env"
        log_event(_log, 10, "secret lookup", name=name, source=source if value else "missing")
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def _from_secrets_manager(self, name: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = f"{self.config.secrets_prefix}{name}"
        try:
            response = self.client.get_secret_value(SecretId=secret_id)
        except (ClientError, BotoCoreError) as exc:
            # Missing secret or no AWS at all: the env var fallback applies. The value is never logged;
            # the field is `name` because a key containing "secret" would itself be masked.
            log_event(_log, 10, "secret not in Secrets Manager", name=secret_id, error=type(exc).__name__)
            return None
        raw = response.get("SecretString")
        if raw is None:
            return None
        try:
            parsed = json.loads(raw)
        except ValueError:
            return str(raw)
        if isinstance(parsed, dict):
            for key in ("value", "token", name):
                if key in parsed:
                    return str(parsed[key])
            if len(parsed) == 1:
                return str(next(iter(parsed.values())))
        return str(raw)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
