"""What every capability and tool module provides: `ToolSpec`, `ToolContext`, `ToolOutput`.

A tool is a function `fn(ctx, params) -> OutputModel | ToolOutput`. Plain functions run in a
worker thread (so CPU-heavy work never blocks the event loop); `async def` tools run on the loop
and must offload their own heavy work (the training job runner does).

Also here, because trainers and evaluations both run as jobs (common/jobs.py) and capabilities
never import each other: the job inputs every such tool takes (`JobInput`), the fields of its
result while the job has not finished (`JobOutput`), and how a job becomes the tool's answer
(`job_outcome`, `job_handle`).
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
import types
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import anyio
import anyio.from_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from mcp_server.common.exceptions import CancelledError, MLOpsError
from mcp_server.common.jobs import JobStatus
from mcp_server.common.logger import get_logger

if TYPE_CHECKING:
    import mcp_types

    from mcp_server.common.jobs import Job, JobRunner
    from mcp_server.common.s3_utils import S3Utils
    from mcp_server.common.secrets import SecretStore
    from mcp_server.common.services import Services
    from mcp_server.config import Config

_log = get_logger(__name__)


class ToolInput(BaseModel):
    """Base of every tool's input model: unknown fields are refused, not silently dropped.

    Scalars are checked strictly where pydantic's lax mode would guess: a number field accepts a
    JSON number or a numeric string but never a boolean (`n_estimators: true` is not 1), nor
    Infinity/NaN; a boolean field accepts only `true` and `false` (`wait: "yes"` is refused).
    Done here, before validation, so every tool (and every nested model) gets it and the
    generated JSON Schema stays as it is.

    Validators are built on first use (`defer_build`): a start-up that finds the tool list cached
    (capabilities/tool_cache.py) need not build every model.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or info.field_name not in cls.model_fields:
            return value
        problem = scalar_problem(cls.model_fields[info.field_name].annotation, value)
        if problem:
            raise PydanticCustomError("strict_scalar", problem)
        return value


_NUMBERS = (int, float)


def scalar_problem(annotation: Any, value: Any, path: str = "") -> str | None:
    """Why `value` is refused for `annotation` under the strict scalar rules, or None.

    "" means "does not match, and pydantic will say why" (a Literal or a union member that does
    not apply): it fails a union member without producing a message of ours.
    """
    where = f"{path}: " if path else ""
    origin = get_origin(annotation)
    if origin is Annotated:
        return scalar_problem(get_args(annotation)[0], value, path)
    if origin in (Union, types.UnionType):
        members = get_args(annotation)
        if value is None and type(None) in members:
            return None
        problems = [scalar_problem(m, value, path) for m in members if m is not type(None)]
        if any(p is None for p in problems):
            return None
        return next((p for p in problems if p), "")
    if origin is Literal:
        return None if any(value == a and type(value) is type(a) for a in get_args(annotation)) else ""
    if annotation is Any or value is None:
        return None  # pydantic's own checks say it clearly enough
    if annotation is bool:
        return None if isinstance(value, bool) else f"{where}must be true or false, not {_shown(value)}"
    if isinstance(annotation, type) and issubclass(annotation, _NUMBERS):
        if isinstance(value, bool):
            return f"{where}must be a number, not {_shown(value)}"
        number = value
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                return None  # not numeric: pydantic names it
        if isinstance(number, float) and not math.isfinite(number):
            return f"{where}must be a finite number, not {_shown(value)}"
        return None
    if annotation is str:
        return f"{where}must be a string, not {_shown(value)}" if isinstance(value, bool) else None
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        for index, item in enumerate(value):
            item_type = args[min(index, len(args) - 1)] if origin is tuple and args else (args[0] if args else Any)
            problem = scalar_problem(item_type, item, f"{path}[{index}]" if path else f"[{index}]")
            if problem:
                return problem
        return None
    if origin is dict and isinstance(value, Mapping):
        value_type = get_args(annotation)[1] if len(get_args(annotation)) == 2 else Any
        for key, item in value.items():
            problem = scalar_problem(value_type, item, f"{path}.{key}" if path else str(key))
            if problem:
                return problem
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(value, Mapping):
        problems = []
        for name, info in annotation.model_fields.items():
            key = info.alias if info.alias and info.alias in value else name
            if key in value:
                problems.append(scalar_problem(info.annotation, value[key], f"{path}.{key}" if path else key))
        if "" in problems:  # e.g. its discriminator does not match: another union member applies
            return ""
        return next((p for p in problems if p), None)
    return None


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


