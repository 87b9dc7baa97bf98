"""Pydantic input and output models of the model_registry tools."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from mcp_server.capabilities.base import ToolInput, ToolResultModel
from mcp_server.common.model_names import model_name_problem

Status = Literal["none", "staging", "production", "archived"]


def _check_model_name(name: str) -> str:
    problem = model_name_problem(name)
    if problem:
        raise PydanticCustomError("model_name", problem)
    return name


ModelName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        description="letters, digits, '.', '_', '-'",
    ),
    AfterValidator(_check_model_name),
]
Actor = Annotated[
    str | None,
    Field(max_length=128, description="who acts; default: the server's USER"),
]
Reason = Annotated[str | None, Field(max_length=1000, description="why (recorded)")]


# ---------------------------------------------------------------------------- shared output parts
class HistoryEntry(ToolResultModel):
    """One status change of a version (`from` is null for the registration itself)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)

    from_: Status | None = Field(alias="from")
    to: Status
    at: str
    by: str
    reason: str | None = None
    op: str = Field(description="register, status_change, demotion or rollback")
    op_id: str


class ModelVersion(ToolResultModel):
    model_name: str
    version: int
    status: Status
    model_s3_uri: str
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str | None = None
    lineage: dict[str, Any] = Field(
        description="model_s3_uri, dataset_s3_uri, training_data_uri, data_fingerprint (those known)"
    )
    artifacts: dict[str, str] = Field(description="bundle file name -> sha256 at registration")
    algorithm: str | None = None
    task_type: str | None = None
    family: str | None = None
    registered_by: str
    created_at: str
    updated_at: str
    registry_uri: str = Field(description="where this version's registry document is stored")
    history: list[HistoryEntry] | None = Field(None, description="status changes, oldest first (when requested)")


# ---------------------------------------------------------------------------- register_model
class RegisterModelInput(ToolInput):
    model_name: ModelName
    model_s3_uri: str = Field(description="the model bundle")
    metrics: dict[str, float] | None = Field(
        None,
        description="override the bundle's metrics",
    )
    tags: dict[str, str] | None = Field(None, description="at most 50")
    description: str | None = Field(None, max_length=2000, description="free text")
    dataset_s3_uri: str | None = Field(None, description="lineage; default: the bundle's training data")
    registered_by: Actor = None


class RegisterModelOutput(ToolResultModel):
    key_outputs = ("model_name", "version", "status")
    model_name: str
    version: int = Field(description="1, 2, 3 ... with no gaps or duplicates, even under concurrent calls")
    status: Status
    model_s3_uri: str
    metrics: dict[str, float]
    tags: dict[str, str]
    lineage: dict[str, Any]
    registered_by: str
    created_at: str
    registry_uri: str


# ---------------------------------------------------------------------------- versions
class ListModelVersionsInput(ToolInput):
    model_name: ModelName
    include_history: bool = Field(False, description="with status histories")


class ListModelVersionsOutput(ToolResultModel):
    key_outputs = ("versions", "production_version")
    model_name: str
    versions: list[ModelVersion] = Field(description="oldest first")
    count: int
    latest_version: int | None
    production_version: int | None


class GetModelVersionInput(ToolInput):
    model_name: ModelName
    version: Annotated[int, Field(ge=1)] | Literal["latest", "production"] = Field(
        description="a number, 'latest' or 'production'"
    )


class GetModelVersionOutput(ToolResultModel):
    key_outputs = ("version", "status", "versions")
    model_name: str
    version: int
    status: Status
    versions: list[ModelVersion] = Field(description="the one version asked for, with its history")
    latest_version: int | None
    production_version: int | None


# ---------------------------------------------------------------------------- status
class UpdateModelStatusInput(ToolInput):
    model_name: ModelName
    version: int = Field(ge=1, description="the version")
    status: Status = Field(description="the new status")
    demote_previous_to: Literal["archived", "staging"] = Field(
        "archived", description="the previous production version's new status"
    )
    reason: Reason = None
    changed_by: Actor = None


class DemotedVersion(ToolResultModel):
    version: int
    previous_status: Status
    status: Status


class UpdateModelStatusOutput(ToolResultModel):
    key_outputs = ("previous_status", "status", "demoted")
    model_name: str
    version: int
    previous_status: Status
    status: Status
    changed: bool = Field(description="false when the version already had this status")
    demoted: DemotedVersion | None = Field(description="the previous production version, when one was demoted")
    production_version: int | None


# ---------------------------------------------------------------------------- rollback
class RollbackModelInput(ToolInput):
    model_name: ModelName
    to_version: int | None = Field(
        None,
        ge=1,
        description="default: the previous production version",
    )
    reason: Reason = None
    changed_by: Actor = None


class RollbackModelOutput(ToolResultModel):
    key_outputs = ("from_version", "to_version")
    model_name: str
    from_version: int | None = Field(description="the production version that was archived (null if there was none)")
    to_version: int
    to_previous_status: Status
    from_status: Status | None
    reason: str
    production_version: int


# ---------------------------------------------------------------------------- search
class SearchModelsInput(ToolInput):
    name_contains: str | None = Field(None, max_length=128, description="name substring")
    status: Status | list[Status] | None = Field(None, description="one or several")
    tags: dict[str, str] | None = Field(None, description="all must match")
    metric: str | list[str] | None = Field(
        None,
        description="e.g. 'accuracy>=0.9' (>= <= > < == !=); all must hold",
    )
    order_by: str | None = Field(
        None,
        description="'<field> [asc|desc]': model_name, version, created_at, updated_at, status, metrics.<name>",
    )
    limit: int = Field(50, ge=1, le=500, description="page size")
    cursor: str | None = Field(None, max_length=2000, description="next_cursor of the last page")
    page_token: str | None = Field(None, max_length=2000, description="alias of cursor")


class SearchModelsOutput(ToolResultModel):
    key_outputs = ("models", "next_cursor")
    models: list[ModelVersion] = Field(description="matching model versions, in order")
    count: int = Field(description="how many are on this page")
    total_matches: int
    order_by: str
    next_cursor: str | None = Field(description="pass as cursor to get the next page; null on the last page")
    next_page_token: str | None = Field(description="same as next_cursor")
