"""What every trainer tool does around its fitting code: check the call, run the work as a job,
wait for it up to max_wait_seconds, and shape the result (or the job handle) for the client."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_training.schemas import JobInput, TrainingOutput
from mcp_server.common.bundles import METADATA
from mcp_server.common.exceptions import CancelledError, InvalidInputError, MLOpsError, NotFoundError
from mcp_server.common.history import capped_history
from mcp_server.common.jobs import Job, run_job
from mcp_server.common.s3_utils import Location, S3Utils
from mcp_server.common.workers import ProcessTask

Fit = Callable[..., dict[str, Any]]  # fit(job, storage, *args), module-level: it runs in a worker process
_DATA_INPUTS = ("train_data_s3_uri", "validation_data_s3_uri")


def output_folder(storage: S3Utils, uri: str, field: str = "model_output_s3_uri") -> Location:
    """Where a bundle goes: a folder (an existing file there, or a data-file name, is refused)."""
    loc = storage.resolve(uri, field)
    if loc.name == METADATA:
        loc = storage.parent(loc)
    if loc.suffix in (".csv", ".parquet", ".json", ".pkl", ".pickle", ".joblib", ".onnx"):
        raise InvalidInputError(
            f"{loc.uri} looks like a file name; a model bundle is a folder",
            field=field,
            hint="Pass a folder such as models/my-model.",
        )
    if loc.scheme == "local" and loc.path is not None and loc.path.is_file():
        raise InvalidInputError(f"{loc.uri} is an existing file, not a folder", field=field)
    storage.check_output(loc, field, "model")
    return loc


def _check_inputs_exist(storage: S3Utils, uris: dict[str, str | None]) -> None:
    for field, uri in uris.items():
        if uri and not storage.exists(storage.resolve(uri, field)):
            raise NotFoundError(f"{uri} does not exist", field=field, hint="Check the URI or list the prefix.")


async def run_trainer(
    ctx: ToolContext,
    tool: str,
    params: JobInput,
    output_model: type[TrainingOutput],
    fit: Fit,
    fit_args: tuple[Any, ...],
    *,
    model_loc: Location,
) -> ToolOutput:
    """Run `fit(job, storage, *fit_args)` as a job in a worker process and answer with its result,
    or with the job handle if it outlives the wait."""
    inputs = {name: getattr(params, name, None) for name in _DATA_INPUTS}
    # Existence checks are quick but do I/O (S3 HEAD): off the event loop, before any job exists,
    # so a typo fails at once even with wait=false.
    await anyio.to_thread.run_sync(_check_inputs_exist, ctx.storage, inputs)

    info = {"model_output_s3_uri": model_loc.uri, **{k: v for k, v in inputs.items() if v}}
    limit = ctx.config.default_max_wait_seconds if params.max_wait_seconds is None else params.max_wait_seconds
    task = ProcessTask(_timed, (fit, *fit_args))
    job = await run_job(ctx.jobs, tool, task, wait=params.wait, max_wait_seconds=limit, progress=ctx, info=info)
    return job_output(ctx, job, output_model, model_loc)


def _timed(job: Job, storage: S3Utils, fit: Fit, *args: Any) -> dict[str, Any]:
    started = time.perf_counter()
    result = fit(job, storage, *args)
    result["training_seconds"] = round(time.perf_counter() - started, 3)
    result["timings"] = dict(job.timings)
    return result


def job_output(ctx: ToolContext, job: Job, output_model: type[TrainingOutput], model_loc: Location) -> ToolOutput:
    """The tool result for a job: its result when it succeeded, its error when it failed, else the handle."""
    if job.status == "failed":
        if isinstance(job.exception, MLOpsError):
            raise job.exception
        raise MLOpsError(str((job.error or {}).get("message") or "the training job failed"))
    if job.status == "cancelled":
        raise CancelledError(f"job {job.job_id} was cancelled; no model was written")
    record = ctx.jobs.record(job)
    if job.status == "succeeded":
        assert job.result is not None
        full_history = ctx.storage.join(model_loc, METADATA).uri  # the bundle keeps every entry
        data = output_model.model_validate(
            {
                **job.result,
                **capped_history(job.result.get("history"), full_history),
                "job_id": job.job_id,
                "status": "succeeded",
                "model_output_s3_uri": model_loc.uri,
            }
        )
        artifacts = [Artifact(model_loc.uri, "model bundle", "inode/directory", "the trained model bundle")]
        for key in ("transformed_s3_uri", "embedding_s3_uri"):
            extra = job.result.get(key)
            if extra:
                artifacts.append(Artifact(str(extra), key.removesuffix("_s3_uri"), "application/vnd.apache.parquet"))
        summary = f"{job.tool}: {job.result.get('algorithm', 'model')} written to {model_loc.uri}"
        return ToolOutput(data=data, artifacts=artifacts, summary=summary)
    data = output_model(
        job_id=job.job_id,
        status=job.status,
        progress=record["progress"],
        queue_position=record["queue_position"],
        model_output_s3_uri=model_loc.uri,
        message=(
            f"the job is {job.status}; poll get_training_metrics with job_id={job.job_id!r} "
            "until its status is succeeded, failed or cancelled"
        ),
    )
    return ToolOutput(data=data, summary=f"{job.tool}: job {job.job_id} is {job.status}")
