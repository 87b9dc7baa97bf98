"""get_training_metrics (a job's status, progress and results, or a bundle's recorded metrics)
and cancel_training_job (stop a job that outlived the request that started it)."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext
from mcp_server.capabilities.ml_training.schemas import (
    CancelTrainingJobInput,
    CancelTrainingJobOutput,
    GetTrainingMetricsInput,
    GetTrainingMetricsOutput,
)
from mcp_server.common.bundles import METADATA, read_bundle
from mcp_server.common.history import capped_history
from mcp_server.common.jobs import FINAL_STATUSES


def get_training_metrics(ctx: ToolContext, params: GetTrainingMetricsInput) -> GetTrainingMetricsOutput:
    if params.job_id:
        record = ctx.jobs.read(params.job_id)
        # The top-level history stands for the result's: the job record keeps the full series.
        result = {k: v for k, v in (record.get("result") or {}).items() if k != "history"} or None
        error = record.get("error") or None
        history = record.get("history") or (record.get("result") or {}).get("history")
        return GetTrainingMetricsOutput(
            job_id=record["job_id"],
            tool=record.get("tool"),
            status=record["status"],
            progress=record.get("progress"),
            queue_position=record.get("queue_position"),
            model_s3_uri=(result or {}).get("model_s3_uri"),
            # A job that drives a remote service publishes the service's own figures while it runs.
            metrics=(result or {}).get("metrics") or (record.get("info") or {}).get("live_metrics"),
            **capped_history(history, ctx.jobs.record_location(params.job_id).uri),
            error=(error.get("text") or error.get("message")) if error else None,
            result=result,
            created_at=record.get("created_at"),
            started_at=record.get("started_at"),
            finished_at=record.get("finished_at"),
        )
    assert params.model_s3_uri is not None
    # load=False still verifies every artifact's sha256: a tampered bundle is refused here too.
    bundle = read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri", load=False)
    meta = bundle.metadata
    return GetTrainingMetricsOutput(
        job_id=meta.get("job_id"),
        status="succeeded",
        model_s3_uri=bundle.uri,
        metrics=meta.get("metrics"),
        **capped_history(meta.get("history"), ctx.storage.join(ctx.storage.resolve(bundle.uri), METADATA).uri),
        finished_at=meta.get("created_at"),
        result={
            key: meta.get(key)
            for key in ("algorithm", "task_type", "feature_names", "target_column", "classes", "random_state")
        },
    )


def cancel_training_job(ctx: ToolContext, params: CancelTrainingJobInput) -> CancelTrainingJobOutput:
    runner = ctx.jobs
    record = runner.read(params.job_id)  # validates the id; not found is an error
    if record["status"] in FINAL_STATUSES:
        return CancelTrainingJobOutput(
            job_id=params.job_id, status=record["status"], message=f"the job had already ended ({record['status']})"
        )
    job = runner.get(params.job_id)
    if job is None:  # another replica on the same storage runs it: leave it a cancel marker
        runner.request_cancel(params.job_id)
        return CancelTrainingJobOutput(
            job_id=params.job_id,
            status=record["status"],
            message="cancellation requested from the server process that runs it; it stops within a few "
            "seconds (poll get_training_metrics)",
        )
    runner.cancel(params.job_id)
    if job.done_event.wait(params.wait_seconds):
        message = "cancelled; nothing was published" if job.status == "cancelled" else f"it ended as {job.status}"
    else:
        message = "cancellation requested; the job stops at its next step (poll get_training_metrics)"
    return CancelTrainingJobOutput(job_id=params.job_id, status=job.status, message=message)
