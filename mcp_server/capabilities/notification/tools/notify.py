"""notify: one message or template to several channels at once, each reported on its own."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification.schemas import ChannelResult, NotifyInput, NotifyOutput, SendResult
from mcp_server.capabilities.notification.templates import Message
from mcp_server.capabilities.notification.tools.common import message_from
from mcp_server.capabilities.notification.tools.discord_notifier import deliver_discord
from mcp_server.capabilities.notification.tools.email_notifier import deliver_email
from mcp_server.capabilities.notification.tools.slack_notifier import deliver_slack
from mcp_server.capabilities.notification.tools.teams_notifier import deliver_teams
from mcp_server.common.exceptions import ConfigError, MLOpsError
from mcp_server.common.logger import get_logger
from mcp_server.common.outbound import DeliveryError

_log = get_logger(__name__)


def _recipients(ctx: ToolContext, params: NotifyInput) -> list[str]:
    to = list(params.to or ctx.config.email_to)
    if not to:
        raise ConfigError("email needs recipients", field="to", hint="give to[] or set MLOPS_EMAIL_TO")
    return to


def _sender_for(ctx: ToolContext, params: NotifyInput, channel: str) -> Callable[[Message], SendResult]:
    if channel == "slack":
        return lambda m: deliver_slack(ctx, m)
    if channel == "teams":
        return lambda m: deliver_teams(ctx, m)
    if channel == "discord":
        return lambda m: deliver_discord(ctx, m)
    return lambda m: deliver_email(ctx, m, _recipients(ctx, params))


def _deliver(ctx: ToolContext, params: NotifyInput, channel: str, message: Message) -> ChannelResult:
    try:
        result = _sender_for(ctx, params, channel)(message)
    except MLOpsError as exc:
        return ChannelResult(channel=channel, sent=False, error=str(exc), attempts=getattr(exc, "attempts", None))  # type: ignore[arg-type]
    except Exception as exc:  # one channel's bug must not hide the others' results
        _log.exception("notify: %s failed unexpectedly", channel)
        return ChannelResult(channel=channel, sent=False, error=f"{channel} failed unexpectedly ({type(exc).__name__})")  # type: ignore[arg-type]
    return ChannelResult(channel=channel, sent=True, attempts=result.attempts)  # type: ignore[arg-type]


def notify(ctx: ToolContext, params: NotifyInput) -> ToolOutput:
    message = message_from(params)  # a template error stops the call before anything is sent
    with ThreadPoolExecutor(max_workers=len(params.channels), thread_name_prefix="notify") as pool:
        results = list(pool.map(lambda c: _deliver(ctx, params, c, message), params.channels))
    sent = [r.channel for r in results if r.sent]
    if not sent:
        reasons = "; ".join(f"{r.channel}: {r.error}" for r in results)
        raise DeliveryError(f"no channel was delivered ({reasons})", attempts=sum(r.attempts or 0 for r in results))
    failed = [r.channel for r in results if not r.sent]
    summary = f"sent to {', '.join(sent)}" + (f"; failed: {', '.join(failed)}" if failed else "")
    return ToolOutput(data=NotifyOutput(results=results, sent_count=len(sent)), summary=summary)
