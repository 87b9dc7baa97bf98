"""Trainers as data, and what every trainer tool does around its fitting code.

A `Trainer` row (name, models, and the names of its fit and prepare functions) becomes a tool:
check the call (the output folder, the inputs that must exist, the trainer's own `prepare`),
run the fit as a job in a worker process, wait for it up to max_wait_seconds, and shape the
result (or the job handle) for the client. Adding a trainer is one fit function and one row.

Fit and prepare functions are named ("module:function"), not imported: the server imports a
`prepare` module when a call needs it, and only the worker process imports the fit's. A `setup`
runs in the server when the job starts, before its worker gets the fit: it hands the fit what
only the server has (the RL trainers: the address and credentials of the server's one Ray).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from mcp_server.capabilities.base import (
    Artifact,
    JobInput,
    ToolContext,
    ToolOutput,
    ToolSpec,
    import_tool_function,
    job_handle,
    job_outcome,
)
from mcp_server.capabilities.ml_training.schemas import TrainingOutput
from mcp_server.common.bundles import METADATA, Family, write_bundle
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.history import capped_history
from mcp_server.common.jobs import Job, Work, run_job
from mcp_server.common.s3_utils import Location, S3Utils
from mcp_server.common.workers import ProcessTask

Fit = Callable[..., dict[str, Any]]  # fit(job, storage, params, model_loc, *prepared), in a worker process
# prepare(storage, params, model_loc[, services]): checks before any job; returns more fit args
Prepare = Callable[..., tuple[Any, ...]]
Setup = Callable[[Job, S3Utils], tuple[Any, ...]]  # in the server's job thread; returns more fit args
_DATA_INPUTS = ("train_data_s3_uri", "validation_data_s3_uri")


@dataclass(frozen=True)
class Backend:
    """Another place a trainer can train (`backend: name`): its own fit and checks, which hand the
    work to a cluster or a cloud service and turn what comes back into the same bundle."""

    name: str
    fit: str  # "module:function", as Trainer.fit
    prepare: str | None = None  # "module:function", as Trainer.prepare
    worker_process: bool = True
    # True: prepare(storage, params, model_loc, services) also gets the server's Services (its AWS
    # clients). Only for in-process drivers (worker_process False): what it returns is not pickled.
    services: bool = False


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
    backends: tuple[Backend, ...] = ()  # other places it can train (the `backend` input); default local
    setup: str | None = None  # "module:function": setup(job, storage) -> more fit args, in the server
    preload: tuple[str, ...] = ()  # modules the fit imports (a spare worker imports them ahead)

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
            # The fork server imports the fit's module once; not a fit with heavy `preload` (RLlib),
            # whose imports a spare worker makes after such a job instead.
            worker_modules=() if self.preload else (self.fit.partition(":")[0],),
        )


async def train(trainer: Trainer, ctx: ToolContext, params: Any) -> ToolOutput:
    """The tool function of every trainer (`params`: an instance of its input model)."""

    chosen = getattr(params, "backend", "local")
    backend = next((b for b in trainer.backends if b.name == chosen), None)
    prepare_name = backend.prepare if backend else trainer.prepare

    def check() -> tuple[Location, tuple[Any, ...]]:
        model_loc = output_folder(ctx.storage, params.model_output_s3_uri)
        prepared: tuple[Any, ...] = ()
        if prepare_name:
            prepare: Prepare = import_tool_function(prepare_name)
            services = (ctx.services,) if backend and backend.services else ()
            prepared = prepare(ctx.storage, params, model_loc, *services)
        return model_loc, prepared

    # Checks do I/O (S3 HEAD) and may import a module: off the event loop.
    model_loc, prepared = await anyio.to_thread.run_sync(check)
    return await run_trainer(
        ctx,
        trainer.name,
        params,
        trainer.output_model,
        backend.fit if backend else trainer.fit,
        (params, model_loc, *prepared),
        model_loc=model_loc,
        worker_process=backend.worker_process if backend else True,
        setup=None if backend else trainer.setup,
        preload=() if backend else trainer.preload,
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
        if uri:
            storage.resolve_existing(uri, field)


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
    setup: str | None = None,
    preload: tuple[str, ...] = (),
) -> ToolOutput:
    """Run the fit named `fit` as `fit(job, storage, *fit_args)` in a worker process and answer
    with its result, or with the job handle if it outlives the wait."""
    inputs = {name: getattr(params, name, None) for name in _DATA_INPUTS}
    # Existence checks are quick but do I/O (S3 HEAD): off the event loop, before any job exists,
    # so a typo fails at once even with wait=false.
    await anyio.to_thread.run_sync(_check_inputs_exist, ctx.storage, inputs)

    info = {"model_output_s3_uri": model_loc.uri, **{k: v for k, v in inputs.items() if v}}
    limit = params.wait_limit(ctx.config)
    storage = ctx.storage
    task: Work = (
        ProcessTask(_timed, (fit, *fit_args), setup=_setup_of(setup, storage), preload=preload)
        if worker_process
        else lambda job: _timed(job, storage, fit, *fit_args)  # a driver of a remote service
    )
    job = await run_job(ctx.jobs, tool, task, wait=params.wait, max_wait_seconds=limit, progress=ctx, info=info)
    return job_output(ctx, job, output_model, model_loc)


def _setup_of(name: str | None, storage: S3Utils) -> Callable[[Job], tuple[Any, ...]] | None:
    if name is None:
        return None
    setup: Setup = import_tool_function(name)
    return lambda job: setup(job, storage)


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
    job_outcome(job, "no model was written")
    if job.status != "succeeded":
        return job_handle(ctx, job, output_model, model_output_s3_uri=model_loc.uri)
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
