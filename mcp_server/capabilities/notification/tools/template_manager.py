"""list_notification_templates and render_notification_template (a preview: nothing is sent)."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification import formats
from mcp_server.capabilities.notification.schemas import (
    ListTemplatesInput,
    ListTemplatesOutput,
    RenderTemplateInput,
    RenderTemplateOutput,
    TemplateInfo,
    TemplateVariable,
)
from mcp_server.capabilities.notification.templates import BUILTIN, render


def list_notification_templates(ctx: ToolContext, params: ListTemplatesInput) -> ToolOutput:
    templates = [
        TemplateInfo(
            name=t.name,
            description=t.description,
            variables=[
                TemplateVariable(name=v.name, required=v.required, description=v.description) for v in t.variables
            ],
        )
        for t in BUILTIN
    ]
    return ToolOutput(data=ListTemplatesOutput(templates=templates), summary=f"{len(templates)} templates")


def render_notification_template(ctx: ToolContext, params: RenderTemplateInput) -> ToolOutput:
    message = render(params.template_name, params.variables, field_name="template_name")
    wanted = params.channel
    out = RenderTemplateOutput(
        subject=message.subject, text=formats.email_text(message), teams_card=None, discord_embed=None
    )
    if wanted in (None, "email"):
        out.html = formats.email_html(message)
    if wanted in (None, "slack"):
        out.slack_blocks = formats.slack_blocks(message)
    if wanted in (None, "teams"):
        out.teams_card = formats.teams_card(message)
    if wanted in (None, "discord"):
        plan = formats.discord_embeds(message)
        out.discord_embed = plan.messages[0][0]
        out.discord_messages = len(plan.messages)
    return ToolOutput(data=out, summary=f"{params.template_name} rendered (preview, nothing sent): {message.subject}")
