"""update_model_status: move a version through none -> staging -> production -> archived."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.model_registry.schemas import UpdateModelStatusInput, UpdateModelStatusOutput
from mcp_server.capabilities.model_registry.store import RegistryStore, actor


def update_model_status(ctx: ToolContext, params: UpdateModelStatusInput) -> ToolOutput:
    outcome = RegistryStore(ctx.storage).change_status(
        params.model_name,
        params.version,
        params.status,
        actor(params.changed_by),
        reason=params.reason,
        demote_previous_to=params.demote_previous_to,
    )
    data = UpdateModelStatusOutput.model_validate(outcome)
    if not data.changed:
        summary = f"{data.model_name} version {data.version} is already {data.status}"
    else:
        summary = f"{data.model_name} version {data.version}: {data.previous_status} -> {data.status}"
        if data.demoted:
            summary += f"; version {data.demoted.version} -> {data.demoted.status}"
    return ToolOutput(data=data, summary=summary)
