"""The notification capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec


class NotificationCapability(BaseCapability):
    name = "notification"
    description = "Slack, email, Teams and Discord notifications with templates."

    def tool_specs(self) -> list[ToolSpec]:
        return []  # tools arrive with this capability's issue
