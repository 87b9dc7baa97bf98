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
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from mcp_server.common.exceptions import AccessDeniedError, ConfigError, InvalidInputError

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


def _on_builtin_list(host: str, path: str, trusted_bases: Sequence[str]) -> bool:
    for pattern, prefix in BUILTIN_ALLOW:
        if fnmatchcase(host, pattern) and path.startswith(prefix):
            return True
    for base in trusted_bases:
        parts = urlsplit(base)
        base_path = parts.path.rstrip("/")
        if (parts.hostname or "").lower() == host and (path == base_path or path.startswith(base_path + "/")):
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
    try:
        parts = urlsplit(url.strip())
        port_given = parts.port
    except ValueError:
        raise InvalidInputError("is not a valid URL", field=field) from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or scheme not in DEFAULT_PORTS:
        raise InvalidInputError(
            "must be an https:// URL", field=field, hint="give the full webhook or API URL, starting with https://"
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError("must not carry credentials (user:password@)", field=field)
    port = port_given or DEFAULT_PORTS[scheme]
    origin = f"{scheme}://{host}:{port}"
    if origin in allow_entries:
        return Target(scheme, host, port, parts.path or "/", tuple(resolver(host, port)), True)
    if scheme != "https":
        raise AccessDeniedError(
            f"{scheme}:// to {host} is not allowed: outbound calls use https",
            field=field,
            hint=f"a test or internal server must be listed in MLOPS_OUTBOUND_ALLOW as {origin}",
        )
    path = parts.path or "/"
    if not _on_builtin_list(host, path, trusted_bases):
        raise AccessDeniedError(
            f"host {host} is not on the outbound allow-list",
            field=field,
            hint="use the service's own webhook URL, or add the host to MLOPS_OUTBOUND_ALLOW",
        )
    addresses = tuple(resolver(host, port))
    blocked = [a for a in addresses if not is_public_address(a)]
    if not addresses or blocked:
        raise AccessDeniedError(
            f"host {host} resolves to a non-public address ({', '.join(blocked) or 'none'})",
            field=field,
            hint="loopback, private, link-local and metadata addresses need an MLOPS_OUTBOUND_ALLOW entry",
        )
    return Target(scheme, host, port, path, addresses, False)
