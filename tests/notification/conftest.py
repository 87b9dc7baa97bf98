"""Notification fixtures: a router whose channels all point at real loopback servers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mcp_server.capabilities.notification.capability import NotificationCapability
from mcp_server.common.outbound import OutboundClient, RetryPolicy
from mcp_server.common.secrets import SecretStore
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.notification.servers import BOT_TOKEN, HookServer, SmtpServer, smtp_server

SENDER = "mlops@example.com"


@dataclass
class Setup:
    router: ToolRouter
    hooks: HookServer
    smtp: SmtpServer
    sleeps: list[float]
    secrets: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with HookServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def make_setup(aws: Any, storage_root: Path, hooks: HookServer, smtp: SmtpServer) -> Callable[..., Setup]:
    """Build a router: settings and secrets (env-style) on top of the loopback defaults. moto
    (`aws`) stands in for Secrets Manager, so lookups there find nothing unless a test adds it."""

    def build(env: dict[str, str] | None = None, secrets: dict[str, str] | None = None) -> Setup:
        settings = {
            "MLOPS_STORAGE_ROOT": str(storage_root),
            "MLOPS_OUTBOUND_ALLOW": f"{hooks.origin},{smtp.origin}",
            "SLACK_API_URL": hooks.slack_api,
            "MLOPS_EMAIL_FROM": SENDER,
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            **(env or {}),
        }
        config = Config.from_env(settings)
        router = ToolRouter([NotificationCapability(config)], config)
        values = {
            "SLACK_WEBHOOK_URL": hooks.slack_webhook,
            "TEAMS_WEBHOOK_URL": hooks.teams_webhook,
            "DISCORD_WEBHOOK_URL": hooks.discord_webhook,
        }
        values.update(secrets or {})
        values = {k: v for k, v in values.items() if v}
        router.services.secrets = SecretStore(config, env=values)
        sleeps: list[float] = []
        router.services.outbound_client = OutboundClient(config.outbound_allow, retry=RetryPolicy(sleep=sleeps.append))
        return Setup(router, hooks, smtp, sleeps, values)

    return build


@pytest.fixture
def setup(make_setup: Callable[..., Setup]) -> Setup:
    return make_setup()


@pytest.fixture
def bot_setup(make_setup: Callable[..., Setup]) -> Setup:
    return make_setup({"SLACK_DEFAULT_CHANNEL": "#ml-alerts"}, {"SLACK_BOT_TOKEN": BOT_TOKEN})


TRAINING_DONE = {
    "model_name": "churn-rf",
    "algorithm": "random_forest",
    "metrics": {"accuracy": 0.9312, "f1": 0.88},
    "model_s3_uri": "s3://bucket/models/churn-rf",
    "duration_seconds": 42.5,
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record connection attempts and refuse them (nothing leaves the machine)."""
    from mcp_server.common import outbound

    attempts: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> Any:
        attempts.append(address)
        raise ConnectionRefusedError(f"test: no network to {address}")

    monkeypatch.setattr(outbound.socket, "create_connection", refuse)
    return attempts
