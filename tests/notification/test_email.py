"""send_email_notification through a real SMTP server (aiosmtpd) and through SES (moto)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcp_server.common.outbound import OutboundClient, RetryPolicy
from tests.helpers import call, call_error
from tests.notification.conftest import SENDER, TRAINING_DONE
from tests.notification.servers import make_certificate, smtp_server


async def test_smtp_sends_multipart_text_and_html_to_several_recipients(setup) -> None:
    out = await call(
        setup.router,
        "send_email_notification",
        to=["a@example.com", "b@example.org"],
        template="training_completed",
        variables=TRAINING_DONE,
    )
    assert out["sent"] and out["backend"] == "smtp" and out["attempts"] == 1
    assert out["recipients"] == ["a@example.com", "b@example.org"]
    (mail,) = setup.smtp.mails
    assert mail.mail_from == SENDER and mail.rcpt_tos == ["a@example.com", "b@example.org"]
    message = mail.message
    assert message["Subject"] == "Training completed: churn-rf"
    assert message["Message-ID"] == out["message_id"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "completed in 42.5 s." in text and "accuracy: 0.9312" in text
    assert "<th" in html and "0.9312" in html


async def test_html_part_escapes_variable_values(setup) -> None:
    variables = {"run_id": "r1", "stage": "train", "error": "<script>alert(1)</script>"}
    await call(
        setup.router, "send_email_notification", to=["a@example.com"], template="pipeline_failed", variables=variables
    )
    html = setup.smtp.mails[0].message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_subject_and_body_without_template(setup) -> None:
    await call(setup.router, "send_email_notification", to=["a@example.com"], subject="Hello", body="Line 1\n\nLine 2")
    message = setup.smtp.mails[0].message
    assert message["Subject"] == "Hello"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").startswith("Line 1\n\nLine 2")


@pytest.mark.parametrize(
    "bad", ["not-an-address", "a@example.com\r\nBcc: victim@example.com", "Eve <eve@example.com>", "a@b@example.com"]
)
async def test_bad_addresses_are_refused_naming_the_field(setup, bad: str) -> None:
    text = await call_error(setup.router, "send_email_notification", to=["ok@example.com", bad], subject="s", body="b")
    assert "to.1" in text and "email address" in text
    assert setup.smtp.mails == []


async def test_smtp_none_is_refused_for_a_host_not_in_the_allow_list(make_setup, smtp, hooks) -> None:
    setup = make_setup({"MLOPS_OUTBOUND_ALLOW": hooks.origin})
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert "SMTP_HOST" in text and "without TLS" in text and f"smtp://127.0.0.1:{smtp.port}" in text
    assert smtp.mails == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_auth_with_password_from_the_environment(make_setup) -> None:
    with smtp_server(username="mailer", password="s3cret-pass") as server:
        setup = make_setup(
            {"SMTP_PORT": str(server.port), "SMTP_USERNAME": "mailer", "MLOPS_OUTBOUND_ALLOW": server.origin},
            {"SMTP_PASSWORD": "s3cret-pass"},
        )
        await call(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
        assert server.mails[0].authenticated_as == "mailer"
        wrong = make_setup(
            {"SMTP_PORT": str(server.port), "SMTP_USERNAME": "mailer", "MLOPS_OUTBOUND_ALLOW": server.origin},
            {"SMTP_PASSWORD": "wrong-pass"},
        )
        text = await call_error(wrong.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
        assert "refused the login of mailer" in text and "wrong-pass" not in text


async def test_smtp_username_without_password_is_a_config_error(make_setup) -> None:
    setup = make_setup({"SMTP_USERNAME": "mailer"})
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert text.startswith("SMTP_PASSWORD:") and "mlops/smtp-password" in text


async def test_starttls_verifies_the_certificate_for_smtp_host(make_setup, tmp_path: Path) -> None:
    cert = make_certificate("mail.test", tmp_path)
    with smtp_server(username="mailer", password="pw", tls_context=cert.server_context()) as server:
        setup = make_setup(
            {
                "SMTP_HOST": "mail.test",  # resolved by the injected resolver to the loopback server
                "SMTP_PORT": str(server.port),
                "SMTP_SECURITY": "starttls",
                "SMTP_USERNAME": "mailer",
                "MLOPS_OUTBOUND_ALLOW": f"smtp://mail.test:{server.port}",
            },
            {"SMTP_PASSWORD": "pw"},
        )
        setup.router.services.outbound_client = OutboundClient(
            setup.router.config.outbound_allow,
            resolver=lambda host, port: ["127.0.0.1"],
            ssl_context=cert.client_context(),
            retry=RetryPolicy(sleep=setup.sleeps.append),
        )
        await call(setup.router, "send_email_notification", to=["a@example.com"], subject="tls", body="b")
        assert server.mails[0].tls and server.mails[0].authenticated_as == "mailer"

        other = make_certificate("other.test", tmp_path)
        setup.router.services.outbound_client.ssl_context = other.client_context()
        text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
        assert "certificate" in text and len(server.mails) == 1


async def test_starttls_missing_is_never_downgraded(make_setup, smtp) -> None:
    setup = make_setup({"SMTP_SECURITY": "starttls"})  # the plain server offers no STARTTLS
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert "does not offer STARTTLS" in text and smtp.mails == []


async def test_starttls_to_a_private_address_needs_an_allow_entry(make_setup, smtp) -> None:
    setup = make_setup({"SMTP_SECURITY": "starttls", "MLOPS_OUTBOUND_ALLOW": ""})
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert "non-public" in text and smtp.mails == []


async def test_smtp_transient_451_is_retried_then_reported(make_setup) -> None:
    with smtp_server(reply_code=451) as server:
        setup = make_setup({"SMTP_PORT": str(server.port), "MLOPS_OUTBOUND_ALLOW": server.origin})
        text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
        assert "answered 451, after 5 attempts" in text and len(setup.sleeps) == 4


async def test_missing_sender_is_a_config_error(make_setup) -> None:
    setup = make_setup({"MLOPS_EMAIL_FROM": ""})
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert text.startswith("MLOPS_EMAIL_FROM:")


# ---------------------------------------------------------------------------- SES (moto)
def ses_sent(region: str = "us-east-1") -> list[Any]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return list(ses_backends[DEFAULT_ACCOUNT_ID][region].sent_messages)


async def test_ses_sends_the_same_multipart_message(make_setup, aws) -> None:
    import boto3

    boto3.client("ses", region_name="us-east-1").verify_email_identity(EmailAddress=SENDER)
    setup = make_setup({"MLOPS_EMAIL_BACKEND": "ses"})
    out = await call(
        setup.router,
        "send_email_notification",
        to=["a@example.com", "b@example.com"],
        template="model_promoted",
        variables={"model_name": "churn-rf", "version": 3, "status": "production", "previous_version": 2},
    )
    assert out["backend"] == "ses" and out["sent"] and out["message_id"] and out["attempts"] == 1
    (sent,) = ses_sent()
    assert sent.source == SENDER and set(sent.destinations) == {"a@example.com", "b@example.com"}
    raw = sent.raw_data
    assert "Subject: Model promoted: churn-rf v3 to production" in raw and "text/html" in raw
    assert setup.smtp.mails == []


async def test_ses_unverified_sender_is_a_clear_error(make_setup, aws) -> None:
    setup = make_setup({"MLOPS_EMAIL_BACKEND": "ses"})
    text = await call_error(setup.router, "send_email_notification", to=["a@example.com"], subject="s", body="b")
    assert "SES refused the message" in text and "verified SES identity" in text


async def test_implicit_tls_smtp_verifies_the_certificate(make_setup, tmp_path: Path) -> None:
    cert = make_certificate("smtps.test", tmp_path)
    with smtp_server(implicit_tls=cert.server_context()) as server:
        setup = make_setup(
            {
                "SMTP_HOST": "smtps.test",
                "SMTP_PORT": str(server.port),
                "SMTP_SECURITY": "ssl",
                "MLOPS_OUTBOUND_ALLOW": f"smtps://smtps.test:{server.port}",
            }
        )
        client = setup.router.services.outbound_client
        client.resolver = lambda host, port: ["127.0.0.1"]
        client.ssl_context = cert.client_context()
        out = await call(setup.router, "send_email_notification", to=["a@example.com"], subject="ssl", body="b")
        assert out["sent"] and server.mails[0].message["Subject"] == "ssl"
