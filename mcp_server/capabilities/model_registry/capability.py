"""The model_registry capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec


class ModelRegistryCapability(BaseCapability):
    name = "model_registry"
    description = "Model registry with gap-free versions, statuses and rollback."

    def tool_specs(self) -> list[ToolSpec]:
        return []  # tools arrive with this capability's issue
