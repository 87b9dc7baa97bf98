"""UnifiedMLOpsMCPServer: holds the six capabilities and wires them to the MCP low-level server."""

from __future__ import annotations

import time
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
from mcp_server.common import jobs, workers
from mcp_server.common.telemetry import Telemetry, ship_logs_to_cloudwatch
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

# Conventions shared by many tools, said once here (sent once per session) rather than in every
# tool description of `tools/list`.
INSTRUCTIONS = (
    "MLOps tools over S3 or local storage. Every *_uri input takes s3://bucket/key, file:///path "
    "or a plain key inside the configured storage; datasets are CSV, Parquet or JSON (format from "
    "the extension unless file_format says otherwise). Typical flow: load_dataset -> validate_data -> "
    "preprocess_supervised -> split_dataset -> train_* -> evaluate_* -> register_model. "
    "Preprocessed data carries its fitted pipeline: trainers bundle it, so raw test data works later. "
    "Trainers, evaluate_* and compare_models run as jobs: a call waits up to max_wait_seconds (default "
    "50), then returns job_id with status running (wait=false returns at once); poll "
    "get_training_metrics (result holds the finished output), stop with cancel_training_job. "
    "Omitted random_state: a fresh seed, returned. A model bundle is the folder a "
    "trainer returns as model_s3_uri. thresholds are minimums, maximums for error metrics (log_loss, "
    "mae, mse, rmse, mape, davies_bouldin). history lists at most 50 entries (first, best, last "
    "included); history_s3_uri holds the full series. RL trainers (train_ppo, train_dqn, train_a3c) take "
    "a Gymnasium id or an env_spec_s3_uri from preprocess_reinforcement and stop at the first of stop's "
    "target_return, max_iterations, max_timesteps, max_seconds (default: the env's reward threshold, "
    "200k steps or 600 s; stopped_by says which); policies are safetensors + JSON, never pickle. "
    "Errors say what was wrong and how to fix it."
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
        self.telemetry = Telemetry(config)
        self._tool_names = frozenset(self.router.tool_names)
        ship_logs_to_cloudwatch(config)
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
            workers.pool().warm_up(self.router.worker_modules())
        return types.ListToolsResult(tools=self.router.list_tools())

    async def _call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        async def send_progress(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        # A job started by this call is cancelled only by the client's explicit cancel (the SDK
        # sets this event on notifications/cancelled); a dropped HTTP connection detaches it.
        # mcp 2.3 keeps the event on the request's dispatch context, reachable only privately.
        outbound = getattr(ctx.session, "_request_outbound", None)
        jobs.peer_cancel_requested.set(getattr(outbound, "cancel_requested", None))
        started = time.perf_counter()
        failed = True  # also when the call is cancelled or raises
        try:
            result = await self.router.call(params.name, params.arguments, send_progress)
            failed = bool(result.is_error)
            return result
        finally:
            # Only real tool names become a metric dimension: a client cannot mint new ones.
            tool = params.name if params.name in self._tool_names else "unknown"
            self.telemetry.record(tool, (time.perf_counter() - started) * 1000, error=failed)

    async def run_stdio(self, stdout: BinaryIO | None = None) -> None:
        # `stdout`: the protocol pipe, already moved off fd 1 by __main__ (fd 1 points at stderr
        # for the life of the process). Without it, stdio_server diverts fd 1 while serving.
        wire = anyio.wrap_file(TextIOWrapper(stdout, encoding="utf-8")) if stdout is not None else None
        async with stdio_server(stdout=wire) as (read_stream, write_stream):
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
