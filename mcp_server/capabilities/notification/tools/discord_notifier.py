"""send_discord_notification: embeds through a Discord webhook, split to fit Discord's limits."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification.formats import discord_embeds
from mcp_server.capabilities.notification.schemas import SendDiscordInput, SendDiscordOutput
from mcp_server.capabilities.notification.templates import Message
from mcp_server.capabilities.notification.tools.common import message_from, secret_destination


def deliver_discord(ctx: ToolContext, message: Message, *, webhook_url: str | None = None) -> SendDiscordOutput:
    url, field = secret_destination(ctx, webhook_url, "discord-webhook-url", "DISCORD_WEBHOOK_URL", "Discord webhook")
    client = ctx.services.outbound
    plan = discord_embeds(message)
    attempts = 0
    started = client.retry.clock()  # the parts share one deadline
    for embeds in plan.messages:
        # allowed_mentions: a value such as "@everyone" in a variable must not ping anyone.
        payload = {"embeds": embeds, "allowed_mentions": {"parse": []}}
        response = client.post_json(url, payload, service="Discord", field=field, started=started)
        response.raise_for_status("Discord", field)
        attempts += response.attempts
    return SendDiscordOutput(sent=True, attempts=attempts, messages=len(plan.messages), truncated=plan.truncated)


def send_discord_notification(ctx: ToolContext, params: SendDiscordInput) -> ToolOutput:
    data = deliver_discord(ctx, message_from(params), webhook_url=params.webhook_url)
    note = ", truncated" if data.truncated else ""
    return ToolOutput(data=data, summary=f"Discord message sent in {data.messages} part(s){note}")
