"""The HTTP transport's settings and request checks, in-process (the real server over HTTP is
tested in tests/e2e/test_http.py)."""

from __future__ import annotations

import pytest
from starlette.datastructures import Headers

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config
from mcp_server.http_app import (
    HttpSettings,
    RequestGuard,
    default_allowed_hosts,
    host_allowed,
    is_loopback,
    resolve_token,
    settings_from_config,
    token_matches,
)


def test_remote_settings_are_read_from_the_environment() -> None:
    config = Config.from_env(
        {
            "MLOPS_HTTP_TOKEN": "t0k3n-value",
            "MLOPS_ALLOWED_HOSTS": "mcp.example.com, 10.0.0.5:8080",
            "MLOPS_ALLOWED_ORIGINS": "https://App.example.com/",
            "MLOPS_HTTP_MAX_BODY_MB": "2",
            "MLOPS_HTTP_STATELESS": "true",
            "MLOPS_METRICS": "cloudwatch",
            "CLOUDWATCH_LOG_GROUP": "/aws/mcp/unified-mlops-server",
            "CLOUDWATCH_LOG_STREAM": "task-1",
        }
    )
    assert config.http_token == "t0k3n-value"
    assert config.allowed_hosts == ("mcp.example.com", "10.0.0.5:8080")
    assert config.allowed_origins == ("https://app.example.com",)
    assert config.http_max_body_bytes == 2 * 1024**2
    assert config.http_stateless is True
    assert config.metrics == "cloudwatch"
    assert (config.cloudwatch_log_group, config.cloudwatch_log_stream) == ("/aws/mcp/unified-mlops-server", "task-1")


def test_token_is_not_in_the_config_repr() -> None:
    config = Config.from_env({"MLOPS_HTTP_TOKEN": "t0k3n-value"})
    assert "t0k3n-value" not in repr(config)
    assert "t0k3n-value" not in repr(settings_from_config(config, "127.0.0.1", config.http_token))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLOPS_METRICS": "prometheus"}, "MLOPS_METRICS='prometheus' is not one of emf, cloudwatch, off"),
        ({"MLOPS_ALLOWED_ORIGINS": "app.example.com"}, "is not an origin"),
        ({"MLOPS_HTTP_MAX_BODY_MB": "0"}, "MLOPS_HTTP_MAX_BODY_MB=0 is out of range"),
        ({"MLOPS_HTTP_STATELESS": "maybe"}, "MLOPS_HTTP_STATELESS='maybe' is not a boolean"),
    ],
)
def test_bad_remote_setting_gives_one_clear_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Config.from_env(env)


def test_attack_short_token_is_refused_at_start_up() -> None:
    from mcp_server.common.secrets import SecretStore

    config = Config.from_env({"MLOPS_HTTP_TOKEN": "password"})
    with pytest.raises(ConfigError, match="shorter than 16 characters"):
        resolve_token(config, SecretStore(config))
    long_enough = Config.from_env({"MLOPS_HTTP_TOKEN": " 0123456789abcdef "})
    assert resolve_token(long_enough, SecretStore(long_enough)) == "0123456789abcdef"


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.5", "example.com"))


def test_default_hosts_are_the_bound_address_and_localhost() -> None:
    assert default_allowed_hosts("127.0.0.1") == ("127.0.0.1", "localhost", "[::1]")
    assert default_allowed_hosts("::1") == ("[::1]", "localhost", "127.0.0.1")
    assert default_allowed_hosts("0.0.0.0") == ("localhost", "127.0.0.1", "[::1]")  # a wildcard is no Host
    assert default_allowed_hosts("10.0.0.5")[0] == "10.0.0.5"


@pytest.mark.parametrize(
    ("header", "allowed", "ok"),
    [
        ("127.0.0.1:8080", ("127.0.0.1",), True),
        ("LOCALHOST:9", ("localhost",), True),
        ("[::1]:8080", ("[::1]",), True),
        ("mcp.example.com", ("mcp.example.com:443",), False),
        ("mcp.example.com:443", ("mcp.example.com:443",), True),
        ("mcp.example.com:444", ("mcp.example.com:443",), False),
        ("evil.example", ("127.0.0.1", "localhost"), False),
        ("127.0.0.1.evil.example", ("127.0.0.1",), False),
        (None, ("127.0.0.1",), False),
        ("anything", ("*",), True),
    ],
)
def test_host_matching(header: str | None, allowed: tuple[str, ...], ok: bool) -> None:
    assert host_allowed(header, allowed) is ok


def test_token_matching_needs_the_bearer_scheme_and_the_exact_token() -> None:
    assert token_matches("Bearer abc123", "abc123")
    assert token_matches("bearer abc123", "abc123")
    for header in (None, "", "abc123", "Basic abc123", "Bearer abc1234", "Bearer abc12", "Bearer ", "Bearer ABC123"):
        assert not token_matches(header, "abc123"), header


def _check(settings: HttpSettings, **headers: str) -> int | None:
    refusal = RequestGuard(lambda *a: None, settings).check(Headers(headers=headers))  # type: ignore[arg-type]
    return None if refusal is None else refusal.status_code


def test_guard_checks_host_then_origin_then_token() -> None:
    settings = HttpSettings("tok", ("localhost",), ("https://ok.example",), 1024, stateless=False)
    assert _check(settings, host="evil", origin="https://evil", authorization="x") == 421
    assert _check(settings, host="localhost", origin="https://evil", authorization="x") == 403
    assert _check(settings, host="localhost", origin="https://ok.example", authorization="x") == 401
    assert _check(settings, host="localhost", origin="https://ok.example", authorization="Bearer tok") is None
    assert _check(settings, host="localhost", authorization="Bearer tok") is None  # no Origin: not a browser
    open_settings = HttpSettings(None, ("localhost",), (), 1024, stateless=False)
    assert _check(open_settings, host="localhost") is None  # loopback without a token
