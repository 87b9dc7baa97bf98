"""The github_integration capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec


class GitHubIntegrationCapability(BaseCapability):
    name = "github_integration"
    description = "GitHub issues, labels, files, pull requests and webhooks."

    def tool_specs(self) -> list[ToolSpec]:
        return []  # tools arrive with this capability's issue
