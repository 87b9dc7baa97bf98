"""The data_preparation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.data_preparation import schemas as s
from mcp_server.capabilities.data_preparation.tools.features import feature_engineering
from mcp_server.capabilities.data_preparation.tools.load import load_dataset
from mcp_server.capabilities.data_preparation.tools.preprocess import preprocess_supervised, preprocess_unsupervised
from mcp_server.capabilities.data_preparation.tools.reinforcement import preprocess_reinforcement
from mcp_server.capabilities.data_preparation.tools.save import save_processed_data
from mcp_server.capabilities.data_preparation.tools.split import split_dataset
from mcp_server.capabilities.data_preparation.tools.validate import validate_data

_PIPELINE = (
    " The fitted scikit-learn pipeline is saved (skops) at pipeline_s3_uri and recorded in the Parquet "
    "output's lineage, so training, evaluation and prediction apply exactly the same steps; at apply "
    "time unseen categories and missing values are handled. Defaults: normalize true (StandardScaler), "
    "handle_missing median (categorical gaps: mode; with drop, rows with gaps are dropped before fitting "
    "and the pipeline still imputes mean/mode at apply time), encode_categorical onehot (or ordinal, or "
    "false to leave text columns out). Outputs default to <dataset>.processed.parquet (unsupervised: "
    "<dataset>.unsupervised.parquet) and a .pipeline.skops beside it, replacing earlier ones."
)


class DataPreparationCapability(BaseCapability):
    name = "data_preparation"
    description = "Load, validate, preprocess, engineer features, split and save datasets."
    resources_module = "mcp_server.capabilities.data_preparation.resources"

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
            ToolSpec(
                name="validate_data",
                title="Validate data",
                description=(
                    "Check a dataset against per-column rules (schema: dtype int/float/string/bool/datetime/"
                    "category, nullable, min, max, allowed_values, unique, required), required_columns and "
                    "max_missing_ratio. Reports every violation in errors[] (column, check, count, examples) "
                    "and is_valid; a failing dataset is a normal result, a malformed schema an error. "
                    "Warnings flag constant, empty or undescribed columns and duplicate rows. Writes nothing."
                ),
                input_model=s.ValidateDataInput,
                output_model=s.ValidateDataOutput,
                fn=validate_data,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_supervised",
                title="Preprocess for supervised learning",
                description=(
                    "Fit preprocessing for a classification or regression dataset and write the processed "
                    "features plus the unchanged target column as Parquet. target_column must exist; rows "
                    "without a target are dropped (counted in dropped_by_reason)." + _PIPELINE
                ),
                input_model=s.PreprocessSupervisedInput,
                output_model=s.PreprocessSupervisedOutput,
                fn=preprocess_supervised,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_unsupervised",
                title="Preprocess for unsupervised learning",
                description=(
                    "Fit preprocessing on all columns (or `columns`) of a dataset for clustering or "
                    "dimensionality reduction and write the processed features as Parquet; keep_columns "
                    "(e.g. a label for evaluation) are copied unchanged." + _PIPELINE
                ),
                input_model=s.PreprocessUnsupervisedInput,
                output_model=s.PreprocessOutput,
                fn=preprocess_unsupervised,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="preprocess_reinforcement",
                title="Prepare an RL environment",
                description=(
                    "Check a Gymnasium environment id (close matches suggested when unknown) and wrapper "
                    "settings (normalize_observation, normalize_reward, scale_reward, frame_stack, time_limit) "
                    "by building the environment once, then save a JSON environment spec the RL training and "
                    "evaluation tools accept as env_spec_s3_uri. Default output: env_specs/<environment>.json "
                    "(with a settings hash when wrappers or env_kwargs are given)."
                ),
                input_model=s.PreprocessReinforcementInput,
                output_model=s.PreprocessReinforcementOutput,
                fn=preprocess_reinforcement,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="feature_engineering",
                title="Engineer features",
                description=(
                    "Add derived columns to a dataset, operations applied in order: polynomial (columns, "
                    "degree), interaction (pairs), log (columns; log1p default, negative values refused), bin "
                    "(column, bins, strategy quantile/uniform, labels), datetime (column -> year, month, day, "
                    "dayofweek, hour), one_hot (columns). Returns new_columns. Default output: "
                    "<dataset>.features.parquet next to the input."
                ),
                input_model=s.FeatureEngineeringInput,
                output_model=s.FeatureEngineeringOutput,
                fn=feature_engineering,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="split_dataset",
                title="Split dataset",
                description=(
                    "Split a dataset into train/validation/test Parquet files (default ratios 0.7/0.15/0.15; "
                    "given ratios must sum to 1, unspecified ones share the rest; validation or test 0 "
                    "writes no file and returns null). stratify_column keeps class ratios in every part; "
                    "random_state (default 42) makes the split reproducible. Lineage metadata is kept. "
                    "Default outputs: <dataset>.train.parquet etc. next to the input."
                ),
                input_model=s.SplitDatasetInput,
                output_model=s.SplitDatasetOutput,
                fn=split_dataset,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="save_processed_data",
                title="Save processed data",
                description=(
                    "Copy or convert a dataset to output_s3_uri as csv, parquet or json (default: from the "
                    "output extension); Parquet keeps the lineage metadata. Returns rows and the sha256 of the "
                    "written file. Replaces an existing output, never the input."
                ),
                input_model=s.SaveProcessedDataInput,
                output_model=s.SaveProcessedDataOutput,
                fn=save_processed_data,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