class ToolResultModel(BaseModel):
    """Base of every tool's output model (the `structured_content` and its `outputSchema`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    # The fields `outputSchema` lists: what a client reads and chains (None: every field). Results
    # still carry every field; the list keeps `tools/list` short (see capabilities/schema.py).
    key_outputs: ClassVar[tuple[str, ...] | None] = None


class JobInput(ToolInput):
    """The inputs of every tool that runs as a job (trainers, evaluations, the pipeline)."""

    wait: bool = Field(default=True, description="false: return job_id at once")
    # What happens then (the job_id) is said once, in the server instructions.
    max_wait_seconds: float | None = Field(default=None, ge=0, le=3600, description="default 50")

    def wait_limit(self, config: Config) -> float:
        """How long the call waits for its job (`max_wait_seconds`, default MLOPS_MAX_WAIT_SECONDS)."""
        return config.default_max_wait_seconds if self.max_wait_seconds is None else self.max_wait_seconds


class JobProgress(BaseModel):
    done: float
    total: float | None = None
    fraction: float | None = None
    message: str | None = None


HANDLE_ONLY = ("message", "progress", "queue_position")  # what only a job that has not finished reports


class JobOutput(ToolResultModel):
    """The result of a job tool: the job, and once it succeeded what it produced.

    While the job has not finished the result is its handle (job_id, status, progress, message)
    and every other field is null, so one output model (and `outputSchema`) takes both shapes;
    `done_fields` are those a succeeded result must still carry.
    """

    done_fields: ClassVar[tuple[str, ...]] = ()

    job_id: str
    status: JobStatus
    message: str | None = Field(default=None, description="what to do next when the job is not finished")
    progress: JobProgress | None = None
    queue_position: int | None = None

    @model_validator(mode="after")
    def _complete_when_done(self) -> JobOutput:
        missing = [name for name in self.done_fields if getattr(self, name) is None]
        if self.status == "succeeded" and missing:
            raise ValueError(f"a succeeded {type(self).__name__} lacks {missing}")
        return self


def job_outcome(job: Job, nothing_written: str) -> None:
    """A failed job raises its own error, a cancelled one says so; else the caller shapes the answer."""
    if job.status == "failed":
        if isinstance(job.exception, MLOpsError):
            raise job.exception
        raise MLOpsError(str((job.error or {}).get("message") or f"the {job.tool} job failed"))
    if job.status == "cancelled":
        raise CancelledError(f"job {job.job_id} was cancelled; {nothing_written}")


def job_handle(ctx: ToolContext, job: Job, output_model: type[JobOutput], **fields: Any) -> ToolOutput:
    """The answer while the job runs on: its id, status and progress, and how to follow it."""
    record = ctx.jobs.record(job)
    data = output_model(
        job_id=job.job_id,
        status=job.status,
        progress=record["progress"],
        queue_position=record["queue_position"],
        message=(
            f"the job is {job.status}; poll get_training_metrics with job_id={job.job_id!r} "
            "until its status is succeeded, failed or cancelled"
        ),
        **fields,
    )
    return ToolOutput(data=data, summary=f"{job.tool}: job {job.job_id} is {job.status}")


@dataclass
class Artifact:
    """Something a tool wrote, returned to the client as a resource link."""

    uri: str
    name: str
    mime_type: str | None = None
    description: str | None = None


@dataclass
class ToolOutput:
    """A tool's full result: the structured data plus artifacts, images and a one-line summary."""

    data: BaseModel
    artifacts: list[Artifact] = field(default_factory=list)
    images: list[bytes] = field(default_factory=list)  # PNG bytes, sent as ImageContent
    summary: str | None = None


ProgressSender = Callable[[float, float | None, str | None], Coroutine[Any, Any, None]]


