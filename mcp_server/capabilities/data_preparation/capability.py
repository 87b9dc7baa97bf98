"""The data_preparation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.data_preparation import schemas as s

_PIPELINE = " Training and evaluation reuse the fitted pipeline (pipeline_s3_uri)."

# Tool functions are named, not imported: their modules (pandas, scikit-learn, ...) load on
# the first call, so listing tools stays fast.
_TOOLS = "mcp_server.capabilities.data_preparation.tools"


class DataPreparationCapability(BaseCapability):
    name = "data_preparation"
    description = "Load, validate, preprocess, engineer features, split and save datasets."
    resources_module = "mcp_server.capabilities.data_preparation.resources"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="load_dataset",
                title="Load dataset",
                description=("Describe a dataset: rows, columns, dtypes, missing values, first rows."),
                input_model=s.LoadDatasetInput,
                output_model=s.LoadDatasetOutput,
                fn=f"{_TOOLS}.load:load_dataset",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="validate_data",
                title="Validate data",
                description=(
                    "Check a dataset against per-column rules; every violation in errors[], is_valid. A "
                    "failing dataset is a normal result."
                ),
                input_model=s.ValidateDataInput,
                output_model=s.ValidateDataOutput,
                fn=f"{_TOOLS}.validate:validate_data",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_supervised",
                title="Preprocess for supervised learning",
                description=(
                    "Fit preprocessing (scale, impute, encode) and write the features plus the target as "
                    "Parquet (default <dataset>.processed.parquet); rows without a target are dropped." + _PIPELINE
                ),
                input_model=s.PreprocessSupervisedInput,
                output_model=s.PreprocessSupervisedOutput,
                fn=f"{_TOOLS}.preprocess:preprocess_supervised",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_unsupervised",
                title="Preprocess for unsupervised learning",
                description=(
                    "Fit preprocessing for clustering or PCA and write the features as Parquet (default "
                    "<dataset>.unsupervised.parquet)." + _PIPELINE
                ),
                input_model=s.PreprocessUnsupervisedInput,
                output_model=s.PreprocessOutput,
                fn=f"{_TOOLS}.preprocess:preprocess_unsupervised",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_reinforcement",
                title="Prepare an RL environment",
                description=(
                    "Check a Gymnasium environment and wrappers by building it once, and save the spec "
                    "(env_spec_s3_uri, default env_specs/<environment>.json) for the RL tools."
                ),
                input_model=s.PreprocessReinforcementInput,
                output_model=s.PreprocessReinforcementOutput,
                fn=f"{_TOOLS}.reinforcement:preprocess_reinforcement",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="feature_engineering",
                title="Engineer features",
                description=("Add derived columns (operations in order); default output <dataset>.features.parquet."),
                input_model=s.FeatureEngineeringInput,
                output_model=s.FeatureEngineeringOutput,
                fn=f"{_TOOLS}.features:feature_engineering",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="split_dataset",
                title="Split dataset",
                description=(
                    "Split into train/validation/test Parquet (default 0.7/0.15/0.15; given ratios sum to 1, "
                    "unset ones share the rest; a 0 part writes nothing). Default <dataset>.train.parquet etc."
                ),
                input_model=s.SplitDatasetInput,
                output_model=s.SplitDatasetOutput,
                fn=f"{_TOOLS}.split:split_dataset",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="save_processed_data",
                title="Save processed data",
                description=(
                    "Copy or convert a dataset to output_s3_uri (format from its extension; Parquet keeps "
                    "lineage); replaces the output, never the input."
                ),
                input_model=s.SaveProcessedDataInput,
                output_model=s.SaveProcessedDataOutput,
                fn=f"{_TOOLS}.save:save_processed_data",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
        ]
