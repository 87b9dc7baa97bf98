"""Outbound safety: which URLs the server may call, checked before any connection is made.

Every channel that talks to the outside (notifications, GitHub) asks `check_url` first and then
connects only to the addresses it returned (so a DNS answer cannot change between the check and
the connection). Rules (TOOLS.md section 6):
- HTTPS only, to a host (and path) on the built-in allow-list or in `trusted_bases` (settings
  such as the Slack or GitHub API URL);
- `MLOPS_OUTBOUND_ALLOW` entries (`scheme://host[:port]`, matched exactly) are trusted as written:
  only they may be plain `http`, loopback or private (that is how tests reach 127.0.0.1);
- every other DNS answer must be a public address: loopback, private, link-local, CGNAT,
  multicast, reserved and cloud-metadata addresses are refused.
Messages name the host, never the whole URL: a webhook URL's path is a bearer secret.

`OutboundClient` is the one HTTP client those channels send through: it connects to the checked
address (sending the hostname as Host header, TLS server name and certificate name), never follows
a redirect, puts a timeout on every call and retries 429 and 5xx with backoff honouring
`Retry-After` (at most 5 attempts and 30 s of waiting, so a call ends well inside a client's 60 s).
`RetryPolicy` is the same retry loop for other protocols (SMTP). A tool gets the process-wide
client as `ctx.services.outbound` and calls e.g.
`client.request("GET", url, service="GitHub", headers=..., trusted_bases=(api_url,), field="GITHUB_API_URL")`;
a non-2xx answer other than 429/5xx comes back as a `Response` (`raise_for_status` makes it an
error), a final failure raises `DeliveryError` with `attempts`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from mcp_server.common.exceptions import AccessDeniedError, ConfigError, InvalidInputError, MLOpsError
from mcp_server.common.logger import MASK, get_logger, log_event, redact

if TYPE_CHECKING:
    pass

DEFAULT_PORTS = {"https": 443, "http": 80, "smtp": 25, "smtps": 465}

# (host pattern, path prefix): the public services a channel may reach without configuration.
BUILTIN_ALLOW: tuple[tuple[str, str], ...] = (
    ("hooks.slack.com", "/services/"),
    ("discord.com", "/api/webhooks/"),
    ("discordapp.com", "/api/webhooks/"),
    ("*.logic.azure.com", "/"),
    ("*.environment.api.powerplatform.com", "/"),
)

_METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")

Resolver = Callable[[str, int], list[str]]
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$")
_log = get_logger(__name__)


_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9-]{1,63})+$"
)


def email_address_problem(address: str) -> str | None:
    """Why `address` is not a plain `user@domain` mail address (None when it is). Display names,
    line breaks and several addresses in one string are refused: each would let a value add
    headers or recipients."""
    if len(address) > 254 or not _EMAIL.match(address):
        return "is not an email address like name@example.com"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInputError(f"cannot resolve host {host!r} ({exc.strerror})") from None
    return sorted({str(info[4][0]) for info in infos})


@dataclass(frozen=True)
class Target:
    """A checked destination: connect to one of `addresses`, sending `host` as the server name."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]
    explicitly_allowed: bool  # listed in MLOPS_OUTBOUND_ALLOW
    query: str = ""

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_allow_entries(raw: str, setting: str = "MLOPS_OUTBOUND_ALLOW") -> tuple[str, ...]:
    """`scheme://host[:port]` entries, normalised to `scheme://host:port` (host lower-cased)."""
    entries = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname or parts.username or parts.path not in ("", "/"):
            raise ConfigError(
                f"{setting} entry {item!r} is not scheme://host[:port]; use e.g. http://127.0.0.1:8025 "
                f"(schemes: {', '.join(DEFAULT_PORTS)})"
            )
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError:
            raise ConfigError(f"{setting} entry {item!r} has an invalid port") from None
        entries.append(f"{scheme}://{parts.hostname.lower()}:{port}")
    return tuple(entries)


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT):
        return False
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _resolve(host: str, port: int, resolver: Resolver) -> tuple[str, ...]:
    # An address literal is its own answer: no resolver may turn 169.254.169.254 into something else.
    literal = _literal_address(host)
    return (literal,) if literal else tuple(resolver(host, port))


