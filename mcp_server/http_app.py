"""MCP over streamable HTTP: `python -m mcp_server --transport http`, and the Lambda handler's app.

The same `UnifiedMLOpsMCPServer` (router, tools, jobs) as over stdio, served by the SDK's
`StreamableHTTPSessionManager` at `/mcp`, with `/healthz` beside it (no auth, nothing sensitive:
what a load balancer or container health check needs). Every `/mcp` request passes `RequestGuard`,
which checks, in this order (TOOLS.md section 8):

1. `Host` against `MLOPS_ALLOWED_HOSTS` (default: the bound address and localhost) -> 421;
2. `Origin` against `MLOPS_ALLOWED_ORIGINS` (default none: a request without `Origin`, i.e. not
   from a browser, passes; any browser origin is refused) -> 403. With 1, this is the DNS-rebinding
   protection the MCP transport spec requires;
3. `Authorization: Bearer <token>` (`MLOPS_HTTP_TOKEN`, else `<prefix>http-token` in Secrets
   Manager), compared in constant time -> 401;
4. the body size (`MLOPS_HTTP_MAX_BODY_MB`) -> 413, enforced by the SDK's own limit, which the
   session manager applies after the guard.

The SDK's Host/Origin checks are switched off: this guard is the one place for them, so the
order above holds and the settings mean one thing. The server refuses to start on a non-loopback
address without a token; on loopback without one it serves without auth and says so in the log.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server import __version__
from mcp_server.common.exceptions import ConfigError
from mcp_server.common.logger import get_logger, log_event

if TYPE_CHECKING:
    from mcp_server.config import Config
    from mcp_server.server import UnifiedMLOpsMCPServer

_log = get_logger(__name__)
MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
TOKEN_SECRET = "http-token"  # noqa: S105 - the secret's name (<MLOPS_SECRETS_PREFIX>http-token)
_LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
MIN_TOKEN_LENGTH = 16  # a guessable token would make the checks below decoration


@dataclass(frozen=True)
class HttpSettings:
    token: str | None
    allowed_hosts: tuple[str, ...]  # "name" (any port), "name:port", or "*" (any Host)
    allowed_origins: tuple[str, ...]
    max_body_bytes: int
    stateless: bool
    json_response: bool = False  # plain JSON answers instead of SSE (Lambda buffers responses anyway)

    def __repr__(self) -> str:  # the token never reaches a log line or a traceback
        return f"HttpSettings(auth={self.token is not None}, hosts={self.allowed_hosts}, stateless={self.stateless})"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(host: str) -> tuple[str, ...]:
    """The bound address (unless a wildcard, which no client sends as Host) and localhost."""
    bound = f"[{host}]" if ":" in host else host
    wildcard = host in ("0.0.0.0", "::", "")  # noqa: S104 - recognising a wildcard, not binding one
    return tuple(dict.fromkeys((*(() if wildcard else (bound,)), *_LOCAL_NAMES)))


def resolve_token(config: Config, secrets: Any) -> str | None:
    """`MLOPS_HTTP_TOKEN` first (on ECS the task definition injects it from Secrets Manager), else
    the secret `<prefix>http-token`. Read once at start-up: restart to rotate it."""
    token = config.http_token or secrets.get(TOKEN_SECRET)
    if token is not None and len(token.strip()) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the HTTP token is shorter than {MIN_TOKEN_LENGTH} characters; use a random one, "
            "e.g. `openssl rand -hex 32`"
        )
    return token.strip() if token is not None else None


def settings_from_config(config: Config, host: str, token: str | None, **overrides: Any) -> HttpSettings:
    """The transport's settings: the config's, `host` giving the default allowed hosts."""
    values: dict[str, Any] = {
        "token": token,
        "allowed_hosts": config.allowed_hosts or default_allowed_hosts(host),
        "allowed_origins": config.allowed_origins,
        "max_body_bytes": config.http_max_body_bytes,
        "stateless": config.http_stateless,
    }
    values.update(overrides)
    return HttpSettings(**values)


# ------------------------------------------------------------------------------------ the guard
def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": message}}
    return Response(json.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _split_host(value: str) -> tuple[str, str | None]:
    """`example.com:8080` -> ("example.com", "8080"); `[::1]:8080` -> ("[::1]", "8080")."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else None
    if value.count(":") == 1:
        name, port = value.split(":")
        return name, port
    return value, None


