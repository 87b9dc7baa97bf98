"""The outbound HTTP client against real servers on loopback: pinned connections, TLS host-name
checks, no redirects, timeouts, retries with Retry-After, and the SSRF attacks it refuses."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.common import outbound
from mcp_server.common.exceptions import AccessDeniedError, InvalidInputError
from mcp_server.common.outbound import (
    DeliveryError,
    OutboundClient,
    PinnedHTTPSConnection,
    RetryPolicy,
    check_url,
    parse_retry_after,
)
from tests.notification.servers import HookServer, Scripted, free_port, https_server, make_certificate


def resolve_to(*addresses: str):  # no DNS in tests
    return lambda host, port: list(addresses)


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with HookServer() as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


def client_for(*allow: str, sleeps: list[float] | None = None, resolver=None, **kwargs) -> OutboundClient:
    waits = sleeps if sleeps is not None else []
    return OutboundClient(
        allow, resolver=resolver or resolve_to("127.0.0.1"), retry=RetryPolicy(sleep=waits.append), **kwargs
    )


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Fail on any connection attempt: a refused URL must never reach the network."""
    attempts: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(outbound.socket, "create_connection", refuse)
    return attempts


# ---------------------------------------------------------------------------- pinning and TLS
def test_post_goes_to_the_checked_address_with_the_host_name_in_host_header(hooks: HookServer) -> None:
    # hooks.test has no DNS entry: only the injected resolver's answer can be where we connect.
    client = client_for(f"http://hooks.test:{hooks.port}")
    response = client.post_json(f"http://hooks.test:{hooks.port}/services/T/B/x", {"text": "hi"}, service="Slack")
    assert response.ok and response.attempts == 1 and response.body == b"ok"
    (received,) = hooks.requests
    assert received.headers["host"] == f"hooks.test:{hooks.port}"
    assert received.json == {"text": "hi"}


def test_https_connects_to_pinned_address_and_verifies_the_host_name(tmp_path: Path) -> None:
    cert = make_certificate("notify.test", tmp_path)
    with https_server(cert) as server:
        client = client_for(f"https://notify.test:{server.port}", ssl_context=cert.client_context())
        response = client.post_json(
            f"https://notify.test:{server.port}/services/T/B/x", {"text": "over tls"}, service="Slack"
        )
        assert response.ok
        assert server.requests[0].headers["host"] == f"notify.test:{server.port}"


def test_https_certificate_for_another_name_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    cert = make_certificate("other.test", tmp_path)
    with https_server(cert) as server:
        client = client_for(f"https://notify.test:{server.port}", ssl_context=cert.client_context())
        with pytest.raises(DeliveryError, match="not valid for that name") as info:
            client.post_json(f"https://notify.test:{server.port}/services/x", {"text": "x"}, service="Slack")
        assert info.value.attempts == 1
        assert server.requests == []


def test_https_connection_is_built_for_the_address_with_the_host_name_as_server_name() -> None:
    client = OutboundClient((), resolver=resolve_to("8.8.8.8"))
    target = client.check("https://hooks.slack.com/services/T/B/x")
    conn = client.connection(target, target.addresses[0], 3.0)
    assert isinstance(conn, PinnedHTTPSConnection)
    assert (conn.address, conn.host, conn.port) == ("8.8.8.8", "hooks.slack.com", 443)
    assert conn.tls_context.check_hostname and conn.tls_context.verify_mode.name == "CERT_REQUIRED"


# ---------------------------------------------------------------------------- redirects, retries, timeouts
def test_redirect_is_not_followed(hooks: HookServer) -> None:
    hooks.script("/services/", Scripted(302, headers={"Location": hooks.url("/elsewhere")}))
    client = client_for(hooks.origin)
    response = client.post_json(hooks.slack_webhook, {"text": "x"}, service="Slack")
    assert response.status == 302
    with pytest.raises(DeliveryError, match=r"redirect.*not followed"):
        response.raise_for_status("Slack")
    assert [r.path for r in hooks.requests] == [hooks.slack_webhook.removeprefix(hooks.origin)]


