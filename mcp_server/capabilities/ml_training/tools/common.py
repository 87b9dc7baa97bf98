"""Trainers as data, and what every trainer tool does around its fitting code.

A `Trainer` row (name, models, and the names of its fit and prepare functions) becomes a tool:
check the call (the output folder, the inputs that must exist, the trainer's own `prepare`),
run the fit as a job in a worker process, wait for it up to max_wait_seconds, and shape the
result (or the job handle) for the client. Adding a trainer is one fit function and one row.

Fit and prepare functions are named ("module:function"), not imported: the server imports a
`prepare` module when a call needs it, and only the worker process imports the fit's.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput, ToolSpec, import_tool_function
from mcp_server.capabilities.ml_training.schemas import JobInput, TrainingOutput
from mcp_server.common.bundles import METADATA, Family, write_bundle
from mcp_server.common.exceptions import CancelledError, InvalidInputError, MLOpsError, NotFoundError
from mcp_server.common.history import capped_history
from mcp_server.common.jobs import Job, Work, run_job
from mcp_server.common.s3_utils import Location, S3Utils
from mcp_server.common.workers import ProcessTask

Fit = Callable[..., dict[str, Any]]  # fit(job, storage, params, model_loc, *prepared), in a worker process
Prepare = Callable[[S3Utils, Any, Location], tuple[Any, ...]]  # checks before any job; returns more fit args
_DATA_INPUTS = ("train_data_s3_uri", "validation_data_s3_uri")


@dataclass(frozen=True)
class Trainer:
    """One trainer as data: the tool and its job are built from this row."""

    name: str
    title: str
    description: str
    unit: str  # what one progress step is: "boosting round", "epoch", ...
    input_model: type[JobInput]
    output_model: type[TrainingOutput]
    fit: str  # "module:function": fit(job, storage, params, model_loc, *prepared)
    prepare: str | None = None  # "module:function": prepare(storage, params, model_loc) -> prepared
    worker_process: bool = True  # False: the fit runs in a thread of the server (it only drives others)

    def tool_spec(self) -> ToolSpec:
        return ToolSpec(
            name=self.name,
            title=self.title,
            description=f"{self.description} A job; progress per {self.unit}.",
            input_model=self.input_model,
            output_model=self.output_model,
            fn=functools.partial(train, self),
            read_only=False,
            destructive=True,  # overwrites an existing output
            idempotent=True,  # with random_state, the same call writes the same model again
            open_world=False,
            worker_modules=(self.fit.partition(":")[0],) if self.worker_process else (),
        )


async def train(trainer: Trainer, ctx: ToolContext, params: Any) -> ToolOutput:
    """The tool function of every trainer (`params`: an instance of its input model)."""

    def check() -> tuple[Location, tuple[Any, ...]]:
        model_loc = output_folder(ctx.storage, params.model_output_s3_uri)
        prepared: tuple[Any, ...] = ()
        if trainer.prepare:
            prepare: Prepare = import_tool_function(trainer.prepare)
            prepared = prepare(ctx.storage, params, model_loc)
        return model_loc, prepared

    # Checks do I/O (S3 HEAD) and may import a module: off the event loop.
    model_loc, prepared = await anyio.to_thread.run_sync(check)
    return await run_trainer(
        ctx,
        trainer.name,
        params,
        trainer.output_model,
        trainer.fit,
        (params, model_loc, *prepared),
        model_loc=model_loc,
        worker_process=trainer.worker_process,
    )


def publish_bundle(
    job: Job,
    storage: S3Utils,
    model_loc: Location,
    model: Any,
    family: Family,
    meta: dict[str, Any],
    total: float,
    **extra: Any,
) -> dict[str, Any]:
    """The end of every fit: write the bundle (past the commit point, metadata last) and report done.
    `extra` goes to `write_bundle` (preprocessor, extra_files)."""
    job.report(total - 0.5, total, "writing the model bundle")
    final = write_bundle(storage, model_loc, model, family, meta, check_cancelled=job.begin_publish, **extra)
    job.mark("write")
    job.report(total, total, "done")
    return final


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
    fit: str,
    fit_args: tuple[Any, ...],
    *,
    model_loc: Location,
    worker_process: bool = True,
) -> ToolOutput:
    """Run the fit named `fit` as `fit(job, storage, *fit_args)` in a worker process and answer
    with its result, or with the job handle if it outlives the wait."""
    inputs = {name: getattr(params, name, None) for name in _DATA_INPUTS}
    # Existence checks are quick but do I/O (S3 HEAD): off the event loop, before any job exists,
    # so a typo fails at once even with wait=false.
    await anyio.to_thread.run_sync(_check_inputs_exist, ctx.storage, inputs)

    info = {"model_output_s3_uri": model_loc.uri, **{k: v for k, v in inputs.items() if v}}
    limit = ctx.config.default_max_wait_seconds if params.max_wait_seconds is None else params.max_wait_seconds
    storage = ctx.storage
    task: Work = (
        ProcessTask(_timed, (fit, *fit_args)) if worker_process else lambda job: _timed(job, storage, fit, *fit_args)
    )
    job = await run_job(ctx.jobs, tool, task, wait=params.wait, max_wait_seconds=limit, progress=ctx, info=info)
    return job_output(ctx, job, output_model, model_loc)


def _timed(job: Job, storage: S3Utils, fit_name: str, *args: Any) -> dict[str, Any]:
    """Runs in the worker: imports the fit there, runs it, and records how long it took."""
    fit: Fit = import_tool_function(fit_name)
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
