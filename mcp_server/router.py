"""ToolRouter: maps each tool name to its capability's spec, validates calls and shapes results.

Every expected failure becomes `CallToolResult(is_error=True)` with an actionable message; an
unexpected exception becomes a short `is_error` result too, with its traceback on stderr only.
That includes `SystemExit` and other `BaseException`s raised by tool code (or by a library it
imports): one bad call never ends the server. An unknown tool name is a JSON-RPC error (-32602),
as the MCP spec says.
"""

from __future__ import annotations

import base64
import inspect
import json
import secrets
import threading
import time
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel, ValidationError

from mcp_server.capabilities import schema
from mcp_server.capabilities.base import BaseCapability, ProgressSender, ToolContext, ToolOutput, ToolSpec
from mcp_server.capabilities.tool_cache import cached_tools
from mcp_server.common.exceptions import ConfigError, MLOpsError
from mcp_server.common.logger import get_logger, log_event, redact
from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.secrets import SecretStore
from mcp_server.common.services import Services
from mcp_server.config import Config

_log = get_logger(__name__)
_MAX_ERRORS_SHOWN = 10


class ToolAborted(Exception):
    """A `BaseException` (SystemExit, KeyboardInterrupt, ...) that tool code raised, carried as a
    plain failure so it ends the call, not the server."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(type(original).__name__)
        self.original = original


def _never_caught(exc: BaseException) -> bool:
    """What a tool's failure must not swallow: cancellation (anyio, also inside a group),
    generator close, and a Ctrl-C that reached the event loop."""
    if isinstance(exc, BaseExceptionGroup):
        return any(_never_caught(inner) for inner in exc.exceptions)
    return isinstance(exc, anyio.get_cancelled_exc_class() | KeyboardInterrupt | GeneratorExit)


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
    return redact("Invalid arguments:\n" + "\n".join(lines))  # messages may quote the values given


ERROR_META_KEY = "mlops/error"


_LOG_STRING_CHARS = 500


def _loggable(value: Any) -> Any:
    """Arguments as logged: long strings (a webhook payload, file contents) cut to their start."""
    if isinstance(value, str) and len(value) > _LOG_STRING_CHARS:
        return f"{value[:_LOG_STRING_CHARS]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {k: _loggable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_loggable(v) for v in value]
    return value


def error_result(message: str, details: dict[str, Any] | None = None) -> types.CallToolResult:
    """The message (with its field and hint) as text; the error kind machine-readable in `_meta`.

    No `structured_content`: it would not match the tool's `outputSchema`, and the TypeScript SDK
    (Claude Desktop, VS Code, Cursor, the Inspector) validates it on errors too, replacing the
    message with a schema error.
    """
    meta = {k: v for k, v in (details or {"kind": "error"}).items() if v is not None and k != "message"}
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        _meta={ERROR_META_KEY: meta},
        is_error=True,
    )


def compact_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


def default_summary(spec: ToolSpec, output: BaseModel, data: dict[str, Any]) -> str:
    """`load_dataset: rows=569, columns=31`: the scalar key outputs, for tools that give no summary."""
    keys = getattr(output, "key_outputs", None) or list(data)
    scalars = [(k, data[k]) for k in keys if isinstance(data.get(k), str | int | float | bool)][:4]
    return f"{spec.name}: " + (", ".join(f"{k}={str(v)[:80]}" for k, v in scalars) or "done")


# ~20k cl100k tokens of JSON: under the 25k tokens Claude Code accepts from a tool.
MAX_RESULT_CHARS = 60_000
RESULTS_PREFIX = "results"  # server-owned: full results too large to return


def success_result(spec: ToolSpec, output: ToolOutput, storage: S3Utils | None = None) -> types.CallToolResult:
    """The result: a one-line summary (what a person scanning the transcript reads), then the same
    JSON as structured_content, compact (clients that ignore structured_content still get it).

    A result over MAX_RESULT_CHARS is shortened (long lists and maps cut) and, given `storage`
    (not in read-only mode), kept whole at `result_truncated.full_result_s3_uri`.
    """
    data = output.data.model_dump(mode="json")
    summary = output.summary or default_summary(spec, output.data, data)
    body = compact_json(data)
    if len(body) > MAX_RESULT_CHARS:
        data = shortened(spec, data, body, storage)
        body = compact_json(data)
        full_uri = data["result_truncated"]["full_result_s3_uri"]
        summary += f" (shortened; the full result: {full_uri or 'not stored, read-only server'})"
    text = f"{summary}\n{body}"
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


def shortened(spec: ToolSpec, data: dict[str, Any], body: str, storage: S3Utils | None) -> dict[str, Any]:
    full_uri = None
    if storage is not None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        try:
            loc = storage.resolve(f"{RESULTS_PREFIX}/{spec.name}-{stamp}-{secrets.token_hex(4)}.json", "result")
            storage.write_bytes(loc, body.encode(), "application/json")
            full_uri = loc.uri
        except Exception:  # the shortened result is still worth returning
            _log.warning("could not store the full result of %s", spec.name, exc_info=True)
    keep = 50
    while True:
        short = {key: _cut(value, keep) for key, value in data.items()}  # every top-level field stays
        if len(compact_json(short)) <= MAX_RESULT_CHARS or keep == 1:
            break
        keep //= 2
    short["result_truncated"] = {"full_result_s3_uri": full_uri, "items_kept": keep, "characters": len(body)}
    return short


def _cut(value: Any, keep: int) -> Any:
    """Lists to their first `keep` items, maps to their first 2 * `keep` keys, long strings cut."""
    if isinstance(value, list):
        return [_cut(item, keep) for item in value[:keep]]
    if isinstance(value, dict):
        return {k: _cut(v, keep) for k, v in list(value.items())[: 2 * keep]}
    if isinstance(value, str) and len(value) > 40 * keep:
        return value[: 40 * keep] + "..."
    return value


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
        self._tools = cached_tools(list(self._specs.values()), self._describe)

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
            input_schema=schema.input_schema(spec.input_model),
            output_schema=schema.output_schema(spec.output_model),
            annotations=types.ToolAnnotations(  # no title here: the tool's own `title` says it once
                read_only_hint=spec.read_only,
                destructive_hint=spec.destructive,
                idempotent_hint=spec.idempotent,
                open_world_hint=spec.open_world,
            ),
        )

    def list_tools(self) -> list[types.Tool]:
        return list(self._tools)

    def worker_modules(self) -> list[str]:
        """The modules the routed tools' worker jobs run (for the fork server to import once)."""
        return sorted({module for spec in self._specs.values() for module in spec.worker_modules})

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
            message = f"Unknown tool {name!r}{hint}. Call tools/list for the available tools."
            raise MCPError(types.INVALID_PARAMS, message)
        started = time.perf_counter()
        log_event(_log, 20, "tool call", tool=name, arguments=redact(_loggable(arguments or {})))
        try:
            params = spec.input_model.model_validate(arguments or {})
        except ValidationError as exc:
            return error_result(format_validation_error(exc), {"kind": "invalid_input", "tool": name})
        ctx = self.make_context(progress_sender)
        try:
            output = await self._run(spec, ctx, params)
        except MLOpsError as exc:
            log_event(_log, 30, "tool failed", tool=name, error=str(exc), kind=exc.kind)
            # Messages quote inputs (URIs, values): mask anything secret-looking before it leaves.
            return error_result(redact(str(exc)), redact(exc.to_dict()))
        except ValidationError as exc:  # a tool validating nested data with a pydantic model
            return error_result(format_validation_error(exc), {"kind": "invalid_input", "tool": name})
        except ToolAborted as exc:
            _log.error("tool %s raised %s; the server keeps serving", name, exc, exc_info=exc.original)
            return error_result(
                f"{name} failed: the code it ran tried to stop the process ({exc}). The server is still "
                "running; the details are in the server log. Check the inputs (e.g. the model file) and try again.",
                {"kind": "internal_error", "type": str(exc)},
            )
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
        # On the loop, as before (no worker-thread token needed); only a rare oversized result
        # writes to storage here.
        return success_result(spec, output, None if self.config.read_only else self.storage)

    async def _run(self, spec: ToolSpec, ctx: ToolContext, params: BaseModel) -> Any:
        # The first call imports the tool's module (pandas, scikit-learn, ...): off the event loop.
        fn = await anyio.to_thread.run_sync(spec.function) if isinstance(spec.fn, str) else spec.fn
        if inspect.iscoroutinefunction(fn):
            try:
                return await fn(ctx, params)
            except anyio.get_cancelled_exc_class():
                ctx.cancelled.set()
                raise
            except Exception:
                raise
            except BaseException as exc:
                if _never_caught(exc):
                    raise
                raise ToolAborted(exc) from exc
        finished = threading.Event()

        def work() -> Any:
            try:
                return fn(ctx, params)
            except Exception:
                raise
            except BaseException as exc:
                # Signals are delivered to the main thread, so anything raised here (SystemExit,
                # even KeyboardInterrupt) came from the tool's own code.
                raise ToolAborted(exc) from exc
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
