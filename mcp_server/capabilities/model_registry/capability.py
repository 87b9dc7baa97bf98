"""The model_registry capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.model_registry import schemas as s

# Tool functions are named, not imported: their modules (pandas, scikit-learn, ...) load on
# the first call, so listing tools stays fast.
_TOOLS = "mcp_server.capabilities.model_registry.tools"


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
                    "Register a verified bundle as the next version (1, 2, 3 ... no gaps, also under concurrent "
                    "calls) of a named model, status none."
                ),
                input_model=s.RegisterModelInput,
                output_model=s.RegisterModelOutput,
                fn=f"{_TOOLS}.model_registration:register_model",
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="list_model_versions",
                title="List model versions",
                description=("List a model's versions (oldest first) with status, metrics, tags, lineage."),
                input_model=s.ListModelVersionsInput,
                output_model=s.ListModelVersionsOutput,
                fn=f"{_TOOLS}.version_management:list_model_versions",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="get_model_version",
                title="Get model version",
                description=("Get one version of a model with its status history."),
                input_model=s.GetModelVersionInput,
                output_model=s.GetModelVersionOutput,
                fn=f"{_TOOLS}.version_management:get_model_version",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="update_model_status",
                title="Update model status",
                description=(
                    "Move a version: none -> staging|production|archived; staging -> production|archived|none; "
                    "production -> archived|staging; archived -> staging|production. Promoting demotes the "
                    "current production version."
                ),
                input_model=s.UpdateModelStatusInput,
                output_model=s.UpdateModelStatusOutput,
                fn=f"{_TOOLS}.status_management:update_model_status",
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="rollback_model",
                title="Roll back model",
                description=(
                    "Put the previous production version (or to_version) back in production, archiving the "
                    "current one; twice returns to the start."
                ),
                input_model=s.RollbackModelInput,
                output_model=s.RollbackModelOutput,
                fn=f"{_TOOLS}.rollback:rollback_model",
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="search_models",
                title="Search models",
                description=("Find model versions by name, status, tags and metric filters, ordered, in pages."),
                input_model=s.SearchModelsInput,
                output_model=s.SearchModelsOutput,
                fn=f"{_TOOLS}.search:search_models",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
