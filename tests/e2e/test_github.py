"""The GitHub tools through the real stdio server and the official MCP client, against the
loopback GitHub server, with Secrets Manager on a moto server; and webhook replays refused across
two server processes sharing one storage root."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from mcp.shared.exceptions import MCPError

from mcp_server.client import connect, result_text
from tests.conftest import threaded_moto_server
from tests.e2e.client_helpers import call_ok
from tests.github_integration.loopback_github import LoopbackGitHub

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]
REPO = "octo-org/ml-models"
SECRET = "e2e-webhook-secret"
# tool: (read_only, destructive, idempotent, open_world)
GITHUB_TOOLS = {
    "get_issue": (True, False, True, True),
    "create_issue": (False, False, False, True),
    "update_issue": (False, True, True, True),
    "add_issue_comment": (False, False, False, True),
    "list_issue_comments": (True, False, True, True),
    "add_labels": (False, False, True, True),
    "remove_label": (False, True, True, True),
    "list_labels": (True, False, True, True),
    "get_file": (True, False, True, True),
    "create_or_update_file": (False, True, False, True),
    "create_branch": (False, False, False, True),
    "create_pull_request": (False, False, False, True),
    "verify_webhook_signature": (True, False, True, False),
    "handle_webhook_event": (False, False, False, False),
    "parse_issue_config": (True, False, True, True),
}
BODY = "```yaml\nalgorithm: kmeans\ndataset_s3_uri: datasets/iris.csv\n```\n"


@pytest.fixture
def aws_endpoint() -> Iterator[dict[str, str]]:
    import boto3

    with threaded_moto_server() as endpoint:
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        client = boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        prefix = f"e2e-{uuid.uuid4().hex[:8]}/"  # moto's state outlives one test: a prefix of its own
        client.create_secret(Name=f"{prefix}github-webhook-secret", SecretString=SECRET)
        yield {**env, "MLOPS_SECRETS_PREFIX": prefix}


@pytest.fixture
def loopback() -> Iterator[LoopbackGitHub]:
    with LoopbackGitHub() as github:
        github.add_repo(REPO, files={"README.md": "# models\n"})
        yield github


def server_settings(github: LoopbackGitHub, root: Path, aws: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        **github.env(),
        **aws,
        "MLOPS_STORAGE_ROOT": str(root),
        "MLOPS_CAPABILITIES": "github_integration",
        "LOG_LEVEL": "DEBUG",
        **extra,
    }


def _delivery(issue_number: int) -> tuple[str, str]:
    payload = json.dumps(
        {
            "action": "labeled",
            "issue": {"number": issue_number, "body": BODY, "labels": [{"name": "mlops:train"}]},
            "repository": {"full_name": REPO},
            "sender": {"login": "alice"},
        }
    )
    return payload, "sha256=" + hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


async def test_github_tools_over_stdio(
    loopback: LoopbackGitHub, storage_root: Path, tmp_path: Path, aws_endpoint: dict[str, str]
) -> None:
    number = loopback.add_issue(REPO, "Train", BODY, ["mlops:train"])
    loopback.add_comments(REPO, number, 12)
    errlog = tmp_path / "stderr.log"
    with open(errlog, "w") as err:
        async with connect(server_settings(loopback, storage_root, aws_endpoint), errlog=err) as session:
            tools = {tool.name: tool for tool in (await session.list_tools()).tools}
            assert set(tools) == set(GITHUB_TOOLS)
            for name, hints in GITHUB_TOOLS.items():
                a = tools[name].annotations
                assert a is not None
                assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == hints, name

            issue = await call_ok(session, "get_issue", repository=REPO, issue_number=number)
            assert (issue["title"], issue["untrusted"]) == ("Train", True)
            page = await call_ok(session, "list_issue_comments", repository=REPO, issue_number=number, per_page=10)
            rest = await call_ok(
                session,
                "list_issue_comments",
                repository=REPO,
                issue_number=number,
                per_page=10,
                cursor=page["next_cursor"],
            )
            assert len(page["comments"]) + len(rest["comments"]) == 12 and rest["next_cursor"] is None
            created = await call_ok(session, "create_issue", repository=REPO, title="Report", labels=["report"])
            await call_ok(session, "add_issue_comment", repository=REPO, issue_number=created["number"], body="done")
            parsed = await call_ok(session, "parse_issue_config", repository=REPO, issue_number=number)
            assert parsed["valid"] is True and parsed["config"]["algorithms"] == ["kmeans"]
            payload, signature = _delivery(number)
            handled = await call_ok(
                session,
                "handle_webhook_event",
                event="issues",
                delivery_id="e2e-1",
                payload=payload,
                signature=signature,
            )
            assert handled["accepted"] is True and handled["request"]["issue_number"] == number

            bad = await session.call_tool("get_issue", {"repository": "../etc", "issue_number": 1})
            assert bad.is_error and "repository" in result_text(bad)
    log = errlog.read_text()
    assert '"tool call"' in log or "tool call" in log  # DEBUG logging was on
    assert loopback.token not in log and loopback.token[4:] not in log
    assert SECRET not in log


async def test_read_only_mode_hides_every_github_writer(
    loopback: LoopbackGitHub, storage_root: Path, aws_endpoint: dict[str, str]
) -> None:
    settings = server_settings(loopback, storage_root, aws_endpoint, MLOPS_READ_ONLY="true", LOG_LEVEL="WARNING")
    async with connect(settings) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert names == {name for name, hints in GITHUB_TOOLS.items() if hints[0]}
        with pytest.raises(MCPError) as refused:  # hidden, so unknown: a JSON-RPC error
            await session.call_tool("create_issue", {"repository": REPO, "title": "x"})
        assert "read-only" in refused.value.message
    assert loopback.count("POST") == 0


async def test_replay_is_refused_across_two_server_processes(
    loopback: LoopbackGitHub, storage_root: Path, aws_endpoint: dict[str, str]
) -> None:
    payload, signature = _delivery(5)
    delivery = {
        "event": "issues",
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "payload": payload,
        "signature": signature,
    }
    settings = server_settings(loopback, storage_root, aws_endpoint, LOG_LEVEL="WARNING")
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(connect(settings))
        second = await stack.enter_async_context(connect(settings))
        accepted = await call_ok(first, "handle_webhook_event", **delivery)
        replayed = await call_ok(second, "handle_webhook_event", **delivery)
        assert (accepted["accepted"], accepted["duplicate"]) == (True, False)
        assert (replayed["accepted"], replayed["duplicate"]) == (False, True)
    async with connect(settings) as restarted:  # and after a restart
        assert (await call_ok(restarted, "handle_webhook_event", **delivery))["duplicate"] is True