def host_allowed(header: str | None, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed:
        return True
    if not header:
        return False
    name, port = _split_host(header)
    for entry in allowed:
        entry_name, entry_port = _split_host(entry)
        if entry_name == name and (entry_port is None or entry_port == port):
            return True
    return False


def token_matches(header: str | None, token: str) -> bool:
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest: the time taken does not tell an attacker how much of the token was right.
    return hmac.compare_digest(presented.strip().encode(), token.encode())


class RequestGuard:
    """ASGI middleware: Host (421), Origin (403), bearer token (401), in that order."""

    def __init__(self, app: ASGIApp, settings: HttpSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.check(Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, headers: Headers) -> Response | None:
        settings = self.settings
        host = headers.get("host")
        if not host_allowed(host, settings.allowed_hosts):
            log_event(_log, 30, "http request refused", reason="host", host=host)
            return _refusal(421, "Host not allowed; add it to MLOPS_ALLOWED_HOSTS")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/").lower() not in settings.allowed_origins:
            log_event(_log, 30, "http request refused", reason="origin", origin=origin)
            return _refusal(403, "Origin not allowed; add it to MLOPS_ALLOWED_ORIGINS")
        if settings.token is not None and not token_matches(headers.get("authorization"), settings.token):
            log_event(_log, 30, "http request refused", reason="token")
            return _refusal(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="mlops-mcp"'})
        return None


# -------------------------------------------------------------------------------------- the app
def build_app(server: UnifiedMLOpsMCPServer, settings: HttpSettings) -> Starlette:
    """The ASGI app. Each lifespan cycle gets a fresh session manager (one can run only once), so
    the app also works under Mangum, which runs the lifespan once per Lambda invocation."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    managers: list[StreamableHTTPSessionManager] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        manager = StreamableHTTPSessionManager(
            server.server,
            stateless=settings.stateless,
            json_response=settings.json_response,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),  # RequestGuard
            max_request_body_size=settings.max_body_bytes,
        )
        managers.append(manager)
        try:
            async with manager.run():
                yield
        finally:
            managers.remove(manager)

    async def mcp_endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        await managers[-1].handle_request(scope, receive, send)

    async def health(_: Request) -> Response:
        # Liveness only, and nothing a stranger could use: no storage location, no settings.
        return JSONResponse(
            {
                "status": "ok",
                "server": "unified-mlops",
                "version": __version__,
                "transport": "streamable-http",
                "stateless": settings.stateless,
                "tools": len(server.router.tool_names),
            }
        )

    routes = [
        Route(HEALTH_PATH, health, methods=["GET"]),
        Route(MCP_PATH, RequestGuard(mcp_endpoint, settings), methods=["GET", "POST", "DELETE"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _skip_health_probes(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    return not (len(args) >= 3 and args[2] == HEALTH_PATH)  # uvicorn: (client, method, path, ...)


def run_http(server: UnifiedMLOpsMCPServer, host: str, port: int) -> int:
    """Serve until interrupted; 2 when the settings are unsafe (a public address without a token)."""
    import uvicorn

    config = server.config
    try:
        token = resolve_token(config, server.router.secrets)
    except ConfigError as exc:
        sys.stderr.write(f"mcp_server: configuration error: {exc}\n")
        return 2
    if token is None and not is_loopback(host):
        sys.stderr.write(
            f"mcp_server: refusing to serve HTTP on {host} without a token; set MLOPS_HTTP_TOKEN or the "
            f"secret {config.secrets_prefix}{TOKEN_SECRET}, or bind 127.0.0.1\n"
        )
        return 2
    settings = settings_from_config(config, host, token)
    if token is None:
        _log.warning("HTTP transport without a token: any local process can call the tools (loopback only)")
    if not config.allowed_hosts and not is_loopback(host):
        _log.warning("MLOPS_ALLOWED_HOSTS is unset: only Host localhost is accepted; set it to the name clients use")
    log_event(
        _log,
        20,
        "starting",
        transport="streamable-http",
        host=host,
        port=port,
        auth=token is not None,
        stateless=settings.stateless,
        tools=len(server.router.tool_names),
        storage=config.default_location,
    )
    # log_config=None: uvicorn logs through our JSON handler on stderr, like everything else,
    # minus the access lines of health probes (a load balancer asks every few seconds).
    logging.getLogger("uvicorn.access").addFilter(_skip_health_probes)
    uvicorn_config = uvicorn.Config(
        build_app(server, settings), host=host, port=port, log_config=None, lifespan="on", server_header=False
    )
    try:
        uvicorn.Server(uvicorn_config).run()
    except KeyboardInterrupt:
        return 130
    return 0
