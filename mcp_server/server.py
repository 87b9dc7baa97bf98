"""UnifiedMLOpsMCPServer: holds the six capabilities and wires them to the MCP low-level server."""

from __future__ import annotations

from typing import Any

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
from mcp_server.common import workers
from mcp_server.config import Config
from mcp_server.resources import ResourceRouter
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
        self.resources = ResourceRouter(enabled, self.router.services)
        self._warm_up_pending = "ml_training" in config.capabilities
        self.server: Server[Any] = Server(
            "unified-mlops",
            version=__version__,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
        )

    async def _list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        if self._warm_up_pending:
            # Only now, with the first answer on its way, start the spare worker process: it
            # imports the heavy libraries, which must not slow the server's start.
            self._warm_up_pending = False
            workers.pool().warm_up()
        return types.ListToolsResult(tools=self.router.list_tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        async def send_progress(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        return await self.router.call(params.name, params.arguments, send_progress)

    async def run_stdio(self) -> None:
        # stdio_server points fd 1 at stderr while serving and writes the protocol to a private
        # copy of the original stdout, so native libraries cannot corrupt the stream.
        async with stdio_server() as (read_stream, write_stream):
            await self.server.run(read_stream, write_stream, self.server.create_initialization_options())

    # Resources, prompts and completions: aggregated from the capabilities by ResourceRouter.
    async def _list_resources(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return await self.resources.list_resources(params.cursor if params else None)

    async def _list_resource_templates(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return self.resources.list_templates()

    async def _read_resource(self, ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await self.resources.read(str(params.uri))

    async def _list_prompts(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return self.resources.list_prompts()

    async def _get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return self.resources.get_prompt(params.name, params.arguments)

    async def _complete(self, ctx: Any, params: types.CompleteRequestParams) -> types.CompleteResult:
        return await self.resources.complete(params)
