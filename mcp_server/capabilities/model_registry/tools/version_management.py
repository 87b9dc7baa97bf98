"""list_model_versions and get_model_version: read a model's versions."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.model_registry.schemas import (
    GetModelVersionInput,
    GetModelVersionOutput,
    ListModelVersionsInput,
    ListModelVersionsOutput,
)
from mcp_server.capabilities.model_registry.store import RegistryStore
from mcp_server.capabilities.model_registry.tools.views import version_view


def list_model_versions(ctx: ToolContext, params: ListModelVersionsInput) -> ToolOutput:
    store = RegistryStore(ctx.storage)
    docs, summary = store.list_versions(params.model_name)
    versions = [version_view(store, doc, params.include_history) for doc in docs]
    data = ListModelVersionsOutput(model_name=params.model_name, versions=versions, count=len(versions), **summary)
    production = summary["production_version"]
    return ToolOutput(
        data=data,
        summary=f"{params.model_name}: {len(versions)} version(s), production: {production if production else 'none'}",
    )


def get_model_version(ctx: ToolContext, params: GetModelVersionInput) -> ToolOutput:
    store = RegistryStore(ctx.storage)
    doc, summary = store.get_version(params.model_name, params.version)
    view = version_view(store, doc, include_history=True)
    data = GetModelVersionOutput(
        model_name=params.model_name, version=view.version, status=view.status, versions=[view], **summary
    )
    return ToolOutput(data=data, summary=f"{params.model_name} version {view.version}: {view.status}")
