"""The ml_training capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec


class MLTrainingCapability(BaseCapability):
    name = "ml_training"
    description = "Train supervised, unsupervised and reinforcement-learning models as jobs."

    def tool_specs(self) -> list[ToolSpec]:
        return []  # tools arrive with this capability's issue
