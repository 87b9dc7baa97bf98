"""Pydantic input and output models of the notification tools."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from mcp_server.capabilities.base import ToolInput, ToolResultModel
from mcp_server.common.outbound import email_address_problem

Channel = Literal["slack", "email", "teams", "discord"]
Scalar = str | int | float | bool | None


def _check_address(address: str) -> str:
    problem = email_address_problem(address)
    if problem:
        raise PydanticCustomError("email", problem)
    return address


EmailAddress = Annotated[str, Field(max_length=254), AfterValidator(_check_address)]
Recipients = Annotated[list[EmailAddress], Field(min_length=1, max_length=50)]
TemplateName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Variables = Annotated[dict[str, Scalar | dict[str, Scalar]], Field(max_length=50)]
_TEMPLATE = "a built-in template (list_notification_templates)"
_VARIABLES = "the template's variables; values are data, never template code"
WebhookUrl = Annotated[
    str | None,
    Field(max_length=2048, description="override of the configured webhook; passes the same outbound checks"),
]


class MessageInput(ToolInput):
    """A message given either as text or as a template with variables."""

    message: str | None = Field(None, min_length=1, max_length=40000, description="the text (or use template)")
    title: str | None = Field(None, max_length=256, description="a heading for `message`")
    template: TemplateName | None = Field(None, description=_TEMPLATE)
    variables: Variables | None = Field(None, description=_VARIABLES)

    @model_validator(mode="after")
    def _one_source(self) -> MessageInput:
        if (self.message is None) == (self.template is None):
            raise PydanticCustomError("message", "give either message or template (with variables), not both")
        if self.variables is not None and self.template is None:
            raise PydanticCustomError("message", "variables need a template")
        return self


class SendResult(ToolResultModel):
    sent: bool
    attempts: int = Field(description="HTTP (or SMTP) attempts, retries included")


# ---------------------------------------------------------------------------- slack
class SendSlackInput(MessageInput):
    channel: str | None = Field(
        None,
        pattern=r"^[#@]?[A-Za-z0-9._-]{1,80}$",
        description="channel name or id (bot token mode); default SLACK_DEFAULT_CHANNEL",
    )
    blocks: list[dict[str, Any]] | None = Field(
        None, min_length=1, max_length=50, description="Block Kit blocks to send instead of the generated ones"
    )
    webhook_url: WebhookUrl = None


class SendSlackOutput(SendResult):
    channel: str | None = Field(description="the channel posted to (null for a webhook: it has its own)")
    method: Literal["webhook", "web_api"]
    ts: str | None = Field(None, description="the message timestamp (Web API)")


# ---------------------------------------------------------------------------- email
class SendEmailInput(ToolInput):
    to: Recipients = Field(description="recipient addresses")
    subject: str | None = Field(None, min_length=1, max_length=250, description="overrides a template's subject")
    body: str | None = Field(None, min_length=1, max_length=100000, description="plain text; HTML is generated")
    template: TemplateName | None = Field(None, description=_TEMPLATE)
    variables: Variables | None = Field(None, description=_VARIABLES)

    @model_validator(mode="after")
    def _one_source(self) -> SendEmailInput:
        if self.template is None and (self.subject is None or self.body is None):
            raise PydanticCustomError("message", "give subject and body, or template (with variables)")
        if self.template is not None and self.body is not None:
            raise PydanticCustomError("message", "give body or template, not both")
        return self


class SendEmailOutput(SendResult):
    message_id: str
    backend: Literal["smtp", "ses"]
    recipients: list[str]


# ---------------------------------------------------------------------------- teams, discord
class SendTeamsInput(MessageInput):
    webhook_url: WebhookUrl = None


class SendDiscordInput(MessageInput):
    webhook_url: WebhookUrl = None


class SendDiscordOutput(SendResult):
    messages: int = Field(description="webhook messages used (a long text is split)")
    truncated: bool


# ---------------------------------------------------------------------------- templates
class ListTemplatesInput(ToolInput):
    pass


class TemplateVariable(ToolResultModel):
    name: str
    required: bool
    description: str


class TemplateInfo(ToolResultModel):
    name: str
    description: str
    variables: list[TemplateVariable]


class ListTemplatesOutput(ToolResultModel):
    templates: list[TemplateInfo]


class RenderTemplateInput(ToolInput):
    template_name: TemplateName = Field(description=_TEMPLATE)
    variables: Variables = Field(description=_VARIABLES)
    channel: Channel | None = Field(None, description="render only this channel's format; default: all")


class RenderTemplateOutput(ToolResultModel):
    subject: str
    text: str
    html: str | None = None
    slack_blocks: list[dict[str, Any]] | None = None
    teams_card: dict[str, Any] | None = Field(None, description="the Adaptive Card (sent inside a message envelope)")
    discord_embed: dict[str, Any] | None = Field(None, description="the first embed")
    discord_messages: int | None = None


# ---------------------------------------------------------------------------- notify
class NotifyInput(MessageInput):
    channels: list[Channel] = Field(min_length=1, max_length=4, description="each at most once")
    to: Recipients | None = Field(None, description="email recipients; default MLOPS_EMAIL_TO")

    @model_validator(mode="after")
    def _distinct(self) -> NotifyInput:
        if len(set(self.channels)) != len(self.channels):
            raise PydanticCustomError("channels", "list each channel once")
        return self


class ChannelResult(ToolResultModel):
    channel: Channel
    sent: bool
    error: str | None = None
    attempts: int | None = None


class NotifyOutput(ToolResultModel):
    results: list[ChannelResult]
    sent_count: int
