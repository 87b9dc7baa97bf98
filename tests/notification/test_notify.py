"""notify: one template to several channels in one call, each reported on its own."""

from __future__ import annotations

from mcp_server.client import result_text
from tests.helpers import call, call_error
from tests.notification.conftest import TRAINING_DONE, Setup
from tests.notification.servers import DISCORD_PATH, SLACK_WEBHOOK_PATH, TEAMS_PATH, Scripted

ALL = ["slack", "email", "teams", "discord"]


async def test_notify_sends_one_template_to_all_four_channels(setup: Setup) -> None:
    out = await call(
        setup.router,
        "notify",
        channels=ALL,
        template="training_completed",
        variables=TRAINING_DONE,
        to=["ops@example.com"],
    )
    assert out["sent_count"] == 4
    assert [(r["channel"], r["sent"], r["error"], r["attempts"]) for r in out["results"]] == [
        (c, True, None, 1) for c in ALL
    ]
    assert (
        setup.hooks.received(SLACK_WEBHOOK_PATH)[0].json["blocks"][0]["text"]["text"] == "Training completed: churn-rf"
    )
    assert setup.hooks.received(TEAMS_PATH)[0].json["attachments"][0]["content"]["version"] == "1.4"
    assert setup.hooks.received(DISCORD_PATH)[0].json["embeds"][0]["title"] == "Training completed: churn-rf"
    (mail,) = setup.smtp.mails
    assert mail.rcpt_tos == ["ops@example.com"] and mail.message["Subject"] == "Training completed: churn-rf"


async def test_notify_email_defaults_to_mlops_email_to(make_setup) -> None:
    setup = make_setup({"MLOPS_EMAIL_TO": "team@example.com, lead@example.com"})
    await call(setup.router, "notify", channels=["email"], message="nightly run ok")
    assert setup.smtp.mails[0].rcpt_tos == ["team@example.com", "lead@example.com"]


async def test_notify_reports_a_failed_channel_and_delivers_the_others(setup: Setup) -> None:
    setup.hooks.script("/workflows/", *[Scripted(500)] * 5)
    result = await setup.router.call("notify", {"channels": ["slack", "teams", "discord"], "message": "hi"})
    assert not result.is_error
    results = {r["channel"]: r for r in result.structured_content["results"]}
    assert results["slack"]["sent"] and results["discord"]["sent"]
    assert not results["teams"]["sent"] and results["teams"]["attempts"] == 5
    assert "HTTP 500, after 5 attempts" in results["teams"]["error"]
    assert "failed: teams" in result_text(result)


async def test_notify_is_an_error_only_when_no_channel_was_delivered(make_setup) -> None:
    setup = make_setup(secrets={"SLACK_WEBHOOK_URL": "", "DISCORD_WEBHOOK_URL": ""})
    text = await call_error(setup.router, "notify", channels=["slack", "discord", "email"], message="hi")
    assert "no channel was delivered" in text
    assert "slack: SLACK_WEBHOOK_URL" in text and "discord: DISCORD_WEBHOOK_URL" in text and "MLOPS_EMAIL_TO" in text


async def test_notify_template_error_sends_nothing(setup: Setup) -> None:
    text = await call_error(
        setup.router, "notify", channels=ALL, template="training_failed", variables={"model_name": "m"}
    )
    assert "'algorithm'" in text and "'error'" in text
    assert setup.hooks.requests == [] and setup.smtp.mails == []


async def test_notify_refuses_a_channel_listed_twice(setup: Setup) -> None:
    text = await call_error(setup.router, "notify", channels=["slack", "slack"], message="x")
    assert "once" in text
