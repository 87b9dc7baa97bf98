"""verify_webhook_signature and handle_webhook_event.

Order of handle_webhook_event (TOOLS.md section 4): a delivery id already recorded is a duplicate
whatever it carries; then the signature (HMAC-SHA256 of the exact body, constant-time compare);
then the delivery is recorded create-only under `github/deliveries/` (so a second server process,
or this one after a restart, refuses it too; a forged delivery is never recorded, so it cannot
block the genuine one); only then is the event looked at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import mcp_types as types

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.github_integration.client import label_names, login_of
from mcp_server.capabilities.github_integration.schemas import (
    HandleWebhookEventInput,
    HandleWebhookEventOutput,
    TrainRequest,
    VerifyWebhookSignatureInput,
    VerifyWebhookSignatureOutput,
)
from mcp_server.capabilities.github_integration.tools.parser import parse_body
from mcp_server.common.exceptions import ConfigError, ConflictError, InvalidInputError, MLOpsError
from mcp_server.common.logger import get_logger, log_event
from mcp_server.common.s3_utils import json_bytes

_log = get_logger(__name__)
SECRET_NAME, SECRET_ENV = "github-webhook-secret", "GITHUB_WEBHOOK_SECRET"
DELIVERIES = "github/deliveries"
ISSUE_ACTIONS = ("opened", "labeled", "edited", "reopened")
TRUSTED_ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR")
COMMAND = "/mlops train"


def _body(params: VerifyWebhookSignatureInput) -> bytes:
    if params.payload is not None:
        return params.payload.encode("utf-8")
    try:
        return base64.b64decode(params.payload_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError("is not valid base64", field="payload_base64") from None


def _check_signature(ctx: ToolContext, body: bytes, signature: str) -> tuple[bool, str]:
    secret = ctx.secrets.get(SECRET_NAME, SECRET_ENV)
    if not secret:
        raise ConfigError(
            "no webhook secret is configured",
            hint=f"Store it in Secrets Manager as {ctx.config.secrets_prefix}{SECRET_NAME} or set {SECRET_ENV}",
        )
    if not signature.startswith("sha256="):
        return False, "the signature must be the X-Hub-Signature-256 header: sha256=<hex>"
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        return True, "signature matches"
    return False, "signature does not match the body and the configured secret"


def verify_webhook_signature(ctx: ToolContext, params: VerifyWebhookSignatureInput) -> ToolOutput:
    valid, reason = _check_signature(ctx, _body(params), params.signature)
    return ToolOutput(data=VerifyWebhookSignatureOutput(valid=valid, reason=reason), summary=f"valid: {valid}")


def _result(params: HandleWebhookEventInput, accepted: bool, reason: str, **extra: Any) -> ToolOutput:
    data = HandleWebhookEventOutput(
        accepted=accepted,
        reason=reason,
        duplicate=extra.pop("duplicate", False),
        delivery_id=params.delivery_id,
        event=params.event,
        action=extra.pop("action", None),
        request=extra.pop("request", None),
        errors=extra.pop("errors", []),
        run_id=extra.pop("run_id", None),
        run_error=extra.pop("run_error", None),
    )
    return ToolOutput(data=data, summary=f"{params.event} {params.delivery_id}: {'accepted' if accepted else reason}")


def handle_webhook_event(ctx: ToolContext, params: HandleWebhookEventInput) -> ToolOutput:
    record = ctx.storage.resolve(f"{DELIVERIES}/{params.delivery_id}.json", "delivery_id")
    if ctx.storage.exists(record):
        return _result(params, False, "delivery already handled (replay)", duplicate=True)
    body = _body(params)
    valid, why = _check_signature(ctx, body, params.signature)
    if not valid:
        log_event(_log, 30, "webhook signature refused", delivery=params.delivery_id, event=params.event)
        return _result(params, False, why)
    try:
        ctx.storage.create_only(
            record,
            json_bytes(
                {
                    "delivery_id": params.delivery_id,
                    "event": params.event,
                    "payload_sha256": hashlib.sha256(body).hexdigest(),
                    "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            ),
            "application/json",
        )
    except ConflictError:  # another process recorded it between our check and our write
        return _result(params, False, "delivery already handled (replay)", duplicate=True)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return _result(params, False, "the payload is not JSON")
    if not isinstance(payload, dict):
        return _result(params, False, "the payload is not a JSON object")
    return _interpret(ctx, params, payload)


def _interpret(ctx: ToolContext, params: HandleWebhookEventInput, payload: dict[str, Any]) -> ToolOutput:
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    issue: dict[str, Any] = payload["issue"] if isinstance(payload.get("issue"), dict) else {}
    repo: dict[str, Any] = payload["repository"] if isinstance(payload.get("repository"), dict) else {}
    label = ctx.config.github_trigger_label
    if params.event == "ping":
        return _result(params, False, "ping: the webhook is set up", action=action)
    if params.event not in ("issues", "issue_comment"):
        return _result(params, False, f"{params.event} events do not start training", action=action)
    if not repo or not isinstance(issue.get("number"), int):
        return _result(params, False, "the payload carries no issue and repository", action=action)
    if label not in label_names(issue.get("labels")):
        return _result(params, False, f"the issue does not carry the label {label!r}", action=action)
    if params.event == "issues":
        if action not in ISSUE_ACTIONS:
            return _result(params, False, f"issues.{action} does not start training", action=action)
        sender = login_of(payload.get("sender"))
    else:
        comment: dict[str, Any] = payload["comment"] if isinstance(payload.get("comment"), dict) else {}
        if action != "created":
            return _result(params, False, f"issue_comment.{action} does not start training", action=action)
        if not str(comment.get("body") or "").lstrip().startswith(COMMAND):
            return _result(params, False, f"the comment does not start with {COMMAND}", action=action)
        association = comment.get("author_association")
        if association not in TRUSTED_ASSOCIATIONS:
            return _result(
                params,
                False,
                f"the commenter's association is {association}: only OWNER, MEMBER or COLLABORATOR may start training",
                action=action,
            )
        sender = login_of(comment.get("user"))
    try:
        parsed = parse_body(ctx, str(issue.get("body") or ""))
    except InvalidInputError as exc:  # a body over the size limit
        return _result(params, False, exc.message, action=action)
    if not parsed.valid:
        return _result(params, False, "the issue's training config is invalid", action=action, errors=parsed.errors)
    request = TrainRequest(
        kind="train",
        repository=str(repo.get("full_name") or ""),
        issue_number=issue["number"],
        config=parsed.config_json() or {},
        sender=sender,
        trigger=f"{params.event}.{action}",
    )
    reason = f"training requested by {params.event}.{action}"
    if not params.run:
        return _result(params, True, reason, action=action, request=request)
    run_id, run_error = _start_pipeline(ctx, request)
    return _result(params, True, reason, action=action, request=request, run_id=run_id, run_error=run_error)


def _start_pipeline(ctx: ToolContext, request: TrainRequest) -> tuple[str | None, str | None]:
    """Start the pipeline through the router by name (ml_training owns it), without waiting."""
    arguments = {
        "repository": request.repository,
        "issue_number": request.issue_number,
        "config": request.config,
        "wait": False,
    }
    try:
        result = ctx.call_tool("run_pipeline", arguments)
    except MLOpsError as exc:
        return None, str(exc)
    texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
    if result.is_error:
        return None, "\n".join(texts) or "run_pipeline failed"
    data = result.structured_content or {}
    return (str(data["run_id"]), None) if data.get("run_id") else (None, "run_pipeline returned no run_id")
