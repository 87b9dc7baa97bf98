"""How GitHub's failures reach the user: clear errors, bounded waits, no blind retry of writes,
no secret in any result or log line, and names checked before any request."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mcp_server.client import result_text
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.github_integration.conftest import REPO, github_config
from tests.github_integration.loopback_github import LoopbackGitHub
from tests.helpers import call, call_error


async def test_bad_token_is_a_401_error_that_does_not_echo_it(
    gh_router: ToolRouter, github: LoopbackGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "ghp_" + "WrongTokenWrongTokenWrongToken000000"
    monkeypatch.setenv("GITHUB_TOKEN", wrong)
    gh_router.secrets.clear()
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=1)
    assert "rejected the token (401 Bad credentials)" in message
    assert "GITHUB_TOKEN" in message
    assert wrong not in message and wrong[4:] not in message


async def test_missing_permission_names_the_scope(
    gh_router: ToolRouter, github: LoopbackGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert github.read_only_token
    monkeypatch.setenv("GITHUB_TOKEN", github.read_only_token)
    gh_router.secrets.clear()
    message = await call_error(gh_router, "create_issue", repository=REPO, title="x")
    assert "403" in message and "Issues: write" in message and "issues=write" in message
    message = await call_error(
        gh_router, "create_or_update_file", repository=REPO, path="a.md", content="x", message="m"
    )
    assert "Contents: write" in message and "contents=write" in message


async def test_forbidden_read_names_the_permission_github_asks_for(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    github.fail(
        403,
        method="GET",
        message="Resource not accessible by personal access token",
        headers={"X-Accepted-GitHub-Permissions": "issues=read"},
    )
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=1)
    assert "Issues: read" in message and "issues=read" in message
    assert github.count("GET") == 1  # a 403 that is not a rate limit is not retried


async def test_primary_rate_limit_is_an_error_naming_the_reset_time(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    number = github.add_issue(REPO)
    reset = github.primary_rate_limit(reset_in=1800, method="GET")
    started = time.monotonic()
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=number)
    assert time.monotonic() - started < 5  # not slept out
    assert "rate limit is exhausted" in message
    assert datetime.fromtimestamp(reset, UTC).strftime("%Y-%m-%d %H:%M:%S") in message
    assert github.count("GET") == 1


async def test_primary_rate_limit_on_a_write_names_the_reset_time(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    number = github.add_issue(REPO)
    github.primary_rate_limit(reset_in=600, method="POST")
    message = await call_error(gh_router, "add_issue_comment", repository=REPO, issue_number=number, body="hi")
    assert "rate limit is exhausted" in message and "resets at" in message
    assert github.count("POST") == 1
    assert github.repos[REPO].comments[number] == []


async def test_short_secondary_rate_limit_is_waited_then_retried(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO, "waited")
    github.secondary_rate_limit(retry_after=1, method="GET")
    started = time.monotonic()
    issue = await call(gh_router, "get_issue", repository=REPO, issue_number=number)
    assert issue["title"] == "waited"
    assert time.monotonic() - started >= 1
    assert github.count("GET") == 2


async def test_long_retry_after_is_an_error_not_a_long_sleep(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO)
    github.secondary_rate_limit(retry_after=3600, method="GET")
    started = time.monotonic()
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=number)
    assert time.monotonic() - started < 5
    assert "secondary rate limit" in message and "3600" in message


async def test_read_retried_after_500_then_succeeds(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO, "after a 500")
    github.fail(500, method="GET", path=r"/issues/\d+$")
    issue = await call(gh_router, "get_issue", repository=REPO, issue_number=number)
    assert issue["title"] == "after a 500"
    assert github.count("GET") == 2


async def test_persistent_502_gives_up_after_bounded_retries(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.fail(502, method="GET", times=10)
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=1)
    assert "GitHub answered 502" in message
    assert github.count("GET") == 3  # the first try and two retries


async def test_comment_is_not_retried_after_a_500_so_it_is_never_duplicated(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    number = github.add_issue(REPO)
    github.fail(502, method="POST", after_success=True)  # GitHub stored it, the answer was lost
    message = await call_error(gh_router, "add_issue_comment", repository=REPO, issue_number=number, body="once")
    assert "may or may not have happened" in message
    assert [c["body"] for c in github.repos[REPO].comments[number]] == ["once"]
    assert github.count("POST") == 1


async def test_issue_creation_is_not_retried_after_a_500(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.fail(500, method="POST", after_success=True)
    await call_error(gh_router, "create_issue", repository=REPO, title="only once")
    assert [i["title"] for i in github.repos[REPO].issues.values()] == ["only once"]


async def test_validation_failure_names_the_field(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    github.fail(422, method="POST", errors=[{"resource": "Issue", "field": "assignees", "code": "invalid"}])
    message = await call_error(gh_router, "create_issue", repository=REPO, title="x", assignees=["nobody"])
    assert message.startswith("assignees:") and "assignees: invalid" in message


async def test_conflict_409_is_a_clear_error(gh_router: ToolRouter, github: LoopbackGitHub) -> None:
    number = github.add_issue(REPO)
    github.fail(409, method="PATCH", message="Issue is locked")
    message = await call_error(gh_router, "update_issue", repository=REPO, issue_number=number, title="x")
    assert "conflict" in message and "Issue is locked" in message


BAD_REPOSITORIES = [
    "../x",
    "a/b/c",
    "-x/y",
    "x-/y",
    "a--b/c",
    "x/..",
    "x/.",
    "owner/",
    "/name",
    "a b/c",
    "x/y?z",
    "x/y#z",
    "x/y%2e",
    "x/../../user",
    "owner",
    "o/" + "n" * 101,
]


@pytest.mark.parametrize("name", BAD_REPOSITORIES)
async def test_bad_repository_names_are_refused_before_any_request(
    gh_router: ToolRouter, github: LoopbackGitHub, name: str
) -> None:
    for tool, extra in [
        ("get_issue", {"issue_number": 1}),
        ("create_issue", {"title": "t"}),
        ("list_labels", {}),
        ("get_file", {"path": "README.md"}),
        ("create_branch", {"branch": "b"}),
    ]:
        message = await call_error(gh_router, tool, repository=name, **extra)
        assert "repository" in message, (tool, message)
    assert github.requests == []


async def test_no_token_configured_says_where_to_put_it(
    gh_router: ToolRouter, github: LoopbackGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    gh_router.secrets.clear()
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=1)
    assert "no GitHub token" in message and "mlops/github-token" in message and "GITHUB_TOKEN" in message
    assert github.requests == []


async def test_token_from_secrets_manager_comes_first(
    gh_router: ToolRouter, github: LoopbackGitHub, secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets_manager.create_secret(Name="mlops/github-token", SecretString=github.token)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "EnvTokenIsOnlyTheFallback00000000000")
    gh_router.secrets.clear()
    number = github.add_issue(REPO, "from secrets manager")
    assert (await call(gh_router, "get_issue", repository=REPO, issue_number=number))["title"] == "from secrets manager"
    assert github.requests[-1].headers["authorization"].endswith(github.token)


async def test_plain_http_api_url_needs_an_outbound_allow_entry(
    github: LoopbackGitHub, storage_root: Path, secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    router = make_router(github_config(github, storage_root, MLOPS_OUTBOUND_ALLOW=""))
    message = await call_error(router, "get_issue", repository=REPO, issue_number=1)
    assert "GITHUB_API_URL" in message and "MLOPS_OUTBOUND_ALLOW" in message
    assert github.requests == []


async def test_unreachable_github_is_a_clear_error(
    github: LoopbackGitHub, storage_root: Path, secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    router = make_router(
        github_config(
            github,
            storage_root,
            GITHUB_API_URL=f"http://127.0.0.1:{port}/api/v3",
            MLOPS_OUTBOUND_ALLOW=f"http://127.0.0.1:{port}",
        )
    )
    message = await call_error(router, "get_issue", repository=REPO, issue_number=1)
    assert "GitHub did not answer" in message and "GITHUB_API_URL" in message


async def test_token_never_appears_in_results_or_logs(
    gh_router: ToolRouter, github: LoopbackGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    number = github.add_issue(REPO, labels=["mlops:train"])
    github.add_comments(REPO, number, 3)
    texts = []
    for tool, arguments in [
        ("get_issue", {"issue_number": number}),
        ("list_issue_comments", {"issue_number": number}),
        ("add_issue_comment", {"issue_number": number, "body": "x"}),
        ("add_labels", {"issue_number": number, "labels": ["y"]}),
        ("list_labels", {}),
        ("get_file", {"path": "README.md"}),
        ("get_issue", {"issue_number": 999}),
        ("parse_issue_config", {"issue_number": number}),
    ]:
        result = await gh_router.call(tool, {"repository": REPO, **arguments})
        texts.append(result_text(result))
        texts.append(str(result.structured_content))
    github.fail(500, times=5)
    texts.append(result_text(await gh_router.call("get_issue", {"repository": REPO, "issue_number": number})))
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert github.requests and all(r.headers["authorization"].endswith(github.token) for r in github.requests)
    for text in [*texts, logged, caplog.text]:
        assert github.token not in text
        assert github.token[4:] not in text


async def test_unavailable_with_long_retry_after_is_not_called_a_rate_limit(
    gh_router: ToolRouter, github: LoopbackGitHub
) -> None:
    github.fail(503, method="GET", headers={"Retry-After": "600"})
    message = await call_error(gh_router, "get_issue", repository=REPO, issue_number=1)
    assert "GitHub is unavailable (503)" in message and "600" in message
    assert github.count("GET") == 1