def test_429_then_success_waits_as_retry_after_says(hooks: HookServer, sleeps: list[float]) -> None:
    hooks.script("/services/", Scripted(429, headers={"Retry-After": "7"}))
    client = client_for(hooks.origin, sleeps=sleeps)
    response = client.post_json(hooks.slack_webhook, {"text": "x"}, service="Slack")
    assert response.ok and response.attempts == 2
    assert sleeps == [7.0]
    assert len(hooks.requests) == 2


def test_persistent_500_gives_up_after_five_attempts_with_bounded_waits(hooks: HookServer, sleeps: list[float]) -> None:
    hooks.script("/services/", *[Scripted(500, b"boom")] * 6)
    client = client_for(hooks.origin, sleeps=sleeps)
    with pytest.raises(DeliveryError, match="HTTP 500, after 5 attempts") as info:
        client.post_json(hooks.slack_webhook, {"text": "x"}, service="Slack")
    assert info.value.attempts == 5 and info.value.status == 500
    assert len(hooks.requests) == 5
    assert len(sleeps) == 4 and sum(sleeps) <= 30
    assert sleeps == sorted(sleeps)  # backoff grows


def test_retry_after_beyond_the_wait_limit_fails_at_once(hooks: HookServer, sleeps: list[float]) -> None:
    hooks.script("/services/", Scripted(503, headers={"Retry-After": "120"}))
    client = client_for(hooks.origin, sleeps=sleeps)
    with pytest.raises(DeliveryError, match="30 s wait limit") as info:
        client.post_json(hooks.slack_webhook, {"text": "x"}, service="Slack")
    assert info.value.attempts == 1 and sleeps == []


def test_4xx_is_not_retried(hooks: HookServer, sleeps: list[float]) -> None:
    hooks.script("/services/", Scripted(404, b"no_service"))
    response = client_for(hooks.origin, sleeps=sleeps).post_json(hooks.slack_webhook, {"text": "x"}, service="Slack")
    assert (response.status, response.attempts, sleeps) == (404, 1, [])
    with pytest.raises(DeliveryError, match=r"HTTP 404: no_service"):
        response.raise_for_status("Slack")


def test_silent_server_times_out_and_the_call_ends() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: [accepted.append(listener.accept()[0]) for _ in range(2)], daemon=True).start()
    port = listener.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}", timeout=0.3)
    client.retry.max_attempts = 2
    started = time.monotonic()
    try:
        with pytest.raises(DeliveryError, match="timed out") as info:
            client.post_json(f"http://127.0.0.1:{port}/x", {}, service="Teams")
    finally:
        for conn in accepted:
            conn.close()
        listener.close()
    assert info.value.attempts == 2
    assert time.monotonic() - started < 5


def test_connection_refused_is_retried_then_reported(sleeps: list[float]) -> None:
    port = free_port()  # nothing listens there
    client = client_for(f"http://127.0.0.1:{port}", sleeps=sleeps)
    with pytest.raises(DeliveryError, match=r"could not reach 127\.0\.0\.1") as info:
        client.post_json(f"http://127.0.0.1:{port}/x", {}, service="Discord")
    assert info.value.attempts == 5 and len(sleeps) == 4


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("garbage") is None and parse_retry_after(None) is None


def test_deadline_bounds_the_whole_call(sleeps: list[float]) -> None:
    clock = iter([0.0, 0.0, 44.0, 44.0, 44.0])
    policy = RetryPolicy(sleep=sleeps.append, clock=lambda: next(clock))

    def always_busy(timeout: float) -> None:
        raise outbound.Retry("busy", retry_after=2.0, status=503)

    with pytest.raises(DeliveryError, match="wait limit") as info:
        policy.run(always_busy, "Teams")
    assert info.value.attempts == 1 and sleeps == []


# ---------------------------------------------------------------------------- SSRF attacks
def test_ssrf_cloud_metadata_address_is_refused(no_connect: list[tuple[str, int]]) -> None:
    client = OutboundClient((), resolver=resolve_to("8.8.8.8"))
    for url in ("https://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/api/token"):
        with pytest.raises(AccessDeniedError):
            client.post_json(url, {}, service="Slack")
    # Even a trusted base cannot point at it: an address literal is its own DNS answer.
    with pytest.raises(AccessDeniedError, match="non-public"):
        check_url(
            "https://169.254.169.254/api/x",
            (),
            trusted_bases=("https://169.254.169.254/api",),
            resolver=resolve_to("8.8.8.8"),
        )
    assert no_connect == []


