"""send_teams_notification: an Adaptive Card 1.4 through a Teams Workflows webhook."""

from __future__ import annotations

from urllib.parse import urlsplit

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification.formats import teams_card, teams_envelope
from mcp_server.capabilities.notification.schemas import SendResult, SendTeamsInput
from mcp_server.capabilities.notification.templates import Message
from mcp_server.capabilities.notification.tools.common import message_from, secret_destination
from mcp_server.common.exceptions import InvalidInputError


def refuse_office_connector(url: str, field: str) -> None:
    """Office 365 connector webhooks are retired; say what replaces them."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower()
    except ValueError:
        return  # check_url reports the malformed URL
    if host.endswith(".webhook.office.com") or host in ("outlook.office.com", "outlook.office365.com"):
        raise InvalidInputError(
            "is an Office 365 connector webhook, which Microsoft has retired",
            field=field,
            hint="create a Workflows webhook instead (Teams channel > Workflows > 'Post to a channel when a "
            "webhook request is received') and use its URL",
        )


def deliver_teams(ctx: ToolContext, message: Message, *, webhook_url: str | None = None) -> SendResult:
    url, field = secret_destination(
        ctx, webhook_url, "teams-webhook-url", "TEAMS_WEBHOOK_URL", "Teams Workflows webhook"
    )
    refuse_office_connector(url, field)
    client = ctx.services.outbound
    response = client.post_json(url, teams_envelope(teams_card(message)), service="Teams", field=field)
    response.raise_for_status("Teams", field)
    return SendResult(sent=True, attempts=response.attempts)


def send_teams_notification(ctx: ToolContext, params: SendTeamsInput) -> ToolOutput:
    data = deliver_teams(ctx, message_from(params), webhook_url=params.webhook_url)
    return ToolOutput(data=data, summary=f"Teams card sent ({data.attempts} attempt(s))")
