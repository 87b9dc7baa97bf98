"""ml_evaluation's MCP resources: model bundles (`mlops://models/{path}`: their verified metadata,
as load_model reports it) and reports (`mlops://reports/{path}`: HTML or Markdown)."""

from __future__ import annotations

import anyio.to_thread

from mcp_server.capabilities.base import ResourceContent, ResourceTemplateSpec, tool_json
from mcp_server.common.exceptions import InvalidInputError, NotFoundError
from mcp_server.common.listing import list_keys
from mcp_server.common.services import Services

METADATA = "/metadata.json"
REPORT_TYPES = {".html": "text/html", ".md": "text/markdown"}
MAX_REPORT_BYTES = 4 * 1024**2


async def _read_model(services: Services, arguments: dict[str, str]) -> ResourceContent:
    return await tool_json(services, "load_model", {"model_s3_uri": arguments["path"]})


def _read_report_now(services: Services, path: str) -> ResourceContent:
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in REPORT_TYPES:
        raise InvalidInputError(f"{path} is not a report (.html or .md)", field="path")
    loc = services.storage.resolve(path, "path")
    if not services.storage.exists(loc):
        raise NotFoundError(f"{path} does not exist", field="path")
    data = services.storage.read_bytes(loc, max_bytes=MAX_REPORT_BYTES)
    return ResourceContent(data.decode("utf-8", errors="replace"), REPORT_TYPES[suffix])


async def _read_report(services: Services, arguments: dict[str, str]) -> ResourceContent:
    return await anyio.to_thread.run_sync(_read_report_now, services, arguments["path"])


def _match_model(key: str) -> tuple[dict[str, str], str] | None:
    if key.endswith(METADATA) and not key.startswith("registry/"):
        path = key.removesuffix(METADATA)
        return {"path": path}, f"model {path}"
    return None


def _match_report(key: str) -> tuple[dict[str, str], str] | None:
    suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return ({"path": key}, f"report {key}") if suffix in REPORT_TYPES else None


async def complete_model_path(services: Services, value: str, context: dict[str, str]) -> list[str]:
    keys = await anyio.to_thread.run_sync(list_keys, services.storage)
    return [k.removesuffix(METADATA) for k in keys if _match_model(k) and k.startswith(value)]


def resource_templates() -> list[ResourceTemplateSpec]:
    return [
        ResourceTemplateSpec(
            uri_template="mlops://models/{path}",
            name="model bundle",
            description="A model bundle folder: algorithm, task, features, metrics, lineage and verified hashes.",
            mime_type="application/json",
            read=_read_model,
            match_key=_match_model,
            complete={"path": complete_model_path},
        ),
        ResourceTemplateSpec(
            uri_template="mlops://reports/{path}",
            name="report",
            description="An evaluation report written by generate_report (text/html or text/markdown).",
            mime_type=None,
            read=_read_report,
            match_key=_match_report,
        ),
    ]
