"""Webhook URLs, the bot token and the SMTP password never appear in results or logs, whether a
call succeeds or fails."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from mcp_server.client import result_text
from mcp_server.common.logger import JsonFormatter
from tests.notification.servers import BOT_TOKEN, Scripted, smtp_server

SECRET_PARTS = ("webhooksecretpart", "botsecretpart", "discordsecretpart", "abc123/triggers", "smtp-pass-XYZ")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log record at DEBUG, formatted as the server writes it to stderr."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text, f"secret {part!r} leaked: {text[:500]}"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_secrets_absent_from_results_and_logs(make_setup, hooks, json_log: io.StringIO) -> None:
    with smtp_server(username="mailer", password="smtp-pass-XYZ") as server:
        setup = make_setup(
            {
                "SMTP_PORT": str(server.port),
                "SMTP_USERNAME": "mailer",
                "SLACK_DEFAULT_CHANNEL": "#alerts",
                "MLOPS_OUTBOUND_ALLOW": f"{hooks.origin},{server.origin}",
            },
            {"SMTP_PASSWORD": "smtp-pass-XYZ", "SLACK_BOT_TOKEN": BOT_TOKEN},
        )
        results = []
        # successes
        results.append(
            await setup.router.call(
                "notify", {"channels": ["slack", "email", "teams", "discord"], "message": "ok", "to": ["a@example.com"]}
            )
        )
        results.append(
            await setup.router.call(
                "send_slack_notification", {"message": "via webhook", "webhook_url": setup.hooks.slack_webhook}
            )
        )
        # failures: the service refuses, retries run out, the override is refused
        echo = b"bad request to " + setup.hooks.teams_webhook.encode()  # a service echoing the URL
        setup.hooks.script("/workflows/", *[Scripted(500)] * 4, Scripted(400, echo))
        setup.hooks.script("/api/webhooks/", Scripted(401, b'{"message": "Invalid Webhook Token"}'))
        results.append(await setup.router.call("notify", {"channels": ["teams", "discord"], "message": "fail"}))
        results.append(
            await setup.router.call(
                "send_slack_notification",
                {"message": "x", "webhook_url": "https://evil.example/services/webhooksecretpart"},
            )
        )
        results.append(
            await setup.router.call(
                "send_discord_notification",
                {"message": "x", "webhook_url": "http://127.0.0.1:1/api/webhooks/1/discordsecretpart"},
            )
        )
    assert [r.is_error for r in results] == [False, False, True, True, True]
    assert "HTTP 400: bad request to http://127.0.0.1" in result_text(results[2])  # the echo was reported, masked
    for result in results:
        assert_no_secret(result_text(result))
        assert_no_secret(json.dumps(result.structured_content or {}))
    log = json_log.getvalue()
    assert "tool call" in log and "outbound retry" in log  # the log was captured
    assert_no_secret(log)
