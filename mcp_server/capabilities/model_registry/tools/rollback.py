"""rollback_model: put the previous production version (or a chosen one) back in production."""

from __future__ import annotations

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.model_registry.schemas import RollbackModelInput, RollbackModelOutput
from mcp_server.capabilities.model_registry.store import RegistryStore, actor


def rollback_model(ctx: ToolContext, params: RollbackModelInput) -> ToolOutput:
    outcome = RegistryStore(ctx.storage).rollback(
        params.model_name, actor(params.changed_by), to_version=params.to_version, reason=params.reason
    )
    data = RollbackModelOutput.model_validate(outcome)
    origin = f"version {data.from_version}" if data.from_version is not None else "no production version"
    return ToolOutput(data=data, summary=f"{data.model_name}: rolled back from {origin} to version {data.to_version}")
