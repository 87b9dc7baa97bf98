"""data_preparation's MCP resources: datasets (`mlops://datasets/{path}`, what load_dataset sees)."""

from __future__ import annotations

import anyio.to_thread

from mcp_server.capabilities.base import ResourceContent, ResourceTemplateSpec, tool_json
from mcp_server.common.listing import dataset_keys, is_dataset_key
from mcp_server.common.services import Services


async def _read(services: Services, arguments: dict[str, str]) -> ResourceContent:
    return await tool_json(services, "load_dataset", {"s3_uri": arguments["path"], "preview_rows": 5})


async def complete_dataset(services: Services, value: str, context: dict[str, str]) -> list[str]:
    return await anyio.to_thread.run_sync(dataset_keys, services.storage, value)


def _match(key: str) -> tuple[dict[str, str], str] | None:
    return ({"path": key}, key) if is_dataset_key(key) else None


def resource_templates() -> list[ResourceTemplateSpec]:
    return [
        ResourceTemplateSpec(
            uri_template="mlops://datasets/{path}",
            name="dataset",
            description="A dataset (CSV, Parquet, JSON) by its storage key: rows, columns, dtypes, missing values "
            "and the first rows, as load_dataset reports them.",
            mime_type="application/json",
            read=_read,
            match_key=_match,
            complete={"path": complete_dataset},
        )
    ]
