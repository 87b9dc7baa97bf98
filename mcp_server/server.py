"""UnifiedMLOpsMCPServer: holds the six capabilities and wires them to the MCP low-level server."""

from __future__ import annotations

from io import TextIOWrapper
from typing import Any, BinaryIO

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

from mcp_server import __version__
from mcp_server.capabilities.base import BaseCapability
from mcp_server.capabilities.data_preparation.capability import DataPreparationCapability
from mcp_server.capabilities.github_integration.capability import GitHubIntegrationCapability
from mcp_server.capabilities.ml_evaluation.capability import MLEvaluationCapability
from mcp_server.capabilities.ml_training.capability import MLTrainingCapability
from mcp_server.capabilities.model_registry.capability import ModelRegistryCapability
from mcp_server.capabilities.notification.capability import NotificationCapability
from mcp_server.config import Config
from mcp_server.router import ToolRouter

CAPABILITY_CLASSES: tuple[type[BaseCapability], ...] = (
    DataPreparationCapability,
    MLTrainingCapability,
    MLEvaluationCapability,
    GitHubIntegrationCapability,
    ModelRegistryCapability,
    NotificationCapability,
)

INSTRUCTIONS = (
    "MLOps tools over S3 or local storage. Every *_uri input takes s3://bucket/key, file:///path "
    "or a plain key inside the configured storage. Typical flow: load_dataset -> validate_data -> "
    "preprocess_supervised -> split_dataset -> train_* -> evaluate_* -> register_model. Long "
    "training returns a job_id when it outlives max_wait_seconds: poll get_training_metrics."
)


class UnifiedMLOpsMCPServer:
    """All six capabilities are held; `MLOPS_CAPABILITIES` decides which ones are routed."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.capabilities: list[BaseCapability] = [cls(config) for cls in CAPABILITY_CLASSES]
        enabled = [c for c in self.capabilities if c.name in config.capabilities]
        self.router = ToolRouter(enabled, config)
        self.server: Server[Any] = Server(
            "unified-mlops",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.router.list_tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        async def send_progress(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        return await self.router.call(params.name, params.arguments, send_progress)

    async def run_stdio(self, stdout: BinaryIO | None = None) -> None:
        # `stdout`: the protocol pipe, already moved off fd 1 by __main__ (fd 1 points at stderr
        # for the life of the process). Without it, stdio_server diverts fd 1 while serving.
        wire = anyio.wrap_file(TextIOWrapper(stdout, encoding="utf-8")) if stdout is not None else None
        async with stdio_server(stdout=wire) as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())
