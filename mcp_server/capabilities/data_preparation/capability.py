"""The data_preparation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.data_preparation import schemas as s
from mcp_server.capabilities.data_preparation.tools.load import load_dataset


class DataPreparationCapability(BaseCapability):
    name = "data_preparation"
    description = "Load, validate, preprocess, engineer features, split and save datasets."

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="load_dataset",
                title="Load dataset",
                description=(
                    "Read a CSV, Parquet or JSON dataset from storage and describe it: row and column "
                    "counts, dtypes, missing values per column and the first rows."
                ),
                input_model=s.LoadDatasetInput,
                output_model=s.LoadDatasetOutput,
                fn=load_dataset,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
