"""send_slack_notification: an incoming webhook, or a bot token + channel through chat.postMessage.

Payloads are built with slack-sdk's Block Kit models; they are sent through the outbound client
(slack-sdk's own clients resolve and follow redirects on their own, which the rules forbid).
"""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification.formats import slack_blocks, slack_text
from mcp_server.capabilities.notification.schemas import SendSlackInput, SendSlackOutput
from mcp_server.capabilities.notification.templates import Message
from mcp_server.capabilities.notification.tools.common import message_from, secret_destination
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.outbound import DeliveryError

_TOKEN_HINT = ("SLACK_BOT_TOKEN", "check the bot token (it starts with xoxb-)")
# chat.postMessage errors: (the setting or input at fault, what to do)
_HINTS = {
    "channel_not_found": ("channel", "check the channel name or id"),
    "not_in_channel": ("channel", "invite the bot to the channel (/invite @your-bot)"),
    "is_archived": ("channel", "the channel is archived; choose another"),
    "invalid_auth": _TOKEN_HINT,
    "not_authed": _TOKEN_HINT,
    "account_inactive": _TOKEN_HINT,
    "token_revoked": _TOKEN_HINT,
    "missing_scope": ("SLACK_BOT_TOKEN", "give the Slack app the chat:write scope and reinstall it"),
}


def checked_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Caller-given blocks, parsed and checked against Block Kit's limits by slack-sdk."""
    out = []
    for i, raw in enumerate(blocks):
        block = Block.parse(raw) if isinstance(raw.get("type"), str) else None
        if block is None:
            raise InvalidInputError("is not a Block Kit block (unknown or missing type)", field=f"blocks.{i}")
        try:
            block.validate_json()
        except (SlackObjectFormationError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"is not a valid {raw['type']} block ({exc})", field=f"blocks.{i}") from None
        out.append(block.to_dict())
    return out


def deliver_slack(
    ctx: ToolContext,
    message: Message,
    *,
    channel: str | None = None,
    blocks: list[dict[str, Any]] | None = None,
    webhook_url: str | None = None,
) -> SendSlackOutput:
    client = ctx.services.outbound
    payload: dict[str, Any] = {
        "text": slack_text(message),
        "blocks": checked_blocks(blocks) if blocks else slack_blocks(message),
    }
    token = None if webhook_url else ctx.secrets.get("slack-bot-token", "SLACK_BOT_TOKEN")
    target_channel = channel or ctx.config.slack_default_channel
    if token and target_channel:
        api = ctx.config.slack_api_url
        response = client.post_json(
            f"{api}chat.postMessage",
            {**payload, "channel": target_channel, "unfurl_links": False},
            service="Slack",
            headers={"Authorization": f"Bearer {token}"},
            trusted_bases=(api,),
            field="SLACK_API_URL",
        )
        response.raise_for_status("Slack", "SLACK_API_URL")
        answer = response.json() if isinstance(response.json(), dict) else {}
        if not answer.get("ok"):
            error = str(answer.get("error") or "no reason given")[:100]
            field, hint = _HINTS.get(error, ("message", "see https://api.slack.com/methods/chat.postMessage#errors"))
            raise DeliveryError(
                f"Slack refused the message ({error})", attempts=response.attempts, field=field, hint=hint
            )
        return SendSlackOutput(
            sent=True,
            attempts=response.attempts,
            channel=str(answer.get("channel") or target_channel),
            method="web_api",
            ts=answer.get("ts"),
        )
    if channel and not webhook_url:
        raise InvalidInputError(
            "choosing a channel needs a Slack bot token",
            field="channel",
            hint="set SLACK_BOT_TOKEN (or the secret slack-bot-token), or leave channel out to use the webhook's own",
        )
    url, field = secret_destination(
        ctx, webhook_url, "slack-webhook-url", "SLACK_WEBHOOK_URL", "Slack webhook or bot token"
    )
    response = client.post_json(url, payload, service="Slack", field=field).raise_for_status("Slack", field)
    return SendSlackOutput(sent=True, attempts=response.attempts, channel=None, method="webhook", ts=None)


def send_slack_notification(ctx: ToolContext, params: SendSlackInput) -> ToolOutput:
    data = deliver_slack(
        ctx, message_from(params), channel=params.channel, blocks=params.blocks, webhook_url=params.webhook_url
    )
    where = data.channel or "the webhook's channel"
    return ToolOutput(data=data, summary=f"Slack message sent to {where} ({data.attempts} attempt(s))")
