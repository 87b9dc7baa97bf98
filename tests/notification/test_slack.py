"""send_slack_notification against the loopback Slack: webhook and Web API payloads."""

from __future__ import annotations

from mcp_server.client import result_text
from tests.helpers import call, call_error
from tests.notification.conftest import TRAINING_DONE, Setup
from tests.notification.servers import BOT_TOKEN, SLACK_WEBHOOK_PATH, Scripted


async def test_webhook_message_posts_text_and_blocks(setup: Setup) -> None:
    out = await call(setup.router, "send_slack_notification", message="Deploy *done* <!channel> & co")
    assert out == {"sent": True, "attempts": 1, "channel": None, "method": "webhook", "ts": None}
    (received,) = setup.hooks.received(SLACK_WEBHOOK_PATH)
    payload = received.json
    # user text is escaped: it cannot ping the channel or forge a link
    assert payload["text"] == "Deploy *done* &lt;!channel&gt; &amp; co"
    assert payload["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": payload["text"]}}


async def test_webhook_template_builds_header_fields_and_context(setup: Setup) -> None:
    await call(setup.router, "send_slack_notification", template="training_completed", variables=TRAINING_DONE)
    blocks = setup.hooks.received("/services/")[0].json["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Training completed: churn-rf"}}
    assert "random_forest training of churn-rf completed in 42.5 s." in blocks[1]["text"]["text"]
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert fields == ["*Model*\ns3://bucket/models/churn-rf", "*accuracy*\n0.9312", "*f1*\n0.88"]
    assert blocks[-1]["type"] == "context"


async def test_bot_token_posts_to_chat_post_message_with_bearer_token(bot_setup: Setup) -> None:
    out = await call(bot_setup.router, "send_slack_notification", message="hello", channel="#models")
    assert out["method"] == "web_api" and out["channel"] == "C0TESTCHAN" and out["ts"] == "1700000000.000100"
    (received,) = bot_setup.hooks.received("/api/chat.postMessage")
    assert received.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert received.json["channel"] == "#models" and received.json["text"] == "hello"
    assert bot_setup.hooks.received("/services/") == []  # the webhook was not used


async def test_bot_token_uses_default_channel(bot_setup: Setup) -> None:
    await call(bot_setup.router, "send_slack_notification", message="hi")
    assert bot_setup.hooks.received("/api/chat.postMessage")[0].json["channel"] == "#ml-alerts"


async def test_web_api_error_is_reported_with_a_hint(bot_setup: Setup) -> None:
    text = await call_error(bot_setup.router, "send_slack_notification", message="hi", channel="#missing")
    assert text.startswith("channel:") and "channel_not_found" in text and "check the channel" in text


async def test_wrong_bot_token_is_reported_without_the_token(make_setup) -> None:
    setup = make_setup({"SLACK_DEFAULT_CHANNEL": "#x"}, {"SLACK_BOT_TOKEN": "xoxb-9999-wrong-tokenvalue"})
    text = await call_error(setup.router, "send_slack_notification", message="hi")
    assert text.startswith("SLACK_BOT_TOKEN:") and "invalid_auth" in text and "xoxb-9999" not in text


async def test_channel_without_bot_token_is_refused_with_advice(setup: Setup) -> None:
    text = await call_error(setup.router, "send_slack_notification", message="hi", channel="#models")
    assert text.startswith("channel:") and "SLACK_BOT_TOKEN" in text
    assert setup.hooks.requests == []


async def test_custom_blocks_are_validated_by_block_kit_models(setup: Setup) -> None:
    good = [{"type": "section", "text": {"type": "mrkdwn", "text": "*custom*"}}, {"type": "divider"}]
    await call(setup.router, "send_slack_notification", message="fallback", blocks=good)
    sent = setup.hooks.received("/services/")[0].json
    assert sent["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": "*custom*"}}, {"type": "divider"}]
    bad = await call_error(setup.router, "send_slack_notification", message="x", blocks=[{"type": "nonsense"}])
    assert bad.startswith("blocks.0:")
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    text = await call_error(setup.router, "send_slack_notification", message="x", blocks=too_long)
    assert "blocks.0" in text and "3000" in text


async def test_slack_429_then_success_reports_attempts(setup: Setup) -> None:
    setup.hooks.script("/services/", Scripted(429, b"rate_limited", {"Retry-After": "2"}))
    out = await call(setup.router, "send_slack_notification", message="hi")
    assert out["attempts"] == 2 and setup.sleeps == [2.0]


async def test_slack_persistent_500_is_a_clear_error(setup: Setup) -> None:
    setup.hooks.script("/services/", *[Scripted(500)] * 5)
    result = await setup.router.call("send_slack_notification", {"message": "hi"})
    assert result.is_error
    text = result_text(result)
    assert "Slack: 127.0.0.1 answered HTTP 500, after 5 attempts" in text
    assert "webhooksecretpart" not in text


async def test_no_slack_destination_is_a_config_error_naming_the_settings(make_setup) -> None:
    setup = make_setup(secrets={"SLACK_WEBHOOK_URL": ""})
    text = await call_error(setup.router, "send_slack_notification", message="hi")
    assert "SLACK_WEBHOOK_URL" in text and "mlops/slack-webhook-url" in text


async def test_webhook_from_secrets_manager_wins_over_environment(make_setup, aws) -> None:
    import boto3

    setup = make_setup(secrets={"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/env/should/lose"})
    url = setup.hooks.url("/services/FROM/SECRETS/manager")
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="mlops/slack-webhook-url", SecretString=url
    )
    await call(setup.router, "send_slack_notification", message="hi")
    assert [r.path for r in setup.hooks.requests] == ["/services/FROM/SECRETS/manager"]


async def test_webhook_override_passes_the_outbound_checks(setup: Setup) -> None:
    text = await call_error(
        setup.router, "send_slack_notification", message="hi", webhook_url="http://169.254.169.254/latest/meta-data"
    )
    assert text.startswith("webhook_url:") and "169.254.169.254" in text
    text = await call_error(setup.router, "send_slack_notification", message="hi", webhook_url="https://evil.example/x")
    assert "allow-list" in text
    assert setup.hooks.requests == []


async def test_very_long_message_is_truncated_within_block_limits(setup: Setup) -> None:
    await call(setup.router, "send_slack_notification", message="word " * 7000)  # 35k characters
    blocks = setup.hooks.received("/services/")[0].json["blocks"]
    assert len(blocks) == 5 and all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert blocks[-1]["text"]["text"].endswith("(truncated)")
