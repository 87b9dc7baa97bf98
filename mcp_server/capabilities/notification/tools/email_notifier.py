"""send_email_notification: multipart text + HTML mail through SMTP or Amazon SES.

SMTP connects to the address the outbound check returned (the host name still drives STARTTLS /
TLS certificate checks), uses STARTTLS or TLS by `SMTP_SECURITY` and never falls back to plain
text when STARTTLS is missing. Plain `none` is only for a server listed in MLOPS_OUTBOUND_ALLOW.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.notification.formats import email_html, email_text
from mcp_server.capabilities.notification.schemas import SendEmailInput, SendEmailOutput
from mcp_server.capabilities.notification.templates import Message, plain_message, render
from mcp_server.common.exceptions import ConfigError
from mcp_server.common.outbound import DeliveryError, Retry, Target


class PinnedSMTP(smtplib.SMTP):
    """SMTP to a checked address; `starttls` verifies the certificate for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        self.address = address
        super().__init__(host, port, timeout=timeout)  # connects; `host` is kept for STARTTLS

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self.address, port), timeout, self.source_address)


class PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit TLS (port 465) to a checked address, certificate checked for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        self.address = address
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = socket.create_connection((self.address, port), timeout, self.source_address)
        return self.context.wrap_socket(sock, server_hostname=host)


def build_mime(message: Message, sender: str, to: list[str]) -> EmailMessage:
    mime = EmailMessage()
    mime["Subject"] = " ".join(message.subject.split())
    mime["From"] = sender
    mime["To"] = ", ".join(to)
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[1])
    mime.set_content(email_text(message))
    mime.add_alternative(email_html(message), subtype="html")
    return mime


def _sender(ctx: ToolContext) -> str:
    if not ctx.config.email_from:
        raise ConfigError("no sender address is configured", field="MLOPS_EMAIL_FROM", hint="set MLOPS_EMAIL_FROM")
    return ctx.config.email_from


def _connect(target: Target, address: str, security: str, timeout: float, context: ssl.SSLContext) -> smtplib.SMTP:
    if security == "ssl":
        return PinnedSMTPSSL(target.host, target.port, address, timeout, context)
    return PinnedSMTP(target.host, target.port, address, timeout)


def _session(smtp: smtplib.SMTP, target: Target, settings: _Smtp, mime: EmailMessage) -> None:
    """One SMTP conversation; transient failures raise Retry, permanent ones DeliveryError."""
    try:
        smtp.ehlo()
        if settings.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise DeliveryError(
                    f"the SMTP server {target.host} does not offer STARTTLS; nothing was sent",
                    attempts=1,
                    field="SMTP_SECURITY",
                    hint="use SMTP_SECURITY=ssl, or none for a test server listed in MLOPS_OUTBOUND_ALLOW",
                )
            smtp.starttls(context=settings.context)
            smtp.ehlo()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(mime)
    except ssl.SSLCertVerificationError:
        raise _bad_certificate(target) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(
            f"the SMTP server refused the login of {settings.username} ({exc.smtp_code})",
            attempts=1,
            field="SMTP_USERNAME",
            hint="check SMTP_USERNAME and the SMTP password",
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        refused = ", ".join(sorted(exc.recipients))
        raise DeliveryError(f"the SMTP server refused the recipients {refused}", attempts=1, field="to") from None
    except smtplib.SMTPResponseException as exc:
        reason = f"the SMTP server answered {exc.smtp_code}"
        if 400 <= exc.smtp_code < 500:
            raise Retry(reason) from None
        raise DeliveryError(reason, attempts=1) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise Retry(f"the SMTP server {target.host} dropped the connection ({type(exc).__name__})") from None
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _bad_certificate(target: Target) -> DeliveryError:
    return DeliveryError(
        f"the TLS certificate of {target.host} is not valid for that name; nothing was sent",
        attempts=1,
        field="SMTP_HOST",
    )


@dataclass(frozen=True)
class _Smtp:
    security: str
    username: str | None
    password: str | None
    context: ssl.SSLContext


def send_via_smtp(ctx: ToolContext, mime: EmailMessage) -> tuple[str, int]:
    config = ctx.config
    if not config.smtp_host:
        raise ConfigError(
            "no SMTP server is configured", field="SMTP_HOST", hint="set SMTP_HOST (or MLOPS_EMAIL_BACKEND=ses)"
        )
    client = ctx.services.outbound
    host, port, security = config.smtp_host, config.smtp_port, config.smtp_security
    scheme = "smtps" if security == "ssl" and f"smtps://{host}:{port}" in client.allow_entries else "smtp"
    target = client.check_host(scheme, host, port, trusted=security != "none", field="SMTP_HOST")
    password = None
    if config.smtp_username:
        password = ctx.secrets.get("smtp-password", "SMTP_PASSWORD")
        if not password:
            raise ConfigError(
                "SMTP_USERNAME is set but no password is configured",
                field="SMTP_PASSWORD",
                hint=f"set SMTP_PASSWORD or the secret {config.secrets_prefix}smtp-password",
            )
    settings = _Smtp(security, config.smtp_username, password, client.ssl_context)

    def attempt(remaining: float) -> None:
        last: Exception | None = None
        for address in target.addresses:
            try:
                smtp = _connect(target, address, security, min(client.timeout, remaining), settings.context)
            except ssl.SSLCertVerificationError:
                raise _bad_certificate(target) from None
            except (OSError, smtplib.SMTPException) as exc:
                last = exc
                continue
            _session(smtp, target, settings, mime)
            return
        raise Retry(f"could not reach the SMTP server {target.host}:{target.port} ({type(last).__name__})")

    _, attempts = client.retry.run(attempt, "SMTP")
    return str(mime["Message-ID"]), attempts


def send_via_ses(ctx: ToolContext, mime: EmailMessage, sender: str, to: list[str]) -> tuple[str, int]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = ctx.services.aws("ses").send_raw_email(
            Source=sender, Destinations=to, RawMessage={"Data": mime.as_bytes()}
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise DeliveryError(
            f"SES refused the message ({error.get('Code', 'error')}: {error.get('Message', '')})",
            attempts=int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1,
            hint="the sender (MLOPS_EMAIL_FROM) must be a verified SES identity; in the SES sandbox, recipients too",
        ) from None
    except BotoCoreError as exc:
        raise DeliveryError(f"SES could not be reached ({type(exc).__name__})", attempts=1) from None
    return str(response["MessageId"]), int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) + 1


def deliver_email(ctx: ToolContext, message: Message, to: list[str]) -> SendEmailOutput:
    sender = _sender(ctx)
    mime = build_mime(message, sender, to)
    backend = ctx.config.email_backend
    if backend == "ses":
        message_id, attempts = send_via_ses(ctx, mime, sender, to)
    else:
        message_id, attempts = send_via_smtp(ctx, mime)
    return SendEmailOutput(
        sent=True,
        attempts=attempts,
        message_id=message_id,
        backend="ses" if backend == "ses" else "smtp",
        recipients=to,
    )


def send_email_notification(ctx: ToolContext, params: SendEmailInput) -> ToolOutput:
    if params.template is not None:
        message = render(params.template, params.variables)
        if params.subject:
            message = replace(message, subject=params.subject)
    else:
        message = plain_message(params.body or "", params.subject)
    data = deliver_email(ctx, message, list(params.to))
    return ToolOutput(data=data, summary=f"Email sent to {len(data.recipients)} recipient(s) via {data.backend}")
