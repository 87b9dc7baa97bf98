"""Webhook signatures (GitHub's published vector) and delivery handling: replays, forged
deliveries, the trigger label and who may start training with a comment."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from mcp_server.router import ToolRouter
from tests.github_integration.conftest import REPO, WEBHOOK_SECRET
from tests.helpers import call, call_error

GITHUB_VECTOR_SECRET = "It's a Secret to Everybody"
GITHUB_VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
CONFIG_BODY = "Please train.\n\n```yaml\nalgorithm: kmeans\ndataset_s3_uri: datasets/iris.csv\n```\n"


def sign(body: str | bytes, secret: str = WEBHOOK_SECRET) -> str:
    data = body.encode() if isinstance(body, str) else body
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def issue_payload(action: str = "labeled", labels: tuple[str, ...] = ("mlops:train",), body: str = CONFIG_BODY) -> str:
    return json.dumps(
        {
            "action": action,
            "issue": {"number": 7, "body": body, "labels": [{"name": n} for n in labels], "user": {"login": "alice"}},
            "repository": {"full_name": REPO},
            "sender": {"login": "alice"},
        },
        indent=2,  # GitHub's bodies are not compact: the signature covers the exact bytes
    )


def comment_payload(
    association: str, text: str = "/mlops train please", labels: tuple[str, ...] = ("mlops:train",)
) -> str:
    payload = json.loads(issue_payload("created", labels))
    payload["comment"] = {"body": text, "author_association": association, "user": {"login": "bob"}}
    return json.dumps(payload)


async def deliver(router: ToolRouter, event: str, payload: str, delivery: str, signature: str | None = None) -> Any:
    return await call(
        router,
        "handle_webhook_event",
        event=event,
        delivery_id=delivery,
        payload=payload,
        signature=signature or sign(payload),
    )


async def test_githubs_published_test_vector_is_valid(gh_router: ToolRouter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", GITHUB_VECTOR_SECRET)
    gh_router.secrets.clear()
    good = await call(gh_router, "verify_webhook_signature", payload="Hello, World!", signature=GITHUB_VECTOR_SIGNATURE)
    assert good["valid"] is True
    bad = await call(gh_router, "verify_webhook_signature", payload="Hello, World?", signature=GITHUB_VECTOR_SIGNATURE)
    assert bad["valid"] is False


async def test_signature_without_sha256_prefix_is_invalid(gh_router: ToolRouter) -> None:
    body = '{"zen": "x"}'
    result = await call(gh_router, "verify_webhook_signature", payload=body, signature=sign(body)[len("sha256=") :])
    assert result["valid"] is False and "sha256=" in result["reason"]


async def test_sha1_signature_header_is_not_accepted(gh_router: ToolRouter) -> None:
    body = "{}"
    sha1 = "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), body.encode(), hashlib.sha1).hexdigest()
    assert (await call(gh_router, "verify_webhook_signature", payload=body, signature=sha1))["valid"] is False


async def test_payload_base64_for_bodies_that_are_not_utf8(gh_router: ToolRouter) -> None:
    raw = b"\xff\xfe not utf-8"
    result = await call(
        gh_router, "verify_webhook_signature", payload_base64=base64.b64encode(raw).decode(), signature=sign(raw)
    )
    assert result["valid"] is True


async def test_whitespace_of_the_body_is_part_of_the_signature(gh_router: ToolRouter) -> None:
    body = '{"a": 1}\n'
    assert (await call(gh_router, "verify_webhook_signature", payload=body, signature=sign(body)))["valid"] is True
    assert (await call(gh_router, "verify_webhook_signature", payload=body.strip(), signature=sign(body)))[
        "valid"
    ] is False


async def test_missing_webhook_secret_says_where_to_put_it(
    gh_router: ToolRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    gh_router.secrets.clear()
    message = await call_error(gh_router, "verify_webhook_signature", payload="{}", signature=sign("{}"))
    assert "mlops/github-webhook-secret" in message and "GITHUB_WEBHOOK_SECRET" in message


async def test_labelled_issue_becomes_a_training_request(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issues", issue_payload("labeled"), "d-1")
    assert (result["accepted"], result["duplicate"], result["untrusted"]) == (True, False, True)
    request = result["request"]
    assert (request["kind"], request["repository"], request["issue_number"]) == ("train", REPO, 7)
    assert request["config"]["algorithms"] == ["kmeans"]
    assert request["config"]["dataset_s3_uri"] == "datasets/iris.csv"
    assert request["trigger"] == "issues.labeled"


@pytest.mark.parametrize("action", ["opened", "edited", "reopened"])
async def test_other_issue_actions_with_the_label_count(gh_router: ToolRouter, action: str) -> None:
    assert (await deliver(gh_router, "issues", issue_payload(action), f"d-{action}"))["accepted"] is True


async def test_issue_without_the_trigger_label_is_not_accepted(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issues", issue_payload("opened", ("bug",)), "d-2")
    assert result["accepted"] is False and "mlops:train" in result["reason"] and result["request"] is None


async def test_closed_issue_does_not_start_training(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issues", issue_payload("closed"), "d-3")
    assert result["accepted"] is False and "issues.closed" in result["reason"]


async def test_trigger_label_comes_from_the_setting(github: Any, storage_root: Any, gh_router: ToolRouter) -> None:
    from tests.conftest import make_router
    from tests.github_integration.conftest import github_config

    router = make_router(github_config(github, storage_root, MLOPS_GITHUB_TRIGGER_LABEL="train-me"))
    assert (await deliver(router, "issues", issue_payload("opened", ("train-me",)), "d-4"))["accepted"] is True
    assert (await deliver(router, "issues", issue_payload("opened", ("mlops:train",)), "d-5"))["accepted"] is False


@pytest.mark.parametrize("association", ["OWNER", "MEMBER", "COLLABORATOR"])
async def test_train_comment_by_a_collaborator_is_accepted(gh_router: ToolRouter, association: str) -> None:
    result = await deliver(gh_router, "issue_comment", comment_payload(association), f"c-{association}")
    assert result["accepted"] is True
    assert result["request"]["sender"] == "bob" and result["request"]["trigger"] == "issue_comment.created"


@pytest.mark.parametrize("association", ["NONE", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN"])
async def test_strangers_train_comment_on_a_public_repository_does_not_start_training(
    gh_router: ToolRouter, association: str
) -> None:
    result = await deliver(gh_router, "issue_comment", comment_payload(association), f"s-{association}")
    assert result["accepted"] is False and association in result["reason"] and result["request"] is None


async def test_comment_must_start_with_the_command(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issue_comment", comment_payload("OWNER", "please /mlops train"), "c-x")
    assert result["accepted"] is False and "/mlops train" in result["reason"]


async def test_train_comment_on_an_issue_without_the_label_is_refused(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issue_comment", comment_payload("OWNER", labels=("bug",)), "c-y")
    assert result["accepted"] is False and "label" in result["reason"]


async def test_same_delivery_twice_is_a_duplicate(gh_router: ToolRouter) -> None:
    payload = issue_payload()
    assert (await deliver(gh_router, "issues", payload, "r-1"))["accepted"] is True
    again = await deliver(gh_router, "issues", payload, "r-1")
    assert (again["accepted"], again["duplicate"]) == (False, True)
    assert (gh_router.storage.root / "github" / "deliveries" / "r-1.json").exists()


async def test_replayed_delivery_id_is_a_duplicate_whatever_it_carries(gh_router: ToolRouter) -> None:
    await deliver(gh_router, "ping", '{"zen": "hi"}', "r-2")
    replay = await deliver(gh_router, "issues", issue_payload(), "r-2", signature="sha256=" + "0" * 64)
    assert (replay["accepted"], replay["duplicate"]) == (False, True)


async def test_forged_delivery_is_not_recorded_so_it_cannot_block_the_genuine_one(gh_router: ToolRouter) -> None:
    payload = issue_payload()
    forged = await deliver(gh_router, "issues", payload, "f-1", signature=sign(payload, "guessed-secret"))
    assert (forged["accepted"], forged["duplicate"]) == (False, False) and "signature" in forged["reason"]
    assert not (gh_router.storage.root / "github" / "deliveries" / "f-1.json").exists()
    assert (await deliver(gh_router, "issues", payload, "f-1"))["accepted"] is True


async def test_ping_and_other_events_are_not_training(gh_router: ToolRouter) -> None:
    assert "ping" in (await deliver(gh_router, "ping", '{"zen": "Keep it simple."}', "p-1"))["reason"]
    assert "push" in (await deliver(gh_router, "push", '{"ref": "refs/heads/main"}', "p-2"))["reason"]


async def test_invalid_config_in_a_labelled_issue_lists_the_problems(gh_router: ToolRouter) -> None:
    body = "```yaml\nalgorithm: random_forest\ndataset_s3_uri: data.csv\n```"
    result = await deliver(gh_router, "issues", issue_payload("opened", body=body), "i-1")
    assert result["accepted"] is False and "invalid" in result["reason"]
    assert {e["field"] for e in result["errors"]} == {"target_column", "task_type"}


async def test_non_json_payload_is_refused(gh_router: ToolRouter) -> None:
    result = await deliver(gh_router, "issues", "not json", "n-1")
    assert result["accepted"] is False and "not JSON" in result["reason"]


@pytest.mark.parametrize("delivery", ["../../registry/x", "a/b", "x.json", ""])
async def test_delivery_id_cannot_name_another_storage_path(gh_router: ToolRouter, delivery: str) -> None:
    message = await call_error(
        gh_router, "handle_webhook_event", event="issues", delivery_id=delivery, payload="{}", signature=sign("{}")
    )
    assert "delivery_id" in message


async def test_deliveries_are_recorded_create_only_in_the_bucket(
    aws: Any, github: Any, storage_root: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import BUCKET, make_router
    from tests.github_integration.conftest import github_config

    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    router = make_router(github_config(github, storage_root, MLOPS_S3_BUCKET=BUCKET))
    payload = issue_payload()
    assert (await deliver(router, "issues", payload, "s3-1"))["accepted"] is True
    stored = json.loads(aws.get_object(Bucket=BUCKET, Key="github/deliveries/s3-1.json")["Body"].read())
    assert stored["payload_sha256"] == hashlib.sha256(payload.encode()).hexdigest()
    assert (await deliver(router, "issues", payload, "s3-1"))["duplicate"] is True


async def test_concurrent_deliveries_of_one_id_accept_exactly_one(gh_router: ToolRouter) -> None:
    import asyncio

    payload = issue_payload()
    arguments = {"event": "issues", "delivery_id": "race-1", "payload": payload, "signature": sign(payload)}
    results = await asyncio.gather(*(gh_router.call("handle_webhook_event", arguments) for _ in range(8)))
    outcomes = [(r.structured_content or {}).get("accepted") for r in results]
    assert outcomes.count(True) == 1 and outcomes.count(False) == 7
    assert all((r.structured_content or {}).get("duplicate") for r in results if not r.structured_content["accepted"])
