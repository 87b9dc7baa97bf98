"""The model_registry capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.model_registry import schemas as s
from mcp_server.capabilities.model_registry.tools.model_registration import register_model
from mcp_server.capabilities.model_registry.tools.rollback import rollback_model
from mcp_server.capabilities.model_registry.tools.search import search_models
from mcp_server.capabilities.model_registry.tools.status_management import update_model_status
from mcp_server.capabilities.model_registry.tools.version_management import get_model_version, list_model_versions


class ModelRegistryCapability(BaseCapability):
    name = "model_registry"
    description = "Model registry with gap-free versions, statuses and rollback."
    resources_module = "mcp_server.capabilities.model_registry.resources"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="register_model",
                title="Register model",
                description=(
                    "Register a model bundle as the next version (1, 2, 3 ... no gaps, safe under concurrent "
                    "calls) of a named model, after verifying the bundle's hashes. Records metrics (the "
                    "bundle's validation scores, overridden by `metrics`), tags, description, dataset lineage "
                    "and who/when. The new version's status is 'none'."
                ),
                input_model=s.RegisterModelInput,
                output_model=s.RegisterModelOutput,
                fn=register_model,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="list_model_versions",
                title="List model versions",
                description=(
                    "List every version of a registered model (oldest first) with status, metrics, tags and "
                    "lineage, plus the latest and production version numbers."
                ),
                input_model=s.ListModelVersionsInput,
                output_model=s.ListModelVersionsOutput,
                fn=list_model_versions,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="get_model_version",
                title="Get model version",
                description=(
                    "Get one version of a registered model (a number, 'latest' or 'production') with its "
                    "status, metrics, tags, lineage and full status history."
                ),
                input_model=s.GetModelVersionInput,
                output_model=s.GetModelVersionOutput,
                fn=get_model_version,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="update_model_status",
                title="Update model status",
                description=(
                    "Move a version to staging, production, archived (or back to none). Allowed: none -> "
                    "staging|production|archived; staging -> production|archived|none; production -> "
                    "archived|staging; archived -> staging|production. At most one production version: "
                    "promoting demotes the current one to archived (or `demote_previous_to`). Every change "
                    "is recorded in the version's history."
                ),
                input_model=s.UpdateModelStatusInput,
                output_model=s.UpdateModelStatusOutput,
                fn=update_model_status,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="rollback_model",
                title="Roll back model",
                description=(
                    "Put the previous production version (the most recent one that was production before the "
                    "current one) or `to_version` back in production and archive the current one, recording "
                    "`reason`. Calling it twice returns to where you started."
                ),
                input_model=s.RollbackModelInput,
                output_model=s.RollbackModelOutput,
                fn=rollback_model,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="search_models",
                title="Search models",
                description=(
                    "Find model versions by name substring, status, tags (all must match) and metric filters "
                    "such as 'accuracy>=0.9' (all must hold), ordered by a field or metric (e.g. "
                    "'metrics.accuracy desc'), in pages of `limit` (default 50) with next_cursor."
                ),
                input_model=s.SearchModelsInput,
                output_model=s.SearchModelsOutput,
                fn=search_models,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
