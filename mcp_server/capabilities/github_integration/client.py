"""The PyGithub client (built lazily from `Config`) and the mapping of GitHub's errors to tool errors.

Retries are configured deliberately (PyGithub's defaults are wrong for a tool call that a client
abandons after ~60 s):
- only GET/HEAD are retried on 5xx; a write (POST/PATCH/PUT/DELETE) is never retried after the
  server answered, because a retried POST can create a second issue or comment. A connection that
  failed before the request was sent is retried for every method (urllib3 does that by itself).
- a primary rate limit is never slept out: it becomes an error naming the reset time;
- a secondary rate limit or a `Retry-After` is waited at most `MAX_RATE_LIMIT_WAIT` seconds.
Worst case for one GET: 3 attempts x 10 s timeout + 2 waits of at most 10 s = 50 s, below the ~60 s
after which Claude Desktop gives up on a call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from mcp_server.common.exceptions import (
    AccessDeniedError,
    ConfigError,
    ConflictError,
    InvalidInputError,
    MLOpsError,
    NotFoundError,
)
from mcp_server.common.logger import get_logger, log_event
from mcp_server.common.outbound import check_url

if TYPE_CHECKING:
    from github import Github
    from github.Repository import Repository

    from mcp_server.capabilities.base import ToolContext

_log = get_logger(__name__)

TIMEOUT_SECONDS = 10
RETRIES = 2
MAX_RATE_LIMIT_WAIT = 10.0
SECONDARY_RATE_WAIT = 10.0
TOKEN_SECRET, TOKEN_ENV = "github-token", "GITHUB_TOKEN"
_lock = threading.Lock()


class GitHubUnavailableError(MLOpsError):
    """GitHub rate-limited us, failed, or could not be reached."""

    kind = "github_unavailable"


def _retry() -> Any:
    from github import GithubRetry
    from github.GithubException import RateLimitExceededExceedsMaxWait

    class BoundedRetry(GithubRetry):
        """GithubRetry whose `Retry-After` sleeps are capped like its rate-limit waits."""

        def get_retry_after(self, response: Any) -> float | None:
            seconds = super().get_retry_after(response)
            if seconds is not None and self.max_rate_limit_wait is not None and seconds > self.max_rate_limit_wait:
                raise RateLimitExceededExceedsMaxWait(
                    response.status, {"message": "Retry-After too long"}, dict(response.headers), wait=seconds
                )
            return seconds

    return BoundedRetry(
        total=RETRIES,
        backoff_factor=0.5,
        backoff_max=4,
        # GithubRetry adds 403 itself and retries it only when it is a rate limit it may wait for.
        status_forcelist=[500, 502, 503, 504],
        allowed_methods=frozenset({"GET", "HEAD"}),
        secondary_rate_wait=SECONDARY_RATE_WAIT,
        max_rate_limit_wait=MAX_RATE_LIMIT_WAIT,
        raise_on_status=False,  # the last 5xx reaches PyGithub, which raises GithubException with its body
    )


def github_client(ctx: ToolContext) -> Github:
    """The process-wide PyGithub client for the configured API URL and current token."""
    token = ctx.secrets.get(TOKEN_SECRET, TOKEN_ENV)
    if not token:
        raise ConfigError(
            "no GitHub token is configured",
            hint=f"Store it in Secrets Manager as {ctx.config.secrets_prefix}{TOKEN_SECRET} or set {TOKEN_ENV}",
        )
    api_url = ctx.config.github_api_url
    # The token only names the cache entry through its hash: a rotated token gets a new client.
    key = f"{api_url} {hashlib.sha256(token.encode()).hexdigest()}"
    with _lock:
        clients = ctx.services.github_clients
        if key not in clients:
            clients[key] = _build(ctx, api_url, token)
        return clients[key]


def _build(ctx: ToolContext, api_url: str, token: str) -> Github:
    import logging

    from github import Auth, Github

    # GITHUB_API_URL is an operator setting, checked once here against the outbound policy; PyGithub
    # then makes its own connections (through requests) to that host. The calls these tools make
    # follow no redirect to another host (PyGithub refuses a 301 that changes host or scheme).
    check_url(api_url, ctx.config.outbound_allow, trusted_bases=(api_url,), field="GITHUB_API_URL")
    # PyGithub's DEBUG lines carry whole response bodies (issue text, file contents): keep them out.
    logging.getLogger("github").setLevel(max(logging.INFO, logging.getLogger("github").level))
    log_event(_log, 20, "github client", api=urlsplit(api_url).netloc)
    return Github(
        base_url=api_url,
        auth=Auth.Token(token),
        timeout=TIMEOUT_SECONDS,
        retry=_retry(),
        # per_page stays PyGithub's default: list_issue_comments passes its own per call, and a
        # non-default client value would override it.
        seconds_between_requests=ctx.config.github_seconds_between_requests or None,
        seconds_between_writes=ctx.config.github_seconds_between_writes or None,
        lazy=True,  # objects are fetched only when read: a comment is one POST, not three requests
    )


def repository(ctx: ToolContext, full_name: str) -> Repository:
    """A lazy handle on `owner/name` (already validated by the input model): no request yet."""
    return github_client(ctx).get_repo(full_name)


# ----------------------------------------------------------------------------- errors
def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:300]
    return str(getattr(exc, "message", "") or "")[:300]


def _header(exc: Any, name: str) -> str | None:
    headers = getattr(exc, "headers", None) or {}
    for key, value in headers.items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _reset_text(exc: Any) -> str:
    reset = _header(exc, "X-RateLimit-Reset")
    if reset and reset.isdigit():
        at = datetime.fromtimestamp(int(reset), UTC)
        seconds = max(0, int((at - datetime.now(UTC)).total_seconds()))
        return f"it resets at {at.strftime('%Y-%m-%d %H:%M:%S')} UTC (in {seconds} s)"
    retry_after = _header(exc, "Retry-After")
    if retry_after:
        return f"GitHub asks to retry after {retry_after} s"
    return "try again in a few minutes"


def _validation_error(exc: Any, what: str) -> NoReturn:
    data = getattr(exc, "data", None) or {}
    problems = []
    for item in (data.get("errors") or [])[:5] if isinstance(data, dict) else []:
        if isinstance(item, dict):
            field = item.get("field") or item.get("resource") or "request"
            detail = item.get("message") or item.get("code") or "invalid"
            problems.append(f"{field}: {detail}")
        else:
            problems.append(str(item)[:200])
    detail = "; ".join(problems) or _message(exc) or "validation failed"
    field = None
    if isinstance(data, dict) and data.get("errors") and isinstance(data["errors"][0], dict):
        field = data["errors"][0].get("field")
    raise InvalidInputError(f"GitHub refused to {what}: {detail}", field=field)


@contextmanager
def github_errors(what: str, *, scope: str, not_found: str, write: bool = False) -> Iterator[None]:
    """Turn PyGithub and connection errors into tool errors a person can act on.

    `what` says what was being done ("create an issue in o/r"), `scope` the token permission the
    call needs, `not_found` what a 404 means for this call.
    """
    import requests
    from github.GithubException import (
        BadCredentialsException,
        GithubException,
        RateLimitExceededExceedsMaxWait,
        RateLimitExceededException,
        UnknownObjectException,
    )

    try:
        yield
    except (RateLimitExceededException, RateLimitExceededExceedsMaxWait) as exc:
        if _header(exc, "X-RateLimit-Remaining") == "0":
            kind = "GitHub's API rate limit is exhausted"
        elif exc.status in (403, 429):
            kind = "GitHub's secondary rate limit was hit"
        else:  # a 503 whose Retry-After is longer than we wait
            kind = f"GitHub is unavailable ({exc.status})"
        raise GitHubUnavailableError(f"could not {what}: {kind}; {_reset_text(exc)}") from None
    except BadCredentialsException:
        raise AccessDeniedError(
            f"could not {what}: GitHub rejected the token (401 Bad credentials)",
            hint=f"Store a valid token in Secrets Manager (<prefix>{TOKEN_SECRET}) or {TOKEN_ENV}",
        ) from None
    except UnknownObjectException:
        raise NotFoundError(
            f"{not_found} (or the token cannot see it)",
            hint="Check the name and number, and that the token has access to the repository",
        ) from None
    except GithubException as exc:
        status = exc.status
        if status == 429:  # GitHub documents 429 as well as 403 for rate limits
            raise GitHubUnavailableError(f"could not {what}: GitHub's rate limit was hit; {_reset_text(exc)}") from None
        if status == 401:
            raise AccessDeniedError(f"could not {what}: GitHub rejected the token (401)") from None
        if status == 403:
            accepted = _header(exc, "X-Accepted-GitHub-Permissions") or _header(exc, "X-Accepted-OAuth-Scopes")
            needed = f"{scope} (GitHub says: {accepted})" if accepted else scope
            raise AccessDeniedError(
                f"could not {what}: the token lacks permission (403 {_message(exc) or 'Forbidden'})",
                hint=f"Give the token {needed}",
            ) from None
        if status == 404:
            raise NotFoundError(f"{not_found} (or the token cannot see it)") from None
        if status == 409:
            raise ConflictError(f"could not {what}: GitHub reports a conflict ({_message(exc)})") from None
        if status == 422:
            _validation_error(exc, what)
        if status is not None and status >= 500:
            unknown = (
                " The write may or may not have happened: look before trying again (it was not retried, "
                "so that nothing is created twice)."
                if write
                else ""
            )
            raise GitHubUnavailableError(f"could not {what}: GitHub answered {status}.{unknown}") from None
        raise GitHubUnavailableError(f"could not {what}: GitHub answered {status} ({_message(exc)})") from None
    except requests.RequestException as exc:
        log_event(_log, 30, "github request failed", error=type(exc).__name__)
        raise GitHubUnavailableError(
            f"could not {what}: GitHub did not answer ({type(exc).__name__})",
            hint="Check GITHUB_API_URL and the network; try again later",
        ) from None


# What each kind of call needs from the token (fine-grained permission, classic scope).
ISSUES_READ = "Issues: read (fine-grained token) or the repo scope (classic token, private repositories)"
ISSUES_WRITE = "Issues: write (fine-grained token) or the repo / public_repo scope (classic token)"
CONTENTS_READ = "Contents: read (fine-grained token) or the repo scope (classic token, private repositories)"
CONTENTS_WRITE = "Contents: write (fine-grained token) or the repo / public_repo scope (classic token)"
PULLS_WRITE = "Pull requests: write (fine-grained token) or the repo / public_repo scope (classic token)"


def login_of(user: Any) -> str | None:
    """The login of a raw `user` object (None for a deleted account, shown as "ghost" by GitHub)."""
    return str(user["login"]) if isinstance(user, dict) and user.get("login") else None


def label_names(labels: Any) -> list[str]:
    """Names from raw label objects (or plain strings, as some payloads carry)."""
    out = []
    for label in labels or []:
        name = label.get("name") if isinstance(label, dict) else getattr(label, "name", label)
        if isinstance(name, str):
            out.append(name)
    return out
