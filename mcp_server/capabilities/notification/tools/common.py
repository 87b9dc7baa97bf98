"""What every sender shares: the message from the call's inputs and the destination's secret."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext
from mcp_server.capabilities.notification.schemas import MessageInput
from mcp_server.capabilities.notification.templates import Message, plain_message, render
from mcp_server.common.exceptions import ConfigError


def message_from(params: MessageInput) -> Message:
    if params.template is not None:
        return render(params.template, params.variables)
    return plain_message(params.message or "", params.title)


def secret_destination(
    ctx: ToolContext, override: str | None, secret: str, env_var: str, what: str, override_field: str = "webhook_url"
) -> tuple[str, str]:
    """(value, field to name in errors): the call's override, else `<prefix><secret>` in Secrets
    Manager, else `env_var`. The value is a secret: callers never log or return it."""
    if override:
        return override, override_field
    value = ctx.secrets.get(secret, env_var)
    if not value:
        raise ConfigError(
            f"no {what} is configured",
            field=env_var,
            hint=f"set {env_var} or the Secrets Manager secret {ctx.config.secrets_prefix}{secret}",
        )
    return value, env_var
