"""Pydantic input and output models of the data_preparation tools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mcp_server.capabilities.base import ToolInput, ToolResultModel

FileFormat = Literal["csv", "parquet", "json"]


class LoadDatasetInput(ToolInput):
    s3_uri: str = Field(description="s3://bucket/key, file:///path or a key inside the storage root")
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the extension")
    preview_rows: int = Field(5, ge=0, le=100, description="how many first rows to return in `preview`")


class LoadDatasetOutput(ToolResultModel):
    s3_uri: str
    rows: int
    columns: int
    column_names: list[str]
    dtypes: dict[str, str]
    missing_values: dict[str, int]
    preview: list[dict[str, Any]]
    memory_bytes: int
