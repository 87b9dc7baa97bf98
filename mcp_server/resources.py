"""ResourceRouter: the capabilities' MCP resources, templates, prompts and completions, aggregated
as ToolRouter aggregates tools (a duplicate template or prompt name is a start-up error).

- `resources/list` walks the default storage location once per page (bounded, server-internal
  prefixes hidden), names each key by the first template that claims it (pipelines, registry
  entries, model bundles, reports, datasets), and lists plots (PNG) and saved evaluations (JSON)
  by their own `s3://` / `file://` URI. Pages are cut by an opaque cursor (an offset).
- `resources/read` takes a template URI (`mlops://...`) or an `s3://` / `file://` URI as tool
  results link them; contents are size-capped; JSON as `application/json`, reports as
  `text/html` / `text/markdown`, PNGs as blobs.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote

import anyio.to_thread
import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_server.capabilities.base import BaseCapability, PromptSpec, ResourceContent, ResourceTemplateSpec
from mcp_server.common.exceptions import ConfigError, MLOpsError
from mcp_server.common.listing import is_hidden, list_keys
from mcp_server.common.services import Services

PAGE_SIZE = 100
MAX_READ_BYTES = 4 * 1024**2  # a resource is context: larger objects are refused, with the reason
MAX_COMPLETIONS = 100  # the MCP limit per completion answer
_TEXT_TYPES = {".json": "application/json", ".html": "text/html", ".md": "text/markdown", ".txt": "text/plain"}


def _pattern(template: str) -> re.Pattern[str]:
    """`mlops://models/{path}` -> a regex: `{path}` spans slashes, other variables do not."""
    out, pos = "", 0
    for match in re.finditer(r"\{(\w+)\}", template):
        out += re.escape(template[pos : match.start()])
        name = match.group(1)
        out += f"(?P<{name}>.+)" if name == "path" else f"(?P<{name}>[^/]+)"
        pos = match.end()
    return re.compile("^" + out + re.escape(template[pos:]) + "$")


def expand(template: str, arguments: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: quote(arguments[m.group(1)], safe="/"), template)


def _invalid(message: str) -> MCPError:
    return MCPError(types.INVALID_PARAMS, message)


class ResourceRouter:
    def __init__(self, capabilities: Sequence[BaseCapability], services: Services) -> None:
        self.services = services
        self.templates: list[ResourceTemplateSpec] = []
        self.prompts: dict[str, PromptSpec] = {}
        seen: dict[str, str] = {}
        for capability in capabilities:
            for spec in capability.resource_templates():
                if spec.uri_template in seen:
                    raise ConfigError(f"resource template {spec.uri_template} is declared twice")
                seen[spec.uri_template] = capability.name
                self.templates.append(spec)
            for prompt in capability.prompt_specs():
                if prompt.name in self.prompts:
                    raise ConfigError(f"prompt {prompt.name!r} is declared twice")
                self.prompts[prompt.name] = prompt
        # The most specific template first: registry/{m}/versions/{v} before registry/{m}.
        self.templates.sort(key=lambda t: -len(re.sub(r"\{\w+\}", "", t.uri_template)))
        self._patterns = [(_pattern(t.uri_template), t) for t in self.templates]

    # ------------------------------------------------------------------ listing
    def _resources(self) -> list[types.Resource]:
        found: list[types.Resource] = []
        for key in list_keys(self.services.storage):
            resource = self._classify(key)
            if resource is not None:
                found.append(resource)
        return found

    def _classify(self, key: str) -> types.Resource | None:
        for spec in self.templates:
            claimed = spec.match_key(key) if spec.match_key else None
            if claimed is not None:
                arguments, name = claimed
                mime = spec.mime_type or _TEXT_TYPES.get("." + key.rsplit(".", 1)[-1].lower())  # reports: by suffix
                return types.Resource(
                    uri=expand(spec.uri_template, arguments), name=name, mime_type=mime, description=spec.name
                )
        loc_uri = self.services.storage.resolve(key, "uri").uri
        if key.endswith(".png"):
            return types.Resource(uri=loc_uri, name=key, mime_type="image/png", description="plot")
        if "/evaluations/" in key and key.endswith(".json"):
            return types.Resource(uri=loc_uri, name=key, mime_type="application/json", description="evaluation")
        return None

    async def list_resources(self, cursor: str | None) -> types.ListResourcesResult:
        offset = _offset(cursor)
        everything = await anyio.to_thread.run_sync(self._resources)
        page = everything[offset : offset + PAGE_SIZE]
        more = offset + PAGE_SIZE < len(everything)
        next_cursor = (
            base64.urlsafe_b64encode(json.dumps({"o": offset + PAGE_SIZE}).encode()).decode() if more else None
        )
        return types.ListResourcesResult(resources=page, next_cursor=next_cursor)

    def list_templates(self) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(
            resource_templates=[
                types.ResourceTemplate(
                    uri_template=t.uri_template, name=t.name, description=t.description, mime_type=t.mime_type
                )
                for t in self.templates
            ]
        )

    # ------------------------------------------------------------------ reading
    async def read(self, uri: str) -> types.ReadResourceResult:
        if uri.startswith("mlops://"):
            for pattern, spec in self._patterns:
                match = pattern.match(uri)
                if match:
                    arguments = {k: unquote(v) for k, v in match.groupdict().items()}
                    if is_hidden(arguments.get("path", "")):
                        raise _invalid(f"{uri} is server-internal, not a resource")
                    try:
                        content = await spec.read(self.services, arguments)
                    except MLOpsError as exc:
                        raise _invalid(f"{uri}: {exc}") from None
                    return _contents(uri, content)
            known = ", ".join(t.uri_template for t in self.templates)
            raise _invalid(f"{uri} matches no resource template; these exist: {known}")
        if uri.startswith(("s3://", "file://")):
            content = await anyio.to_thread.run_sync(self._read_storage, uri)
            return _contents(uri, content)
        raise _invalid(f"{uri}: resources are mlops://, s3:// or file:// URIs")

    def _read_storage(self, uri: str) -> ResourceContent:
        storage = self.services.storage
        try:
            loc = storage.resolve(uri, "uri")
            if is_hidden(loc.key):
                raise _invalid(f"{uri} is server-internal, not a resource")
            if not storage.exists(loc):
                raise _invalid(f"{uri} does not exist")
            size = storage.size(loc)
            if size > MAX_READ_BYTES:
                raise _invalid(f"{uri} is {size} bytes; resources are capped at {MAX_READ_BYTES} (read it with a tool)")
            data = storage.read_bytes(loc, max_bytes=MAX_READ_BYTES)
        except MLOpsError as exc:
            raise _invalid(f"{uri}: {exc}") from None
        mime = _TEXT_TYPES.get(loc.suffix) or mimetypes.guess_type(loc.name)[0] or "application/octet-stream"
        if mime.startswith("text/") or mime == "application/json":
            try:
                return ResourceContent(data.decode("utf-8"), mime)
            except UnicodeDecodeError:
                pass
        return ResourceContent(data, mime)

    # ------------------------------------------------------------------ prompts
    def list_prompts(self) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        types.PromptArgument(name=a.name, description=a.description, required=a.required)
                        for a in p.arguments
                    ],
                )
                for p in self.prompts.values()
            ]
        )

    def get_prompt(self, name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        prompt = self.prompts.get(name)
        if prompt is None:
            raise _invalid(f"unknown prompt {name!r}; these exist: {', '.join(self.prompts)}")
        given = {k: str(v) for k, v in (arguments or {}).items()}
        missing = [a.name for a in prompt.arguments if a.required and not given.get(a.name)]
        unknown = sorted(set(given) - {a.name for a in prompt.arguments})
        if missing or unknown:
            problems = [f"missing argument {m!r}" for m in missing] + [f"unknown argument {u!r}" for u in unknown]
            raise _invalid(f"prompt {name}: " + "; ".join(problems))
        text = prompt.render(given)
        return types.GetPromptResult(
            description=prompt.description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
        )

    # ------------------------------------------------------------------ completions
    async def complete(self, params: types.CompleteRequestParams) -> types.CompleteResult:
        ref, argument = params.ref, params.argument
        context = dict(params.context.arguments or {}) if params.context and params.context.arguments else {}
        completer = None
        if isinstance(ref, types.PromptReference):
            prompt = self.prompts.get(ref.name)
            completer = prompt.complete.get(argument.name) if prompt else None
        else:
            spec = next((t for t in self.templates if t.uri_template == ref.uri), None)
            completer = spec.complete.get(argument.name) if spec else None
        values: list[str] = []
        if completer is not None:
            try:
                values = await completer(self.services, argument.value, context)
            except MLOpsError:
                values = []  # a completion is a hint: a failing lookup offers nothing rather than an error
        values = [v for v in values if v.startswith(argument.value)] or values
        return types.CompleteResult(
            completion=types.Completion(
                values=values[:MAX_COMPLETIONS], total=len(values), has_more=len(values) > MAX_COMPLETIONS
            )
        )


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"]
    except (ValueError, KeyError, TypeError):
        raise _invalid("invalid cursor: pass the nextCursor of the previous page") from None
    if not isinstance(offset, int) or offset < 0:
        raise _invalid("invalid cursor: pass the nextCursor of the previous page")
    return offset


def _contents(uri: str, content: ResourceContent) -> types.ReadResourceResult:
    item: Any
    if isinstance(content.data, bytes):
        blob = base64.b64encode(content.data).decode()
        item = types.BlobResourceContents(uri=uri, mime_type=content.mime_type, blob=blob)
    else:
        item = types.TextResourceContents(uri=uri, mime_type=content.mime_type, text=content.data)
    return types.ReadResourceResult(contents=[item])
