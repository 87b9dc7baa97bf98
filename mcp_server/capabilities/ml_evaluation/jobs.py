"""Evaluations as jobs: evaluate_*, compare_models, evaluate_reinforcement and generate_report run
like the trainers.

A call first runs the tool's cheap checks (metric names, bundle metadata and task, the test data
exists) off the event loop and before any job exists, so bad input fails at once even with
`wait: false`. The evaluation itself is a thread job of kind `evaluation`, with its own limit
(`MLOPS_MAX_CONCURRENT_EVALUATIONS`): it never queues behind a long training. The call waits up to
`max_wait_seconds`, then answers with the job handle; `get_training_metrics` returns the result.
The work saves its evaluation JSON only past `job.begin_publish()`, so a cancelled evaluation
leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread

from mcp_server.capabilities.base import (
    HANDLE_ONLY,
    Artifact,
    JobInput,
    JobOutput,
    ToolContext,
    ToolOutput,
    job_handle,
    job_outcome,
)
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.common.jobs import Job, run_job

KIND = "evaluation"
P = TypeVar("P")


async def run_evaluation(
    ctx: ToolContext,
    tool: str,
    params: JobInput,
    output_model: type[JobOutput],
    check: Callable[[], P],
    work: Callable[[Job, P], dict[str, Any]],
    summary: Callable[[dict[str, Any]], str],
    info: dict[str, Any],
    artifacts: Callable[[dict[str, Any]], list[Artifact]] | None = None,
) -> ToolOutput:
    """Check (at once), then run `work(job, checked)` as an evaluation job and shape its answer
    (`artifacts`: what the result links; default its saved evaluation JSON)."""
    checked = await anyio.to_thread.run_sync(check)
    job = await run_job(
        ctx.jobs,
        tool,
        lambda job: work(job, checked),
        kind=KIND,
        wait=params.wait,
        max_wait_seconds=params.wait_limit(ctx.config),
        progress=ctx,
        info={k: v for k, v in info.items() if v},
    )
    job_outcome(job, "no evaluation was saved")
    if job.status != "succeeded":
        return job_handle(ctx, job, output_model)
    assert job.result is not None
    data = output_model.model_validate(job.result)
    links = (artifacts or _saved_evaluation)(job.result)
    return ToolOutput(data=data, artifacts=links, summary=summary(job.result))


def _saved_evaluation(result: dict[str, Any]) -> list[Artifact]:
    uri = result.get("evaluation_s3_uri")
    return [Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="application/json")] if uri else []


def finish(
    job: Job,
    ctx: ToolContext,
    output_model: type[JobOutput],
    result: dict[str, Any],
    save_under: str | None,
    steps: float,
) -> dict[str, Any]:
    """The end of every evaluation job: validate the result, then (past the commit point) save it
    under `save_under` (a model bundle) when asked, and report the last of `steps` done. Returns
    the job's result, as JSON."""
    data = output_model.model_validate({**result, "job_id": job.job_id, "status": "succeeded"})
    shown = data.model_dump(mode="json", exclude=set(HANDLE_ONLY))
    job.begin_publish()  # a cancel after this point is too late: the evaluation is saved
    if save_under is not None:
        shown["evaluation_s3_uri"] = ev.save_evaluation(ctx.storage, save_under, job.tool, shown)
    job.report(steps, steps, "done")
    return shown