class ToolContext:
    """What a tool may use: the server's services, progress reporting and cancellation."""

    def __init__(self, services: Services, progress_sender: ProgressSender | None = None, token: Any = None) -> None:
        self.services = services
        self.cancelled = threading.Event()
        self._progress_sender = progress_sender
        self._token = token
        self._detached = False

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def storage(self) -> S3Utils:
        return self.services.storage

    @property
    def secrets(self) -> SecretStore:
        return self.services.secrets

    @property
    def jobs(self) -> JobRunner:
        return self.services.jobs

    def call_tool(self, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        """Call another tool by name through the router, exactly as a client would (its input is
        validated, its failure is an error result). From a thread, never the event loop: on the
        request's loop while the request is live, else on a private loop of this thread (a job)."""
        caller = self.services.call_tool
        if caller is None:
            raise MLOpsError("this server has no tool router to call tools through")
        if self._token is not None and not self._detached:
            try:
                return anyio.from_thread.run(caller, name, arguments, token=self._token)
            except RuntimeError:  # the request's loop has gone: use a private one
                pass
        return anyio.run(caller, name, arguments)

    def detach(self) -> None:
        """Stop sending progress: the request this context belonged to has been answered."""
        self._detached = True

    def check_cancelled(self) -> None:
        """Call between units of work: raises when the client cancelled the request."""
        if self.cancelled.is_set():
            raise CancelledError("the call was cancelled; nothing was written")

    def report_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        """Thread-safe progress report (a no-op when the client sent no progress token)."""
        if self._progress_sender is None or self._detached or self._token is None:
            return
        try:
            anyio.from_thread.run(self._progress_sender, progress, total, message, token=self._token)
        except Exception:  # the client going away must never fail the work itself
            _log.debug("progress notification dropped", exc_info=True)

    async def areport_progress(self, progress: float, total: float | None = None, message: str | None = None) -> None:
        if self._progress_sender is None or self._detached:
            return
        try:
            await self._progress_sender(progress, total, message)
        except Exception:
            _log.debug("progress notification dropped", exc_info=True)


ToolFn = Callable[[ToolContext, Any], Any]


@functools.cache
def import_tool_function(ref: str) -> Callable[..., Any]:
    """`"package.module:function"` -> the function (its module imported on first use). The names
    come from the capability tables in this package, never from a call or from storage."""
    module, _, name = ref.partition(":")
    fn = getattr(importlib.import_module(module), name)
    if not callable(fn):
        raise TypeError(f"{ref} is not a function")
    return fn


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its contract (models, annotations) and the function that does the work."""

    name: str
    description: str
    input_model: type[ToolInput]
    output_model: type[BaseModel]
    # The function, or "package.module:function": tables name their tools' modules instead of
    # importing them, so that listing tools never imports pandas, scikit-learn or the like.
    fn: ToolFn | str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    title: str | None = None
    # Modules the tool's jobs run in a worker process: the fork server imports them once, so no
    # job pays for importing them (the fit modules and, through them, the input models).
    worker_modules: tuple[str, ...] = ()

    @property
    def writes(self) -> bool:
        return not self.read_only

    def function(self) -> ToolFn:
        return import_tool_function(self.fn) if isinstance(self.fn, str) else self.fn


class BaseCapability:
    """A capability is a named table of tool specs; the router is built from these tables."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, config: Config) -> None:
        self.config = config

    def tool_specs(self) -> list[ToolSpec]:
        """The capability's tools. Subclasses return their table; an unfinished one returns []."""
        return []

    # A module beside the tools with `resource_templates()` and/or `prompt_specs()`, imported on
    # first use like the tools' own modules.
    resources_module: ClassVar[str | None] = None

    def resource_templates(self) -> list[ResourceTemplateSpec]:
        """The capability's resources (MCP resources/list, resources/read, templates)."""
        make = getattr(self._resources(), "resource_templates", None)
        return list(make()) if make else []

    def prompt_specs(self) -> list[PromptSpec]:
        """The capability's prompts (MCP prompts/list, prompts/get)."""
        make = getattr(self._resources(), "prompt_specs", None)
        return list(make()) if make else []

    def _resources(self) -> Any:
        import importlib

        return importlib.import_module(self.resources_module) if self.resources_module else None


# ----------------------------------------------------------------------------- resources and prompts
@dataclass(frozen=True)
class ResourceContent:
    """What `resources/read` returns for one URI: text (JSON, HTML, Markdown) or bytes (PNG)."""

    data: str | bytes
    mime_type: str


ResourceReader = Callable[["Services", dict[str, str]], Coroutine[Any, Any, ResourceContent]]
Completer = Callable[["Services", str, dict[str, str]], Coroutine[Any, Any, list[str]]]


@dataclass(frozen=True)
class ResourceTemplateSpec:
    """A family of resources (`mlops://registry/{model_name}`): how to read one, which storage keys
    are one (for `resources/list`), and completions of its arguments."""

    uri_template: str
    name: str
    description: str
    mime_type: str | None
    read: ResourceReader
    # storage key -> (this template's arguments, display name), or None: not one of these
    match_key: Callable[[str], tuple[dict[str, str], str] | None] | None = None
    complete: dict[str, Completer] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptArgumentSpec:
    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class PromptSpec:
    """A standard workflow as an MCP prompt: its arguments, the text it renders, and completions."""

    name: str
    title: str
    description: str
    arguments: tuple[PromptArgumentSpec, ...]
    render: Callable[[dict[str, str]], str]
    complete: dict[str, Completer] = field(default_factory=dict)


async def tool_json(services: Services, tool: str, arguments: dict[str, Any]) -> ResourceContent:
    """A resource read as a tool call by name (how a capability shows its own data), as JSON."""
    import json

    import mcp_types

    if services.call_tool is None or tool not in services.tool_names:
        raise MLOpsError(f"{tool} is not available on this server")
    result = await services.call_tool(tool, arguments)
    texts = [c.text for c in result.content if isinstance(c, mcp_types.TextContent)]
    if result.is_error:
        raise MLOpsError("\n".join(texts))
    return ResourceContent(json.dumps(result.structured_content or {}, indent=1, default=str), "application/json")