def _has_dot_segment(path: str) -> bool:
    # `/services/../api` would pass a prefix check and then be normalised by the server.
    return any(segment in (".", "..") for segment in unquote(path).replace("\\", "/").split("/"))


def check_host(
    scheme: str,
    host: str,
    port: int,
    allow_entries: Sequence[str],
    *,
    trusted: bool,
    resolver: Resolver = system_resolver,
    field: str = "host",
) -> Target:
    """Check a non-HTTP destination (an SMTP server). `trusted`: configured by the operator and
    protected by TLS, so it needs no allow-list entry, but its DNS answers must still be public."""
    host = host.strip().lower().rstrip(".")
    if not (_literal_address(host) or _HOSTNAME.match(host)):
        raise InvalidInputError(f"{host!r} is not a host name", field=field)
    origin = f"{scheme}://{host}:{port}"
    if origin in allow_entries:
        return Target(scheme, host, port, "", _resolve(host, port, resolver), True)
    if not trusted:
        raise AccessDeniedError(
            f"{host}:{port} is not allowed without TLS",
            field=field,
            hint=f"use TLS, or list the server in MLOPS_OUTBOUND_ALLOW as {origin}",
        )
    addresses = _resolve(host, port, resolver)
    _refuse_non_public(host, addresses, field)
    return Target(scheme, host, port, "", addresses, False)


def _refuse_non_public(host: str, addresses: Sequence[str], field: str) -> None:
    blocked = [a for a in addresses if not is_public_address(a)]
    if not addresses or blocked:
        raise AccessDeniedError(
            f"host {host} resolves to a non-public address ({', '.join(blocked) or 'none'})",
            field=field,
            hint="loopback, private, link-local and metadata addresses need an MLOPS_OUTBOUND_ALLOW entry",
        )


def _on_builtin_list(host: str, port: int, path: str, trusted_bases: Sequence[str]) -> bool:
    """An https destination on the built-in list (port 443) or under a trusted base URL (same
    host, port and path prefix)."""
    for pattern, prefix in BUILTIN_ALLOW:
        if port == 443 and fnmatchcase(host, pattern) and path.startswith(prefix):
            return True
    for base in trusted_bases:
        try:
            parts = urlsplit(base)
            base_port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 0)
        except ValueError:
            continue
        base_path = parts.path.rstrip("/")
        if (
            parts.scheme.lower() == "https"
            and (parts.hostname or "").lower() == host
            and base_port == port
            and (path == base_path or path.startswith(base_path + "/"))
        ):
            return True
    return False


