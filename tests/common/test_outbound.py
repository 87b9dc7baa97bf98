"""The outbound URL policy: allow-list, https only, no private answers unless explicitly allowed."""

from __future__ import annotations

import pytest

from mcp_server.common.exceptions import AccessDeniedError, ConfigError, InvalidInputError
from mcp_server.common.outbound import check_host, check_url, parse_allow_entries


def resolve_to(*addresses: str):  # an injected resolver: no DNS in tests
    return lambda host, port: list(addresses)


PUBLIC = resolve_to("8.8.8.8")


def test_builtin_slack_webhook_is_allowed_and_pinned_to_checked_address() -> None:
    target = check_url("https://hooks.slack.com/services/T/B/x", (), resolver=PUBLIC)
    assert target.host == "hooks.slack.com" and target.port == 443 and target.addresses == ("8.8.8.8",)
    assert not target.explicitly_allowed


def test_builtin_host_with_wrong_path_is_refused() -> None:
    with pytest.raises(AccessDeniedError, match="allow-list"):
        check_url("https://discord.com/oauth2/x", (), resolver=PUBLIC)


def test_plain_http_refused_unless_listed() -> None:
    with pytest.raises(AccessDeniedError, match=r"MLOPS_OUTBOUND_ALLOW as http://127\.0\.0\.1:8080"):
        check_url("http://127.0.0.1:8080/hook", (), resolver=resolve_to("127.0.0.1"))
    target = check_url("http://127.0.0.1:8080/hook", ("http://127.0.0.1:8080",), resolver=resolve_to("127.0.0.1"))
    assert target.explicitly_allowed


def test_allow_entry_matches_port_and_host_exactly() -> None:
    allow = ("http://127.0.0.1:8080",)
    with pytest.raises(AccessDeniedError):
        check_url("http://127.0.0.1:8081/", allow, resolver=resolve_to("127.0.0.1"))
    with pytest.raises(AccessDeniedError):
        check_url("http://localhost:8080/", allow, resolver=resolve_to("127.0.0.1"))


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.5", "127.0.0.1", "::1", "100.64.1.1", "fd00:ec2::254"])
def test_allowed_name_resolving_to_non_public_address_is_refused(address: str) -> None:
    with pytest.raises(AccessDeniedError, match="non-public"):
        check_url("https://hooks.slack.com/services/x", (), resolver=resolve_to(address))


def test_trusted_base_allows_its_path_only() -> None:
    bases = ("https://ghe.example.com/api/v3",)
    assert check_url("https://ghe.example.com/api/v3/repos/a/b", (), trusted_bases=bases, resolver=PUBLIC)
    with pytest.raises(AccessDeniedError):
        check_url("https://ghe.example.com/other", (), trusted_bases=bases, resolver=PUBLIC)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://x/y", "not a url", "https://user:pw@hooks.slack.com/services/x"]
)
def test_bad_schemes_and_credentials_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError):
        check_url(url, (), resolver=PUBLIC)


def test_error_text_never_carries_the_url_path() -> None:
    with pytest.raises(AccessDeniedError) as info:
        check_url("https://evil.example/api/webhooks/SECRETPART", (), resolver=PUBLIC)
    assert "SECRETPART" not in str(info.value)


def test_allow_entries_are_normalised_and_validated() -> None:
    assert parse_allow_entries("http://LocalHost:8025, smtp://127.0.0.1") == (
        "http://localhost:8025",
        "smtp://127.0.0.1:25",
    )
    with pytest.raises(ConfigError, match="scheme://host"):
        parse_allow_entries("127.0.0.1:80")


def test_address_literal_is_its_own_answer_whatever_the_resolver_says() -> None:
    # A resolver (or DNS) cannot launder 10.0.0.5 into a public address.
    bases = ("https://10.0.0.5/api",)
    with pytest.raises(AccessDeniedError, match=r"non-public address \(10\.0\.0\.5\)"):
        check_url("https://10.0.0.5/api/x", (), trusted_bases=bases, resolver=PUBLIC)


@pytest.mark.parametrize(
    "url", ["https://hooks.slack.com./services/x", "https://hooks_slack com/services/x", "https://a..b/x"]
)
def test_malformed_host_names_are_refused(url: str) -> None:
    with pytest.raises((InvalidInputError, AccessDeniedError)):
        check_url(url, (), resolver=PUBLIC)


def test_query_is_kept_for_the_request_but_not_matched() -> None:
    target = check_url("https://prod-1.westus.logic.azure.com/workflows/x/invoke?sig=abc", (), resolver=PUBLIC)
    assert (target.path, target.query) == ("/workflows/x/invoke", "sig=abc")


def test_smtp_host_checks() -> None:
    allow = ("smtp://127.0.0.1:2525",)
    assert check_host("smtp", "127.0.0.1", 2525, allow, trusted=False, resolver=PUBLIC).explicitly_allowed
    with pytest.raises(AccessDeniedError, match="without TLS"):
        check_host("smtp", "mail.example.com", 25, allow, trusted=False, resolver=PUBLIC)
    assert check_host("smtp", "mail.example.com", 587, allow, trusted=True, resolver=PUBLIC).addresses == ("8.8.8.8",)
    with pytest.raises(AccessDeniedError, match="non-public"):
        check_host("smtp", "mail.example.com", 587, allow, trusted=True, resolver=resolve_to("192.168.0.9"))


def test_builtin_hosts_only_on_port_443() -> None:
    assert check_url("https://hooks.slack.com:443/services/x", (), resolver=PUBLIC).port == 443
    with pytest.raises(AccessDeniedError, match="allow-list"):
        check_url("https://hooks.slack.com:8443/services/x", (), resolver=PUBLIC)


def test_trusted_base_matches_scheme_and_port_too() -> None:
    bases = ("https://ghe.example.com:8443/api/v3",)
    assert check_url("https://ghe.example.com:8443/api/v3/repos", (), trusted_bases=bases, resolver=PUBLIC)
    with pytest.raises(AccessDeniedError):
        check_url("https://ghe.example.com/api/v3/repos", (), trusted_bases=bases, resolver=PUBLIC)
    with pytest.raises(AccessDeniedError):  # a plain-http base is not trusted for https either way
        check_url(
            "https://ghe.example.com/api/v3/repos",
            (),
            trusted_bases=("http://ghe.example.com/api/v3",),
            resolver=PUBLIC,
        )


def test_smtp_entries_do_not_make_smtp_urls_http_targets() -> None:
    with pytest.raises(InvalidInputError, match="https://"):
        check_url("smtp://127.0.0.1:2525/", ("smtp://127.0.0.1:2525",), resolver=resolve_to("127.0.0.1"))


@pytest.mark.parametrize(
    "url", ["https://hooks.slack.com/services/a b", "https://hooks.slack.com/services/x\r\nHost: evil"]
)
def test_spaces_and_control_characters_are_refused(url: str) -> None:
    with pytest.raises(InvalidInputError, match="control characters"):
        check_url(url, (), resolver=PUBLIC)
