"""run_pipeline and get_pipeline_run (TOOLS.md section 7): the issue-driven pipeline as a job.

The config is validated by `parse_issue_config`, called through the router by name (its model
belongs to github_integration); the run itself is `pipeline.PipelineRun`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any

import anyio.to_thread

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_training.pipeline import (
    PIPELINES_PREFIX,
    PipelineRun,
    Target,
    idempotency_key,
    result_data,
    result_text,
    stage_plan,
    task_of,
    thresholds_for,
)
from mcp_server.capabilities.ml_training.schemas import (
    GetPipelineRunInput,
    PipelineStage,
    RunPipelineInput,
    RunPipelineOutput,
)
from mcp_server.common.exceptions import ConflictError, InvalidInputError, NotFoundError
from mcp_server.common.jobs import FINAL_STATUSES, new_job_id, run_job
from mcp_server.common.s3_utils import json_bytes, parse_json

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_RERUNNABLE = frozenset({"failed", "cancelled"})  # an earlier run that ended so may be run again
_JOB_MISSING = "its job record is missing"
_STARTING_SECONDS = 60.0  # a claim this young whose run has no job yet is still being started


async def resolve_config(ctx: ToolContext, params: RunPipelineInput) -> dict[str, Any]:
    """The normalised training config, validated by parse_issue_config (a config, or the issue's body)."""
    if "parse_issue_config" not in ctx.services.tool_names or ctx.services.call_tool is None:
        raise InvalidInputError(
            "run_pipeline validates its config with parse_issue_config, which this server does not offer",
            field="config",
            hint="Enable the github_integration capability (MLOPS_CAPABILITIES).",
        )
    if params.config is not None:
        field = "config"
        arguments: dict[str, Any] = {"body": "```json\n" + json.dumps(params.config) + "\n```"}
    else:
        field = "issue_number"
        arguments = {"repository": params.repository, "issue_number": params.issue_number}
    result = await ctx.services.call_tool("parse_issue_config", arguments)
    if result.is_error:
        raise InvalidInputError(f"could not read the training config: {result_text(result)}", field=field)
    parsed = result_data(result)
    if not parsed.get("valid"):
        problems = "\n".join(f"config.{e['field']}: {e['message']}" for e in parsed.get("errors") or [])
        raise InvalidInputError(f"the training config is invalid:\n{problems}", field="config")
    config = parsed["config"]
    assert isinstance(config, dict)
    return {k: v for k, v in config.items() if v not in (None, [], {})} | {"algorithms": config["algorithms"]}


def run_location(ctx: ToolContext, run_id: str) -> Any:
    if not _RUN_ID.match(run_id):
        raise InvalidInputError(
            f"{run_id!r} is not a run id", field="run_id", hint="Pass the run_id run_pipeline returned."
        )
    return ctx.storage.resolve(f"{PIPELINES_PREFIX}/{run_id}.json", "run_id")


def read_run(ctx: ToolContext, run_id: str) -> dict[str, Any]:
    """A run record as it stands; a run left live by a server that is gone reads as failed."""
    loc = run_location(ctx, run_id)
    if not ctx.storage.exists(loc):
        raise NotFoundError(
            f"no pipeline run {run_id!r}", field="run_id", hint="Pass the run_id run_pipeline returned."
        )
    record = parse_json(ctx.storage.read_bytes(loc, max_bytes=16 * 1024**2), loc.uri)
    if not isinstance(record, dict):
        raise NotFoundError(f"the record of run {run_id!r} is unreadable", field="run_id")
    if record.get("status") not in FINAL_STATUSES:
        # The job knows better when it ended without the run writing its record: cancelled while
        # queued, or left behind by a server that is gone (read from storage, "lost").
        try:
            job = ctx.jobs.read(run_id)
        except NotFoundError:
            job = {"status": "failed", "error": {"message": _JOB_MISSING}}
        if job.get("status") in FINAL_STATUSES:
            message = (job.get("error") or {}).get("message") or job["status"]
            record.update(status="failed" if job["status"] != "cancelled" else "cancelled", error=message)
            for stage in record.get("stages", []):
                if stage.get("status") in ("pending", "running"):
                    stage["status"] = "skipped" if stage["status"] == "pending" else "failed"
    return record


def _claim(ctx: ToolContext, key: str, run_id: str) -> dict[str, Any] | None:
    """Record `run_id` as the run of `key` (create-only: of two racing requests one wins); returns
    the earlier run instead when one stands (live, succeeded, or still being started)."""
    loc = ctx.storage.resolve(f"{PIPELINES_PREFIX}/keys/{hashlib.sha256(key.encode()).hexdigest()}.json", "config")
    entry = json_bytes({"key": key, "run_id": run_id, "claimed_epoch": time.time()})
    try:
        ctx.storage.create_only(loc, entry, "application/json")
        return None
    except ConflictError:
        pass
    claim = parse_json(ctx.storage.read_bytes(loc, max_bytes=65536), loc.uri)
    earlier_id = str(claim.get("run_id"))
    starting = time.time() - float(claim.get("claimed_epoch") or 0) < _STARTING_SECONDS
    try:
        earlier: dict[str, Any] | None = read_run(ctx, earlier_id)
    except NotFoundError:  # claimed but not written yet: the winner of a race is starting it
        earlier = {"run_id": earlier_id, "status": "queued", "stages": []} if starting else None
    if earlier is not None and earlier.get("error") == _JOB_MISSING and starting:
        earlier.update(status="queued", error=None)  # its record exists, its job not yet: being started
    if earlier is not None and earlier.get("status") not in _RERUNNABLE:
        return earlier
    ctx.storage.write_bytes(loc, entry, "application/json")  # the earlier run ended badly: this one replaces it
    return None


def _output(record: dict[str, Any], **extra: Any) -> ToolOutput:
    data = RunPipelineOutput.model_validate({**record, **extra})
    artifacts = []
    if data.report_s3_uri:
        artifacts.append(Artifact(data.report_s3_uri, "report", "text/html", "the best model's evaluation report"))
    if data.best_model_s3_uri:
        artifacts.append(Artifact(data.best_model_s3_uri, "best model", "inode/directory", "the best model bundle"))
    verdict = "" if data.passed is None else (", passed" if data.passed else ", did not pass")
    registered = f", registered {data.registered.model_name} v{data.registered.version}" if data.registered else ""
    summary = f"pipeline run {data.run_id}: {data.status}{verdict}{registered}"
    return ToolOutput(data=data, artifacts=artifacts, summary=summary)


async def run_pipeline(ctx: ToolContext, params: RunPipelineInput) -> ToolOutput:
    config = await resolve_config(ctx, params)
    plan = stage_plan(config, list(ctx.services.tool_names))
    if params.dry_run:
        missing = sorted({t for s in plan for t in s["missing_tools"]})
        stages = [{"name": s["name"], "status": "planned", "outputs": {"tools": s["tools"]}} for s in plan]
        for stage, planned in zip(stages, plan, strict=True):
            if planned["missing_tools"]:
                stage["error"] = "not available on this server: " + ", ".join(planned["missing_tools"])
        message = "dry run: the config is valid; nothing ran"
        if missing:
            message += "; tools not available here: " + ", ".join(missing)
        task = task_of(config)
        data = RunPipelineOutput(
            run_id=None,
            status="planned",
            stages=[PipelineStage.model_validate(stage) for stage in stages],
            config=config,
            thresholds=thresholds_for(config, task),
            repository=params.repository,
            issue_number=params.issue_number,
            idempotency_key=idempotency_key(params.repository, params.issue_number, config),
            message=message,
        )
        return ToolOutput(data=data, summary=message)
    key = idempotency_key(params.repository, params.issue_number, config)
    run_id = new_job_id()
    if key is not None:
        earlier = await anyio.to_thread.run_sync(_claim, ctx, key, run_id)
        if earlier is not None:
            return _output(
                earlier, reused=True, message="this issue ran with the same config before: its run is returned"
            )
    target = Target(params.repository, params.issue_number, params.passed_label, params.failed_label)
    run = PipelineRun(ToolContext(ctx.services), run_id, config, target, params.max_retries, key)
    await anyio.to_thread.run_sync(run.persist)
    limit = params.wait_limit(ctx.config)
    info = {"repository": params.repository, "issue_number": params.issue_number, "idempotency_key": key}
    job = await run_job(
        ctx.jobs,
        "run_pipeline",
        run.execute,
        kind="pipeline",
        job_id=run_id,
        wait=params.wait,
        max_wait_seconds=limit,
        progress=ctx,
        info=info,
    )
    record = await anyio.to_thread.run_sync(read_run, ctx, run_id)  # as stored: the job keeps changing its own
    if job.status not in FINAL_STATUSES:
        record["message"] = f"the run is {record['status']}; poll get_pipeline_run with run_id={run_id!r}"
    return _output(record)


def get_pipeline_run(ctx: ToolContext, params: GetPipelineRunInput) -> ToolOutput:
    return _output(read_run(ctx, params.run_id))