def check_url(
    url: str,
    allow_entries: Sequence[str],
    *,
    trusted_bases: Sequence[str] = (),
    resolver: Resolver = system_resolver,
    field: str = "url",
) -> Target:
    """Check `url` against the outbound rules; the returned target says where to connect."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port_given = parts.port
    except ValueError:
        raise InvalidInputError("is not a valid URL", field=field) from None
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise InvalidInputError("must not contain spaces or control characters", field=field)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or scheme not in ("https", "http"):
        raise InvalidInputError(
            "must be an https:// URL", field=field, hint="give the full webhook or API URL, starting with https://"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("must not carry credentials (user:password@)", field=field)
    if not (_literal_address(host) or _HOSTNAME.match(host)):
        raise InvalidInputError("does not name a valid host", field=field)
    path = parts.path or "/"
    if _has_dot_segment(path):
        raise InvalidInputError("must not contain '.' or '..' path segments", field=field)
    port = port_given or DEFAULT_PORTS[scheme]
    origin = f"{scheme}://{host}:{port}"
    if origin in allow_entries:
        return Target(scheme, host, port, path, _resolve(host, port, resolver), True, parts.query)
    if scheme != "https":
        raise AccessDeniedError(
            f"{scheme}:// to {host} is not allowed: outbound calls use https",
            field=field,
            hint=f"a test or internal server must be listed in MLOPS_OUTBOUND_ALLOW as {origin}",
        )
    if not _on_builtin_list(host, port, path, trusted_bases):
        raise AccessDeniedError(
            f"host {host} is not on the outbound allow-list",
            field=field,
            hint="use the service's own webhook URL, or add the host to MLOPS_OUTBOUND_ALLOW",
        )
    addresses = _resolve(host, port, resolver)
    _refuse_non_public(host, addresses, field)
    return Target(scheme, host, port, path, addresses, False, parts.query)


# ---------------------------------------------------------------------------- the outbound client
MAX_ATTEMPTS = 5
MAX_TOTAL_WAIT_SECONDS = 30.0
DEADLINE_SECONDS = 45.0  # a whole call, waits and attempts included: well inside a client's 60 s
MAX_RESPONSE_BYTES = 1024 * 1024
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")


class DeliveryError(MLOpsError):
    """A destination refused or never answered; `attempts` says how often it was tried."""

    kind = "delivery_failed"

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        status: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.attempts = attempts
        self.status = status
        super().__init__(message, field=field, hint=hint)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "attempts": self.attempts, "status": self.status}


class Retry(Exception):  # a signal from one attempt to the retry loop, not a failure
    """Raised by an attempt that may succeed later (429, 5xx, a dropped connection)."""

    def __init__(self, reason: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status


@dataclass
class RetryPolicy:
    """At most `max_attempts` tries, exponential backoff with jitter (or the server's
    `Retry-After`), at most `max_total_wait` seconds of waiting and `deadline` seconds in all.
    Tests pass a `sleep` that records instead of waiting."""

    max_attempts: int = MAX_ATTEMPTS
    max_total_wait: float = MAX_TOTAL_WAIT_SECONDS
    deadline: float = DEADLINE_SECONDS
    backoff_base: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def run(self, attempt: Callable[[float], T], service: str, *, started: float | None = None) -> tuple[T, int]:
        """Call `attempt(timeout)` until it returns (value, attempts) or gives up with DeliveryError.
        `started` (a `clock()` value) lets several calls that make up one tool call share the deadline."""
        started = self.clock() if started is None else started
        waited = 0.0
        number = 0
        while True:
            remaining = self.deadline - (self.clock() - started)
            if remaining < 1.0:
                raise DeliveryError(
                    f"{service}: the call ran out of its {self.deadline:.0f} s", attempts=number, hint="try again later"
                )
            number += 1
            try:
                return attempt(remaining), number
            except Retry as retry:
                last = retry
            delay = self._delay(number, last.retry_after)
            elapsed = self.clock() - started
            if number >= self.max_attempts:
                reason = f"{last.reason}, after {number} attempts"
            elif waited + delay > self.max_total_wait or elapsed + delay >= self.deadline:
                limit = self.max_total_wait
                reason = f"{last.reason}; retrying after {delay:.0f} s would exceed the {limit:.0f} s wait limit"
            else:
                log_event(_log, 20, "outbound retry", service=service, attempt=number, wait=round(delay, 2))
                self.sleep(delay)
                waited += delay
                continue
            raise DeliveryError(
                f"{service}: {reason}",
                attempts=number,
                status=last.status,
                hint="the service is failing or rate-limiting; try again later",
            )

    def _delay(self, number: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return max(0.0, retry_after)
        return self.backoff_base * (2 ** (number - 1)) * (0.5 + random.random() / 2)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    attempts: int = 1
    secrets: tuple[str, ...] = ()  # the request's path and query: masked if the body echoes them

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self, limit: int = 300) -> str:
        """The body as text, shortened and with secret-looking values masked (safe for messages)."""
        text = self.body[: limit * 4].decode("utf-8", "replace").strip()
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = text if len(text) <= limit else text[:limit] + "..."
        return str(redact(text))

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def raise_for_status(self, service: str, field: str | None = None) -> Response:
        if self.ok:
            return self
        if 300 <= self.status < 400:
            message = f"{service} answered with a redirect (HTTP {self.status}), which is not followed"
            hint = "use the final webhook or API URL itself"
        else:
            message = f"{service} refused the request (HTTP {self.status}: {self.text() or 'no body'})"
            hint = "check the webhook URL or token and the message"
        raise DeliveryError(message, attempts=self.attempts, status=self.status, field=field, hint=hint)


def default_ssl_context() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with botocore
        return ssl.create_default_context()


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to `address`, with the checked host name in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to `address`: the host name is sent as SNI and the certificate must be valid for it."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.host)


@dataclass
class OutboundClient:
    """The HTTP client of every outbound channel (one per server: `Services.outbound`);
    tests construct it with their own resolver, TLS context and retry policy."""

    allow_entries: Sequence[str]
    resolver: Resolver = system_resolver
    ssl_context: ssl.SSLContext = field(default_factory=default_ssl_context)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = 10.0  # connect and each read; also capped by the retry deadline

    def check(self, url: str, *, trusted_bases: Sequence[str] = (), field: str = "url") -> Target:
        return check_url(url, self.allow_entries, trusted_bases=trusted_bases, resolver=self.resolver, field=field)

    def check_host(self, scheme: str, host: str, port: int, *, trusted: bool, field: str = "host") -> Target:
        return check_host(scheme, host, port, self.allow_entries, trusted=trusted, resolver=self.resolver, field=field)

    def post_json(
        self,
        url: str,
        payload: Any,
        *,
        service: str,
        headers: Mapping[str, str] | None = None,
        trusted_bases: Sequence[str] = (),
        field: str = "url",
        started: float | None = None,
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return self.request(
            "POST",
            url,
            body=body,
            headers=all_headers,
            service=service,
            trusted_bases=trusted_bases,
            field=field,
            started=started,
        )

    def request(
        self,
        method: str,
        url: str,
        *,
        service: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        trusted_bases: Sequence[str] = (),
        field: str = "url",
        started: float | None = None,
    ) -> Response:
        """Send once per attempt to the checked address; 429/5xx and dropped connections are
        retried. Returns the last response (any status but those) with `attempts`. `started`: see
        `RetryPolicy.run`."""
        target = self.check(url, trusted_bases=trusted_bases, field=field)
        path = target.path + (f"?{target.query}" if target.query else "")
        send_headers = {"User-Agent": "unified-mlops-mcp", "Accept": "application/json", **(headers or {})}

        def attempt(remaining: float) -> Response:
            return self._send(target, method, path, body, send_headers, min(self.timeout, remaining), service)

        response, attempts = self.retry.run(attempt, service, started=started)
        # The host only: the path and query of a webhook URL are its secret.
        log_event(
            _log, 20, "outbound call", service=service, host=target.host, status=response.status, attempts=attempts
        )
        secrets = tuple(s for s in (target.path, target.query) if len(s) > 1)
        return Response(response.status, response.headers, response.body, attempts, secrets)

    def connection(self, target: Target, address: str, timeout: float) -> http.client.HTTPConnection:
        """The connection to one checked address of `target` (pinned: no second DNS lookup)."""
        if target.scheme == "https":
            return PinnedHTTPSConnection(target.host, target.port, address, timeout, self.ssl_context)
        return PinnedHTTPConnection(target.host, target.port, address, timeout)

    def _send(
        self,
        target: Target,
        method: str,
        path: str,
        body: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        service: str,
    ) -> Response:
        last_error: Exception | None = None
        for address in target.addresses:
            conn = self.connection(target, address, timeout)
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                raw = conn.getresponse()
                data = raw.read(MAX_RESPONSE_BYTES)
                response = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
            except ssl.SSLCertVerificationError:
                raise DeliveryError(
                    f"{service}: the TLS certificate of {target.host} is not valid for that name",
                    attempts=1,
                    hint="the server is not who it claims to be; nothing was sent",
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                last_error = exc
                continue
            finally:
                conn.close()
            if response.status in _RETRY_STATUSES:
                raise Retry(
                    f"{target.host} answered HTTP {response.status}",
                    parse_retry_after(response.headers.get("retry-after")),
                    response.status,
                )
            return response
        kind = "timed out" if isinstance(last_error, TimeoutError | socket.timeout) else "connection failed"
        raise Retry(f"could not reach {target.host} ({kind}: {type(last_error).__name__})")
