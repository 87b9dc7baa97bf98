"""The notification capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolFn, ToolSpec
from mcp_server.capabilities.notification import schemas as s

# Tool functions are named, not imported: slack-sdk and Jinja2 load on the first call.
_TOOLS = "mcp_server.capabilities.notification.tools"

_SOURCE = "Give `message` (+ optional `title`) or a `template` with `variables`."


def _spec(
    name: str, title: str, description: str, models: tuple[type, type], fn: ToolFn | str, sends: bool
) -> ToolSpec:
    return ToolSpec(
        name=name,
        title=title,
        description=description,
        input_model=models[0],
        output_model=models[1],
        fn=fn,
        read_only=not sends,
        destructive=False,
        idempotent=not sends,  # sending twice posts twice
        open_world=sends,  # senders reach Slack, Teams, Discord or a mail server
    )


def _sender(
    name: str, title: str, description: str, input_model: type, output_model: type, fn: ToolFn | str
) -> ToolSpec:
    return _spec(name, title, description, (input_model, output_model), fn, sends=True)


def _reader(
    name: str, title: str, description: str, input_model: type, output_model: type, fn: ToolFn | str
) -> ToolSpec:
    return _spec(name, title, description, (input_model, output_model), fn, sends=False)


class NotificationCapability(BaseCapability):
    name = "notification"
    description = "Slack, email, Teams and Discord notifications with templates."

    def tool_specs(self) -> list[ToolSpec]:
        return [
            _sender(
                "send_slack_notification",
                "Send Slack notification",
                f"Post to Slack: bot token + `channel` (default SLACK_DEFAULT_CHANNEL) via chat.postMessage, else "
                f"the incoming webhook. {_SOURCE} `blocks` replaces the generated Block Kit blocks.",
                s.SendSlackInput,
                s.SendSlackOutput,
                f"{_TOOLS}.slack_notifier:send_slack_notification",
            ),
            _sender(
                "send_email_notification",
                "Send email notification",
                "Send a text + HTML email to `to[]` through SMTP or SES (MLOPS_EMAIL_BACKEND), from "
                "MLOPS_EMAIL_FROM. Give `subject` + `body`, or a `template` with `variables`.",
                s.SendEmailInput,
                s.SendEmailOutput,
                f"{_TOOLS}.email_notifier:send_email_notification",
            ),
            _sender(
                "send_teams_notification",
                "Send Teams notification",
                f"Post an Adaptive Card to a Microsoft Teams Workflows webhook (TEAMS_WEBHOOK_URL). {_SOURCE}",
                s.SendTeamsInput,
                s.SendResult,
                f"{_TOOLS}.teams_notifier:send_teams_notification",
            ),
            _sender(
                "send_discord_notification",
                "Send Discord notification",
                f"Post embeds to a Discord webhook (DISCORD_WEBHOOK_URL); long text is split or truncated. {_SOURCE}",
                s.SendDiscordInput,
                s.SendDiscordOutput,
                f"{_TOOLS}.discord_notifier:send_discord_notification",
            ),
            _reader(
                "list_notification_templates",
                "List notification templates",
                "List the built-in notification templates with their variables.",
                s.ListTemplatesInput,
                s.ListTemplatesOutput,
                f"{_TOOLS}.template_manager:list_notification_templates",
            ),
            _reader(
                "render_notification_template",
                "Preview notification template",
                "Render a template for every channel (or `channel`) without sending anything.",
                s.RenderTemplateInput,
                s.RenderTemplateOutput,
                f"{_TOOLS}.template_manager:render_notification_template",
            ),
            _sender(
                "notify",
                "Notify several channels",
                f"Send one message to several channels (slack, email, teams, discord) and report each; email goes "
                f"to `to[]` or MLOPS_EMAIL_TO. {_SOURCE} An error only when no channel was delivered.",
                s.NotifyInput,
                s.NotifyOutput,
                f"{_TOOLS}.notify:notify",
            ),
        ]
