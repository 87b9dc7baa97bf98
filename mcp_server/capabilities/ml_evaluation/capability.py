"""The ml_evaluation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec


class MLEvaluationCapability(BaseCapability):
    name = "ml_evaluation"
    description = "Evaluate and compare models; plots and reports."

    def tool_specs(self) -> list[ToolSpec]:
        return []  # tools arrive with this capability's issue
