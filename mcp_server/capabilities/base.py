"""What every capability and tool module provides: `ToolSpec`, `ToolContext`, `ToolOutput`.

A tool is a function `fn(ctx, params) -> OutputModel | ToolOutput`. Plain functions run in a
worker thread (so CPU-heavy work never blocks the event loop); `async def` tools run on the loop
and must offload their own heavy work (the training job runner does).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.from_thread
from pydantic import BaseModel, ConfigDict

from mcp_server.common.exceptions import CancelledError, MLOpsError
from mcp_server.common.logger import get_logger

if TYPE_CHECKING:
    import mcp_types

    from mcp_server.common.jobs import JobRunner
    from mcp_server.common.s3_utils import S3Utils
    from mcp_server.common.secrets import SecretStore
    from mcp_server.common.services import Services
    from mcp_server.config import Config

_log = get_logger(__name__)


class ToolInput(BaseModel):
    """Base of every tool's input model: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ToolResultModel(BaseModel):
    """Base of every tool's output model (the `structured_content` and its `outputSchema`)."""

    model_config = ConfigDict(extra="forbid")


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


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its contract (models, annotations) and the function that does the work."""

    name: str
    description: str
    input_model: type[ToolInput]
    output_model: type[BaseModel]
    fn: ToolFn
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool
    title: str | None = None

    @property
    def writes(self) -> bool:
        return not self.read_only


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
