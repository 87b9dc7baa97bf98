"""send_teams_notification and send_discord_notification against the loopback receiver, which
refuses what Teams Workflows and Discord would refuse."""

from __future__ import annotations

from mcp_server.capabilities.notification.formats import embed_chars
from tests.helpers import call, call_error
from tests.notification.conftest import TRAINING_DONE, Setup
from tests.notification.servers import DISCORD_PATH, TEAMS_PATH, Scripted, discord_problems


async def test_teams_posts_an_adaptive_card_1_4_in_a_message_envelope(setup: Setup) -> None:
    out = await call(setup.router, "send_teams_notification", template="training_completed", variables=TRAINING_DONE)
    assert out == {"sent": True, "attempts": 1}
    payload = setup.hooks.received(TEAMS_PATH)[0].json
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == "Training completed: churn-rf"
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts == {"Model": "s3://bucket/models/churn-rf", "accuracy": "0.9312", "f1": "0.88"}


async def test_teams_office_connector_url_is_refused_with_workflows_advice(setup: Setup) -> None:
    url = "https://contoso.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456"
    text = await call_error(setup.router, "send_teams_notification", message="x", webhook_url=url)
    assert text.startswith("webhook_url:") and "retired" in text and "Workflows webhook" in text
    assert "IncomingWebhook/123" not in text
    assert setup.hooks.requests == []


async def test_teams_configured_connector_url_is_refused_too(make_setup) -> None:
    setup = make_setup(secrets={"TEAMS_WEBHOOK_URL": "https://outlook.office.com/webhook/abc"})
    text = await call_error(setup.router, "send_teams_notification", message="x")
    assert text.startswith("TEAMS_WEBHOOK_URL:") and "Workflows" in text


async def test_teams_workflows_hosts_are_on_the_builtin_allow_list(setup: Setup, no_network) -> None:
    # With a public DNS answer the check passes and the connection is attempted (here: refused).
    setup.router.services.outbound_client.resolver = lambda host, port: ["93.184.215.14"]
    for url in (
        "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x",
        "https://abc.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/abc",
    ):
        text = await call_error(setup.router, "send_teams_notification", message="x", webhook_url=url)
        assert "could not reach" in text, text
    assert {host for host, _ in no_network} == {"93.184.215.14"}


async def test_teams_500_then_202_reports_two_attempts(setup: Setup) -> None:
    setup.hooks.script("/workflows/", Scripted(502))
    out = await call(setup.router, "send_teams_notification", message="hello")
    assert out["attempts"] == 2 and len(setup.sleeps) == 1


async def test_discord_posts_embeds_without_mentions(setup: Setup) -> None:
    out = await call(setup.router, "send_discord_notification", message="@everyone model ready")
    assert out == {"sent": True, "attempts": 1, "messages": 1, "truncated": False}
    payload = setup.hooks.received(DISCORD_PATH)[0].json
    assert payload["allowed_mentions"] == {"parse": []}
    assert payload["embeds"][0]["description"] == "@everyone model ready"


async def test_discord_template_embed_has_title_color_and_fields(setup: Setup) -> None:
    await call(
        setup.router,
        "send_discord_notification",
        template="training_failed",
        variables={"model_name": "m", "algorithm": "xgboost", "error": "out of memory", "job_id": "job-1"},
    )
    (embed,) = setup.hooks.received(DISCORD_PATH)[0].json["embeds"]
    assert embed["title"] == "Training failed: m"
    assert embed["description"] == "xgboost training of m failed: out of memory"
    assert embed["color"] == 0xE74C3C and embed["fields"] == [{"name": "Job", "value": "job-1", "inline": True}]


async def test_discord_long_message_is_split_within_limits_not_refused(setup: Setup) -> None:
    text = " ".join(f"line {i} of a very long training log" for i in range(400))  # ~14k characters
    out = await call(setup.router, "send_discord_notification", message=text, title="T" * 256)
    assert out["sent"] and out["messages"] >= 2 and not out["truncated"]
    posts = setup.hooks.received(DISCORD_PATH)
    assert len(posts) == out["messages"]
    for post in posts:  # the receiver answers 400 otherwise; check explicitly as well
        assert discord_problems(post.json) == []
    assert posts[0].json["embeds"][0]["title"] == "T" * 256
    sent_text = " ".join(e["description"] for p in posts for e in p.json["embeds"])
    assert sent_text.split() == text.split()  # nothing lost when split


async def test_discord_huge_message_is_truncated_and_says_so(setup: Setup) -> None:
    out = await call(setup.router, "send_discord_notification", message="x " * 20000)
    assert out["truncated"] and out["messages"] == 3
    posts = setup.hooks.received(DISCORD_PATH)
    assert all(sum(map(embed_chars, p.json["embeds"])) <= 6000 for p in posts)
    assert posts[-1].json["embeds"][-1]["description"].endswith("(truncated)")


async def test_discord_rate_limit_is_honoured(setup: Setup) -> None:
    setup.hooks.script("/api/webhooks/", Scripted(429, b'{"retry_after": 1.5}', {"Retry-After": "1.5"}))
    out = await call(setup.router, "send_discord_notification", message="hi")
    assert out["attempts"] == 2 and setup.sleeps == [1.5]


async def test_discord_webhook_outside_allowed_paths_is_refused(setup: Setup) -> None:
    text = await call_error(
        setup.router, "send_discord_notification", message="x", webhook_url="https://discord.com/api/v10/users/@me"
    )
    assert text.startswith("webhook_url:") and "allow-list" in text
