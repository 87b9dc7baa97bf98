"""What every capability and tool module provides: `ToolSpec`, `ToolContext`, `ToolOutput`.

A tool is a function `fn(ctx, params) -> OutputModel | ToolOutput`. Plain functions run in a
worker thread (so CPU-heavy work never blocks the event loop); `async def` tools run on the loop
and must offload their own heavy work (the training job runner does).
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.from_thread
from pydantic import BaseModel, ConfigDict

from mcp_server.common.exceptions import CancelledError
from mcp_server.common.logger import get_logger

if TYPE_CHECKING:
    from mcp_server.common.jobs import JobRunner
    from mcp_server.common.s3_utils import S3Utils
    from mcp_server.common.secrets import SecretStore
    from mcp_server.common.services import Services
    from mcp_server.config import Config

_log = get_logger(__name__)


class ToolInput(BaseModel):
    """Base of every tool's input model: unknown fields are refused, not silently dropped.

    Validators are built on first use (`defer_build`): a start-up that finds the tool list cached
    (capabilities/tool_cache.py) need not build every model.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class ToolResultModel(BaseModel):
    """Base of every tool's output model (the `structured_content` and its `outputSchema`)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    # The fields `outputSchema` lists: what a client reads and chains (None: every field). Results
    # still carry every field; the list keeps `tools/list` short (see capabilities/schema.py).
    key_outputs: ClassVar[tuple[str, ...] | None] = None


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
def import_tool_function(ref: str) -> ToolFn:
    """`"package.module:function"` -> the function (imported once, on the first call)."""
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