def test_ssrf_loopback_port_not_in_allow_list_is_refused(hooks: HookServer, no_connect: list[tuple[str, int]]) -> None:
    client = client_for(hooks.origin)
    other = free_port()
    with pytest.raises(AccessDeniedError, match=f"MLOPS_OUTBOUND_ALLOW as http://127.0.0.1:{other}"):
        client.post_json(f"http://127.0.0.1:{other}/services/x", {}, service="Slack")
    with pytest.raises(AccessDeniedError):
        client.post_json(f"https://127.0.0.1:{hooks.port}/services/x", {}, service="Slack")  # https is another entry
    assert no_connect == []


def test_ssrf_ipv6_loopback_is_refused(no_connect: list[tuple[str, int]]) -> None:
    client = OutboundClient(("http://127.0.0.1:8080",), resolver=resolve_to("8.8.8.8"))
    for url in ("http://[::1]:8080/x", "https://[::1]/services/x", "https://[::ffff:127.0.0.1]/services/x"):
        with pytest.raises(AccessDeniedError):
            client.post_json(url, {}, service="Slack")
    assert no_connect == []


def test_ssrf_dns_name_resolving_to_private_address_is_refused(no_connect: list[tuple[str, int]]) -> None:
    for address in ("10.0.0.7", "192.168.1.20", "172.16.5.5", "100.64.0.1", "fe80::1", "::ffff:169.254.169.254"):
        client = OutboundClient((), resolver=resolve_to("8.8.8.8", address))  # one bad answer is enough
        with pytest.raises(AccessDeniedError, match="non-public"):
            client.post_json("https://hooks.slack.com/services/T/B/x", {}, service="Slack")
    assert no_connect == []


def test_ssrf_file_and_other_schemes_are_refused(no_connect: list[tuple[str, int]]) -> None:
    client = OutboundClient(("http://127.0.0.1:8080",), resolver=resolve_to("127.0.0.1"))
    for url in (
        "file:///etc/passwd",
        "gopher://127.0.0.1:8080/x",
        "ftp://hooks.slack.com/services/x",
        "//127.0.0.1:8080/",
    ):
        with pytest.raises(InvalidInputError, match="https://"):
            client.post_json(url, {}, service="Slack")
    assert no_connect == []


def test_ssrf_dot_segments_cannot_escape_the_allowed_path(no_connect: list[tuple[str, int]]) -> None:
    client = OutboundClient((), resolver=resolve_to("8.8.8.8"))
    for url in ("https://hooks.slack.com/services/../api/x", "https://discord.com/api/webhooks/%2e%2e/users/@me"):
        with pytest.raises(InvalidInputError, match="path segments"):
            client.post_json(url, {}, service="Slack")
    assert no_connect == []


def test_ssrf_redirect_to_metadata_is_not_followed(hooks: HookServer) -> None:
    hooks.script("/api/webhooks/", Scripted(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    response = client_for(hooks.origin).post_json(hooks.discord_webhook, {"content": "x"}, service="Discord")
    assert response.status == 307 and len(hooks.requests) == 1


def test_error_texts_never_carry_the_webhook_path(hooks: HookServer, sleeps: list[float]) -> None:
    hooks.script("/services/", *[Scripted(500)] * 5)
    with pytest.raises(DeliveryError) as info:
        client_for(hooks.origin, sleeps=sleeps).post_json(hooks.slack_webhook, {}, service="Slack")
    assert "webhooksecretpart" not in str(info.value)


def test_calls_sharing_a_start_share_the_deadline() -> None:
    # A multi-part send (Discord) passes the time its tool call started: a late part is not sent.
    policy = RetryPolicy(sleep=lambda s: None, clock=lambda: 50.0)
    called: list[float] = []
    with pytest.raises(DeliveryError, match="ran out of its 45 s") as info:
        policy.run(called.append, "Discord", started=0.0)
    assert info.value.attempts == 0 and called == []
    assert policy.run(lambda timeout: timeout, "Discord", started=20.0) == (15.0, 1)  # the rest of the budget
