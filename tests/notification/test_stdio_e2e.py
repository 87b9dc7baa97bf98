"""Notifications through the real server over stdio: every channel to loopback receivers (Slack,
Teams, Discord over HTTP, mail over SMTP), Secrets Manager and SES on moto's HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.client import connect, result_text, structured
from tests.conftest import threaded_moto_server
from tests.notification.servers import HookServer, Scripted, SmtpServer

pytestmark = pytest.mark.e2e
SENDER = "mlops@example.com"
NOTIFICATION_TOOLS = {
    "send_slack_notification",
    "send_email_notification",
    "send_teams_notification",
    "send_discord_notification",
    "list_notification_templates",
    "render_notification_template",
    "notify",
}
SECRET_PARTS = ("webhooksecretpart", "discordsecretpart", "abc123/triggers")


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    with threaded_moto_server() as endpoint:
        yield endpoint


def aws_client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="e2e", aws_secret_access_key="e2e"
    )


def env_for(endpoint: str, root: Path, hooks: HookServer, smtp: SmtpServer, **extra: str) -> dict[str, str]:
    return {
        "MLOPS_STORAGE_ROOT": str(root),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "e2e",
        "AWS_SECRET_ACCESS_KEY": "e2e",
        "AWS_REGION": "us-east-1",
        "LOG_LEVEL": "DEBUG",
        "MLOPS_OUTBOUND_ALLOW": f"{hooks.origin},{smtp.origin}",
        "TEAMS_WEBHOOK_URL": hooks.teams_webhook,
        "DISCORD_WEBHOOK_URL": hooks.discord_webhook,
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "MLOPS_EMAIL_FROM": SENDER,
        "MLOPS_EMAIL_TO": "team@example.com",
        **extra,
    }


async def test_notify_every_channel_through_the_stdio_server(
    moto_endpoint: str, hooks: HookServer, smtp: SmtpServer, storage_root: Path, tmp_path: Path
) -> None:
    # The Slack webhook lives in Secrets Manager, the others in the environment.
    aws_client("secretsmanager", moto_endpoint).create_secret(
        Name="mlops/slack-webhook-url", SecretString=hooks.slack_webhook
    )
    hooks.script("/services/", Scripted(429, b"rate_limited", {"Retry-After": "0"}))
    errlog = tmp_path / "stderr.log"
    with open(errlog, "w") as err:
        async with connect(env_for(moto_endpoint, storage_root, hooks, smtp), errlog=err) as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert set(tools) >= NOTIFICATION_TOOLS
            for name in NOTIFICATION_TOOLS:
                hints = tools[name].annotations
                sender = name not in ("list_notification_templates", "render_notification_template")
                assert (hints.read_only_hint, hints.open_world_hint) == (not sender, sender), name

            result = await session.call_tool(
                "notify",
                {
                    "channels": ["slack", "email", "teams", "discord"],
                    "template": "evaluation_passed",
                    "variables": {
                        "model_name": "churn-rf",
                        "metrics": {"accuracy": 0.93},
                        "thresholds": {"accuracy": 0.9},
                    },
                },
            )
            assert not result.is_error, result_text(result)
            out = structured(result)
            assert {r["channel"]: (r["sent"], r["attempts"]) for r in out["results"]} == {
                "slack": (True, 2),
                "email": (True, 1),
                "teams": (True, 1),
                "discord": (True, 1),
            }

            preview = await session.call_tool(
                "render_notification_template",
                {
                    "template_name": "model_rolled_back",
                    "variables": {"model_name": "m", "from_version": 3, "to_version": 2},
                },
            )
            assert not preview.is_error and structured(preview)["subject"] == "Model rolled back: m v3 -> v2"

            attack = await session.call_tool(
                "send_discord_notification",
                {"message": "x", "webhook_url": "http://169.254.169.254/latest/meta-data/iam"},
            )
            assert attack.is_error and "webhook_url:" in result_text(attack)

    assert len(hooks.received("/services/")) == 2  # the 429, then the delivery
    assert hooks.received("/services/")[1].json["blocks"][0]["text"]["text"] == "Evaluation passed: churn-rf"
    assert hooks.received("/workflows/")[0].json["attachments"][0]["content"]["version"] == "1.4"
    assert hooks.received("/api/webhooks/")[0].json["embeds"][0]["title"] == "Evaluation passed: churn-rf"
    (mail,) = smtp.mails
    assert mail.rcpt_tos == ["team@example.com"] and mail.message["Subject"] == "Evaluation passed: churn-rf"
    log = errlog.read_text()
    for line in log.splitlines():
        json.loads(line)
    assert "secret lookup" in log  # DEBUG logging really ran
    for part in SECRET_PARTS:
        assert part not in log


async def test_email_through_ses_on_moto_server(
    moto_endpoint: str, hooks: HookServer, smtp: SmtpServer, storage_root: Path
) -> None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    aws_client("ses", moto_endpoint).verify_email_identity(EmailAddress=SENDER)
    env = env_for(moto_endpoint, storage_root, hooks, smtp, MLOPS_EMAIL_BACKEND="ses")
    async with connect(env) as session:
        result = await session.call_tool(
            "send_email_notification", {"to": ["a@example.com"], "subject": "SES check", "body": "hello from SES"}
        )
        assert not result.is_error, result_text(result)
        out = structured(result)
        assert out["backend"] == "ses" and out["sent"]
    sent = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
    assert any("Subject: SES check" in m.raw_data for m in sent)
    assert smtp.mails == []
