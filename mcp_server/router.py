"""ToolRouter: maps each tool name to its capability's spec, validates calls and shapes results.

Every expected failure becomes `CallToolResult(is_error=True)` with an actionable message; an
unexpected exception becomes a short `is_error` result too, with its traceback on stderr only.
"""

from __future__ import annotations

import base64
import inspect
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from pydantic import BaseModel, ValidationError

from mcp_server.capabilities.base import BaseCapability, ProgressSender, ToolContext, ToolOutput, ToolSpec
from mcp_server.common.exceptions import ConfigError, MLOpsError
from mcp_server.common.logger import get_logger, log_event, redact
from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.secrets import SecretStore
from mcp_server.common.services import Services
from mcp_server.config import Config

_log = get_logger(__name__)
_MAX_ERRORS_SHOWN = 10


def format_validation_error(error: ValidationError) -> str:
    """One line per problem, naming the field: `hyperparameters.n_estimators: must be >= 1`."""
    lines = []
    for item in error.errors()[:_MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in item.get("loc", ())) or "arguments"
        msg = item.get("msg", "invalid value")
        if item.get("type") == "extra_forbidden":
            msg = "unknown field; remove it (see the tool's inputSchema for accepted fields)"
        elif item.get("type") == "missing":
            msg = "required field is missing"
        lines.append(f"{loc}: {msg}")
    more = len(error.errors()) - _MAX_ERRORS_SHOWN
    if more > 0:
        lines.append(f"... and {more} more")
    return "Invalid arguments:\n" + "\n".join(lines)


def error_result(message: str, details: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        structured_content={"error": details or {"message": message}},
        is_error=True,
    )


def success_result(spec: ToolSpec, output: ToolOutput) -> types.CallToolResult:
    data = output.data.model_dump(mode="json")
    text = json.dumps(data, indent=2, default=str)
    if output.summary:
        text = f"{output.summary}\n{text}"
    content: list[Any] = [types.TextContent(type="text", text=text)]
    for image in output.images:
        content.append(types.ImageContent(type="image", data=base64.b64encode(image).decode(), mime_type="image/png"))
    for artifact in output.artifacts:
        content.append(
            types.ResourceLink(
                type="resource_link",
                name=artifact.name,
                uri=artifact.uri,
                mime_type=artifact.mime_type,
                description=artifact.description,
            )
        )
    return types.CallToolResult(content=content, structured_content=data, is_error=False)


class ToolRouter:
    """Built once from the capabilities; a duplicate tool name is a start-up error."""

    def __init__(self, capabilities: Sequence[BaseCapability], config: Config) -> None:
        self.config = config
        self.services = Services(config)
        self._specs: dict[str, ToolSpec] = {}
        self._owner: dict[str, str] = {}
        self.services.call_tool = self.call  # tools calling tools by name (the pipeline), as a client would
        self.services.tool_names = self._specs.keys()  # a live view: filled below
        declared: dict[str, str] = {}  # every tool, also those read-only mode hides: a clash is a bug either way
        for capability in capabilities:
            for spec in capability.tool_specs():
                if spec.name in declared:
                    raise ConfigError(
                        f"tool {spec.name!r} is declared by both {declared[spec.name]} and {capability.name}"
                    )
                declared[spec.name] = capability.name
                if config.read_only and spec.writes:
                    continue
                self._specs[spec.name] = spec
                self._owner[spec.name] = capability.name
        self._tools = [self._describe(spec) for spec in self._specs.values()]

    @property
    def storage(self) -> S3Utils:
        return self.services.storage

    @property
    def secrets(self) -> SecretStore:
        return self.services.secrets

    @property
    def tool_names(self) -> list[str]:
        return list(self._specs)

    def capability_of(self, name: str) -> str:
        return self._owner[name]

    def spec(self, name: str) -> ToolSpec:
        return self._specs[name]

    @staticmethod
    def _describe(spec: ToolSpec) -> types.Tool:
        return types.Tool(
            name=spec.name,
            title=spec.title,
            description=spec.description,
            input_schema=spec.input_model.model_json_schema(),
            output_schema=spec.output_model.model_json_schema(mode="serialization"),
            annotations=types.ToolAnnotations(
                title=spec.title,
                read_only_hint=spec.read_only,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent,
                open_world_hint=spec.open_world,
            ),
        )

    def list_tools(self) -> list[types.Tool]:
        return list(self._tools)

    def make_context(self, progress_sender: ProgressSender | None = None) -> ToolContext:
        token = None
        try:
            token = anyio.lowlevel.current_token()
        except RuntimeError:
            token = None
        return ToolContext(self.services, progress_sender, token)

    async def call(
        self, name: str, arguments: dict[str, Any] | None, progress_sender: ProgressSender | None = None
    ) -> types.CallToolResult:
        spec = self._specs.get(name)
        if spec is None:
            hint = " (the server is read-only)" if self.config.read_only else ""
            return error_result(f"Unknown tool {name!r}{hint}. Call tools/list for the available tools.")
        started = time.perf_counter()
        log_event(_log, 20, "tool call", tool=name, arguments=redact(arguments or {}))
        try:
            params = spec.input_model.model_validate(arguments or {})
        except ValidationError as exc:
            return error_result(format_validation_error(exc), {"kind": "invalid_input", "tool": name})
        ctx = self.make_context(progress_sender)
        try:
            output = await self._run(spec, ctx, params)
        except MLOpsError as exc:
            log_event(_log, 30, "tool failed", tool=name, error=str(exc), kind=exc.kind)
            return error_result(str(exc), exc.to_dict())
        except ValidationError as exc:  # a tool validating nested data with a pydantic model
            return error_result(format_validation_error(exc), {"kind": "invalid_input", "tool": name})
        except Exception as exc:
            _log.exception("unexpected error in tool %s", name)
            return error_result(
                f"{name} failed unexpectedly ({type(exc).__name__}). The details are in the server log; "
                "check the inputs and try again.",
                {"kind": "internal_error", "type": type(exc).__name__},
            )
        finally:
            ctx.detach()
        log_event(_log, 20, "tool done", tool=name, seconds=round(time.perf_counter() - started, 3))
        if isinstance(output, BaseModel):
            output = ToolOutput(data=output)
        return success_result(spec, output)

    async def _run(self, spec: ToolSpec, ctx: ToolContext, params: BaseModel) -> Any:
        if inspect.iscoroutinefunction(spec.fn):
            try:
                return await spec.fn(ctx, params)
            except anyio.get_cancelled_exc_class():
                ctx.cancelled.set()
                raise
        finished = threading.Event()

        def work() -> Any:
            try:
                return spec.fn(ctx, params)
            finally:
                finished.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            # Tell the worker to stop, and wait (shielded) until it has cleaned up, so a cancelled
            # call never leaves a half-written artifact behind.
            ctx.cancelled.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
            raise
