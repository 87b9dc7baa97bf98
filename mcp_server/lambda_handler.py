"""AWS Lambda entry point: `mcp_server.lambda_handler.handler(event, context)`.

A Lambda function URL or API Gateway (HTTP API payload 2.0, REST API 1.0) event reaches the same
ASGI app as `python -m mcp_server --transport http` through Mangum, with the same checks and the
same token (required here: a function URL is on the internet). Lambda differs in three ways:
- stateless, with plain JSON answers: invocations share nothing, and a function URL buffers the
  whole response anyway (so no progress notifications reach the client);
- `Host` is not checked unless `MLOPS_ALLOWED_HOSTS` is set: only AWS routes requests to the
  function, so a rebound DNS name cannot reach it;
- the execution environment is frozen as soon as the invocation returns, so a training job must
  finish within the invocation's remaining time (`wait: false` is refused; a job that cannot
  finish is stopped with a message pointing at the ECS deployment). No Ray here.

The server (router, capabilities) is built once per execution environment, at the first
invocation, and reused while the environment stays warm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from mcp_server.common.exceptions import ConfigError
from mcp_server.config import Config

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
_handler: LambdaHandler | None = None


def build_handler(config: Config | None = None) -> LambdaHandler:
    """Build the server and its Mangum adapter; raises `ConfigError` without a token."""
    from mangum import Mangum

    from mcp_server.common.jobs import set_invocation_deadline
    from mcp_server.common.logger import configure_logging
    from mcp_server.http_app import TOKEN_SECRET, build_app, resolve_token, settings_from_config
    from mcp_server.server import UnifiedMLOpsMCPServer

    config = config or Config.from_env()
    configure_logging(config.log_level)
    server = UnifiedMLOpsMCPServer(config)
    token = resolve_token(config, server.router.secrets)
    if token is None:
        raise ConfigError(
            f"no HTTP token: set MLOPS_HTTP_TOKEN or the secret {config.secrets_prefix}{TOKEN_SECRET}; "
            "a Lambda function URL is public, so the server does not run without one"
        )
    settings = settings_from_config(
        config,
        "",  # no bound address: AWS routes only the function's own hosts here, so any Host passes
        token,
        allowed_hosts=config.allowed_hosts or ("*",),
        stateless=True,
        json_response=True,
    )
    # lifespan="on": Mangum runs the app's lifespan (a fresh session manager) around each invocation.
    adapter = Mangum(build_app(server, settings), lifespan="on")

    def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
        set_invocation_deadline(time.time() + context.get_remaining_time_in_millis() / 1000)
        try:
            return dict(adapter(event, context))
        finally:
            set_invocation_deadline(None)

    return invoke


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The function's handler (`CMD ["mcp_server.lambda_handler.handler"]` in Dockerfile.lambda)."""
    global _handler
    if _handler is None:
        _handler = build_handler()
    return _handler(event, context)
