"""The notification settings: parsed from the environment, bad values refused at start-up."""

from __future__ import annotations

import pytest

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config


def test_notification_defaults() -> None:
    config = Config.from_env({})
    assert config.slack_api_url == "https://slack.com/api/" and config.slack_default_channel is None
    assert (config.email_backend, config.email_from, config.email_to) == ("smtp", None, ())
    assert (config.smtp_host, config.smtp_port, config.smtp_security, config.smtp_username) == (
        None,
        587,
        "starttls",
        None,
    )


def test_notification_settings_are_parsed() -> None:
    config = Config.from_env(
        {
            "SLACK_API_URL": "https://slack.example.com/api",
            "SLACK_DEFAULT_CHANNEL": " #ml ",
            "MLOPS_EMAIL_BACKEND": "SES",
            "MLOPS_EMAIL_FROM": "bot@example.com",
            "MLOPS_EMAIL_TO": "a@example.com, b@example.org",
            "SMTP_HOST": "smtp.example.com",
            "SMTP_SECURITY": "ssl",
            "SMTP_USERNAME": "bot",
        }
    )
    assert config.slack_api_url == "https://slack.example.com/api/"
    assert config.slack_default_channel == "#ml"
    assert config.email_backend == "ses" and config.email_from == "bot@example.com"
    assert config.email_to == ("a@example.com", "b@example.org")
    assert (config.smtp_host, config.smtp_port, config.smtp_security) == ("smtp.example.com", 465, "ssl")
    assert Config.from_env({"SMTP_SECURITY": "none"}).smtp_port == 25
    assert Config.from_env({"SMTP_PORT": "2525"}).smtp_port == 2525


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY='tls' is not one of starttls, ssl, none"),
        ({"MLOPS_EMAIL_BACKEND": "sendmail"}, "MLOPS_EMAIL_BACKEND='sendmail' is not smtp or ses"),
        ({"MLOPS_EMAIL_TO": "a@example.com, nobody"}, "MLOPS_EMAIL_TO: 'nobody' is not an email address"),
        ({"MLOPS_EMAIL_FROM": "a@example.com,b@example.com"}, "MLOPS_EMAIL_FROM must be one address"),
        ({"SMTP_PORT": "70000"}, "SMTP_PORT=70000 is out of range"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL='slack.com/api' is not an http(s) URL"),
    ],
)
def test_bad_notification_settings_stop_start_up_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_env(env)
    assert str(info.value).startswith(message)
