"""SecretStore on moto Secrets Manager: prefix, JSON unwrapping, env fallback, caching, no leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mcp_server.common.logger import configure_logging
from mcp_server.common.secrets import SecretStore
from mcp_server.config import Config

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def sm() -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Undo `configure_logging` (root handlers, levels) after the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    noisy = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3", "s3transfer")}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logging.captureWarnings(False)
    for name, level in noisy.items():
        logging.getLogger(name).setLevel(level)


def store(env: dict[str, str] | None = None, **config_env: str) -> SecretStore:
    return SecretStore(Config.from_env(config_env), env=env or {})


def test_reads_secret_under_default_prefix(sm: Any) -> None:
    sm.create_secret(Name="mlops/github-token", SecretString=TOKEN)
    sm.create_secret(Name="github-token", SecretString="unprefixed-decoy")
    assert store().get("github-token", "GITHUB_TOKEN") == TOKEN


def test_reads_secret_under_custom_prefix(sm: Any) -> None:
    sm.create_secret(Name="team-a/slack-webhook", SecretString="https://hooks.slack.com/services/T0/B0/xyz")
    sm.create_secret(Name="mlops/slack-webhook", SecretString="wrong-prefix")
    got = store(MLOPS_SECRETS_PREFIX="team-a/").get("slack-webhook")
    assert got == "https://hooks.slack.com/services/T0/B0/xyz"


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        (json.dumps({"token": TOKEN, "user": "bot"}), TOKEN),
        (json.dumps({"value": "v-1", "note": "x"}), "v-1"),
        (json.dumps({"github-token": "by-name", "other": "x"}), "by-name"),
        (json.dumps({"anything": "only-key"}), "only-key"),
        (json.dumps({"a": "1", "b": "2"}), json.dumps({"a": "1", "b": "2"})),  # ambiguous: kept whole
        (json.dumps(["not", "a", "dict"]), json.dumps(["not", "a", "dict"])),
        ("plain-text-secret", "plain-text-secret"),
    ],
)
def test_json_secret_unwrapping(sm: Any, secret_string: str, expected: str) -> None:
    sm.create_secret(Name="mlops/github-token", SecretString=secret_string)
    assert store().get("github-token") == expected


def test_binary_secret_falls_back_to_env(sm: Any) -> None:
    sm.create_secret(Name="mlops/github-token", SecretBinary=b"\x00\x01")
    assert store(env={"GITHUB_TOKEN": "from-env"}).get("github-token", "GITHUB_TOKEN") == "from-env"


def test_env_var_fallback_when_secret_missing(sm: Any) -> None:
    assert store(env={"GITHUB_TOKEN": "env-token"}).get("github-token", "GITHUB_TOKEN") == "env-token"


def test_secrets_manager_wins_over_env_var(sm: Any) -> None:
    sm.create_secret(Name="mlops/github-token", SecretString=TOKEN)
    assert store(env={"GITHUB_TOKEN": "env-token"}).get("github-token", "GITHUB_TOKEN") == TOKEN


def test_missing_everywhere_is_none(sm: Any) -> None:
    assert store(env={"GITHUB_TOKEN": ""}).get("github-token", "GITHUB_TOKEN") is None
    assert store().get("github-token") is None


def test_values_are_cached_until_cleared(sm: Any) -> None:
    sm.create_secret(Name="mlops/github-token", SecretString="first")
    secrets = store()
    assert secrets.get("github-token") == "first"
    sm.put_secret_value(SecretId="mlops/github-token", SecretString="rotated")
    assert secrets.get("github-token") == "first"  # served from the cache, no new request
    secrets.clear()
    assert secrets.get("github-token") == "rotated"


def test_cache_expires(sm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_server.common import secrets as secrets_module

    sm.create_secret(Name="mlops/github-token", SecretString="first")
    secrets = store()
    assert secrets.get("github-token") == "first"
    sm.put_secret_value(SecretId="mlops/github-token", SecretString="rotated")
    monkeypatch.setattr(secrets_module, "CACHE_SECONDS", 0.0)
    assert secrets.get("github-token") == "rotated"


def test_secret_value_never_logged(sm: Any, restore_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    """With the server's own logging at DEBUG (botocore included), no secret reaches stderr."""
    configure_logging("DEBUG")  # here, not in a fixture: the handler must bind capsys's stderr
    sm.create_secret(Name="mlops/github-token", SecretString=json.dumps({"token": TOKEN}))
    env_secret = "xoxb-" + "1234567890-abcdefghij"
    secrets = store(env={"SLACK_BOT_TOKEN": env_secret})
    assert secrets.get("github-token", "GITHUB_TOKEN") == TOKEN
    assert secrets.get("slack-token", "SLACK_BOT_TOKEN") == env_secret
    assert secrets.get("missing", "NOPE") is None
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.err.splitlines()]
    lookups = [line for line in lines if line["msg"] == "secret lookup"]
    assert {(line["name"], line["source"]) for line in lookups} == {
        ("github-token", "secretsmanager"),
        ("slack-token", "env"),
        ("missing", "missing"),
    }
    for text in (captured.out, captured.err):
        assert TOKEN not in text
        assert env_secret not in text
