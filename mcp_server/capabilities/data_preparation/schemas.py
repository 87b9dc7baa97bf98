"""Pydantic input and output models of the data_preparation tools."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mcp_server.capabilities.base import ToolInput, ToolResultModel
from mcp_server.common.rl_env import EnvWrapper

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
    columns_truncated: bool = Field(False, description="true: only the first 200 columns are listed")


# ---------------------------------------------------------------------------- validate_data
ColumnDtype = Literal["int", "float", "string", "bool", "datetime", "category"]


class ColumnRule(BaseModel):
    """What one column must satisfy. Every stated rule is checked; unstated ones are not."""

    model_config = ConfigDict(extra="forbid")

    dtype: ColumnDtype | None = Field(
        None,
        description="int (whole numbers, gaps allowed), float (any number), string, bool, "
        "datetime (values parseable as dates), category (any discrete values)",
    )
    nullable: bool = Field(True, description="false: no missing values allowed")
    required: bool = Field(True, description="false: the column may be absent")
    min: float | str | None = Field(None, description="smallest allowed value (number, or ISO date for datetime)")
    max: float | str | None = Field(None, description="largest allowed value (number, or ISO date for datetime)")
    allowed_values: list[str | int | float | bool] | None = Field(
        None, min_length=1, description="the only values allowed (missing values are governed by nullable)"
    )
    unique: bool = Field(False, description="true: no value may repeat")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ColumnRule:
        if isinstance(self.min, float) and isinstance(self.max, float) and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if isinstance(self.min, str) != isinstance(self.max, str) and None not in (self.min, self.max):
            raise ValueError("min and max must both be numbers or both be dates")
        return self


class ValidateDataInput(ToolInput):
    data_s3_uri: str = Field(description="the dataset to check (csv, parquet or json)")
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the extension")
    schema_: dict[str, ColumnRule] | None = Field(
        None,
        alias="schema",
        description='per-column rules, e.g. {"age": {"dtype": "int", "min": 0, "nullable": false}}',
    )
    required_columns: list[str] = Field(default_factory=list, description="columns that must be present")
    max_missing_ratio: float | None = Field(
        None, ge=0, le=1, description="largest allowed share of missing values in any column (0..1)"
    )
    max_examples: int = Field(5, ge=1, le=50, description="offending values shown per violation")

    model_config = ConfigDict(populate_by_name=True)


class Violation(BaseModel):
    column: str | None = Field(description="the column at fault (null for table-wide checks)")
    check: str = Field(description="which check failed: missing_column, dtype, nullable, min, max, ...")
    message: str
    count: int = Field(description="how many values (or columns) offend")
    examples: list[Any] = Field(default_factory=list, description="a few offending values")


class ValidateDataOutput(ToolResultModel):
    data_s3_uri: str
    is_valid: bool
    rows: int
    columns: int
    errors: list[Violation]
    warnings: list[Violation]
    checks: dict[str, int] = Field(description="total, passed and failed checks")


# ---------------------------------------------------------------------------- preprocessing
class PreprocessingConfig(BaseModel):
    """How raw columns become features. The fitted steps are saved and reused at inference."""

    model_config = ConfigDict(extra="forbid")

    normalize: bool = Field(True, description="standardise numeric columns (StandardScaler)")
    handle_missing: Literal["drop", "mean", "median", "mode"] = Field(
        "median",
        description="numeric gaps: drop the rows, or impute mean/median/mode (categorical gaps are "
        "always imputed with the mode). With drop, rows are dropped before fitting and the saved "
        "pipeline still imputes (numeric mean, categorical mode) at apply time",
    )
    encode_categorical: bool | Literal["onehot", "ordinal"] = Field(
        "onehot",
        description="onehot (true) or ordinal codes for text/categorical columns; false leaves them out. "
        "Unseen categories at apply time become all zeros (onehot) or -1 (ordinal)",
    )

    @field_validator("encode_categorical", mode="before")
    @classmethod
    def _spellings(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower().replace("-", "").replace("_", "") == "onehot":
            return "onehot"
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def encoding(self) -> Literal["onehot", "ordinal"] | None:
        if self.encode_categorical is False:
            return None
        return "ordinal" if self.encode_categorical == "ordinal" else "onehot"


class _PreprocessInput(ToolInput):
    dataset_s3_uri: str = Field(description="the raw dataset (csv, parquet or json)")
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the extension")
    preprocessing_config: PreprocessingConfig = Field(
        default_factory=lambda: PreprocessingConfig.model_validate({}),
        description="normalize (default true), handle_missing (default median), encode_categorical (default onehot)",
    )
    keep_columns: list[str] = Field(
        default_factory=list, description="raw columns copied unchanged into the output (ids, labels for evaluation)"
    )
    output_s3_uri: str | None = Field(
        None,
        description="where the processed Parquet goes; default next to the input: <dataset>.processed.parquet "
        "(supervised) or <dataset>.unsupervised.parquet",
    )
    pipeline_output_s3_uri: str | None = Field(
        None, description="where the fitted pipeline (.skops) goes; default: <output>.pipeline.skops next to the output"
    )


class PreprocessSupervisedInput(_PreprocessInput):
    target_column: str = Field(description="the label column; kept unchanged in the output")
    task_type: Literal["classification", "regression"] = Field(
        description="classification (labels, kept as they are) or regression (a numeric target)"
    )
    feature_columns: list[str] | None = Field(
        None, min_length=1, description="raw columns to use as features; default: every column but the target"
    )


class PreprocessUnsupervisedInput(_PreprocessInput):
    columns: list[str] | None = Field(
        None, min_length=1, description="raw columns to use as features; default: every column"
    )


class PreprocessOutput(ToolResultModel):
    output_s3_uri: str
    pipeline_s3_uri: str = Field(description="the fitted preprocessing; load it with bundles.load_skops")
    source_s3_uri: str
    n_rows: int
    n_features: int
    feature_names: list[str] = Field(description="processed columns, in the order the pipeline outputs them")
    raw_feature_columns: list[str] = Field(description="raw columns the pipeline takes")
    numeric_columns: list[str]
    categorical_columns: list[str]
    excluded_columns: dict[str, str] = Field(description="raw columns left out of the features, and why")
    dropped_rows: int
    dropped_by_reason: dict[str, int]
    preprocessing_config: dict[str, Any] = Field(description="the configuration applied, defaults filled in")
    warnings: list[str]


class PreprocessSupervisedOutput(PreprocessOutput):
    target_column: str
    task_type: str
    class_counts: dict[str, int] | None = Field(None, description="rows per class (classification)")


# ---------------------------------------------------------------------------- reinforcement
class PreprocessReinforcementInput(ToolInput):
    environment: str = Field(description="a registered Gymnasium id, e.g. CartPole-v1")
    wrappers: list[EnvWrapper] = Field(
        default_factory=list,
        description="applied in order, each type at most once: normalize_observation {epsilon}, "
        "normalize_reward {gamma, epsilon}, scale_reward {scale}, frame_stack {stack_size}, "
        "time_limit {max_episode_steps} (replaces the environment's own limit)",
    )
    env_kwargs: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description='keyword arguments for gymnasium.make, e.g. {"is_slippery": false}'
    )
    output_s3_uri: str | None = Field(
        None, description="where the JSON spec goes; default: env_specs/<environment>[-<config hash>].json"
    )


class PreprocessReinforcementOutput(ToolResultModel):
    env_spec_s3_uri: str
    environment: str
    wrappers: list[dict[str, Any]]
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    max_episode_steps: int | None
    reward_threshold: float | None


# ---------------------------------------------------------------------------- feature_engineering
class _Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolynomialOp(_Operation):
    """Products of the columns up to `degree` (e.g. `a^2`, `a*b`); the columns themselves are kept."""

    type: Literal["polynomial"]
    columns: list[str] = Field(min_length=1, description="numeric columns")
    degree: int = Field(2, ge=2, le=5)
    interaction_only: bool = Field(False, description="true: only products of distinct columns")


class InteractionOp(_Operation):
    """One product column per pair: `a*b`."""

    type: Literal["interaction"]
    pairs: list[tuple[str, str]] = Field(min_length=1, description='pairs of numeric columns, e.g. [["a", "b"]]')


class LogOp(_Operation):
    """`log1p_<col>` (values must be >= 0) or `log_<col>` (values must be > 0)."""

    type: Literal["log"]
    columns: list[str] = Field(min_length=1, description="numeric columns")
    log1p: bool = Field(True, description="true: log(1 + x), allows zeros")


class BinOp(_Operation):
    """`<column>_bin`: the bin index (0-based) or the label of each value's bin."""

    type: Literal["bin"]
    column: str
    bins: int = Field(4, ge=2, le=100)
    strategy: Literal["quantile", "uniform"] = Field("quantile", description="equal counts or equal widths")
    labels: list[str] | None = Field(None, description="one label per bin (default: bin indexes)")

    @model_validator(mode="after")
    def _labels_match(self) -> BinOp:
        if self.labels is not None and len(self.labels) != self.bins:
            raise ValueError(f"labels has {len(self.labels)} entries but bins is {self.bins}")
        return self


DatetimePart = Literal["year", "month", "day", "dayofweek", "hour"]


def _all_parts() -> list[DatetimePart]:
    return ["year", "month", "day", "dayofweek", "hour"]


class DatetimeOp(_Operation):
    """`<column>_<part>` for each part (dayofweek: Monday=0)."""

    type: Literal["datetime"]
    column: str
    parts: list[DatetimePart] = Field(
        default_factory=_all_parts, min_length=1, description="which parts to extract (default: all five)"
    )


class OneHotOp(_Operation):
    """`<column>_<value>` 0/1 columns per distinct value (missing: all zeros)."""

    type: Literal["one_hot"]
    columns: list[str] = Field(min_length=1)
    drop_original: bool = Field(True, description="remove the encoded columns")
    max_categories: int = Field(50, ge=2, le=1000, description="refuse columns with more distinct values")


Operation = Annotated[PolynomialOp | InteractionOp | LogOp | BinOp | DatetimeOp | OneHotOp, Field(discriminator="type")]


class FeatureEngineeringInput(ToolInput):
    dataset_s3_uri: str = Field(description="the dataset to add columns to (csv, parquet or json)")
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the extension")
    operations: list[Operation] = Field(
        min_length=1,
        description="applied in order (later ones may use columns earlier ones made); each has a `type`: "
        "polynomial, interaction, log, bin, datetime, one_hot",
    )
    output_s3_uri: str | None = Field(
        None, description="default: <dataset>.features.parquet next to the input; the extension sets the format"
    )


class FeatureEngineeringOutput(ToolResultModel):
    output_s3_uri: str
    rows: int
    new_columns: list[str]
    removed_columns: list[str]
    column_names: list[str]


# ---------------------------------------------------------------------------- split_dataset
class SplitDatasetInput(ToolInput):
    dataset_s3_uri: str = Field(
        description="the dataset to split (csv, parquet or json; processed Parquet keeps lineage)"
    )
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the extension")
    train_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.7")
    validation_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.15; 0 writes no validation file")
    test_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.15; 0 writes no test file")
    stratify_column: str | None = Field(None, description="keep this column's class ratios in every part")
    random_state: int = Field(42, ge=0, description="same value, same data -> identical files")
    shuffle: bool = Field(True, description="false: keep row order (train first), e.g. for time series")
    output_prefix: str | None = Field(
        None,
        description="folder for train/validation/test.parquet; default: <dataset>.train.parquet etc. next to the input",
    )


class SplitDatasetOutput(ToolResultModel):
    train_s3_uri: str
    validation_s3_uri: str | None
    test_s3_uri: str | None
    train_rows: int
    validation_rows: int
    test_rows: int
    ratios: dict[str, float] = Field(description="the ratios applied, defaults filled in")
    class_counts: dict[str, dict[str, int]] | None = Field(
        None, description="rows per class in each part (stratified splits)"
    )


# ---------------------------------------------------------------------------- save_processed_data
class SaveProcessedDataInput(ToolInput):
    data_s3_uri: str = Field(description="the dataset to copy or convert")
    output_s3_uri: str = Field(description="destination; replaced if it exists (never the input itself)")
    file_format: FileFormat | None = Field(None, description="csv, parquet or json; default: from the output extension")
    input_format: FileFormat | None = Field(None, description="format of data_s3_uri; default: from its extension")


class SaveProcessedDataOutput(ToolResultModel):
    output_s3_uri: str
    rows: int
    columns: int
    file_format: str
    sha256: str = Field(description="sha256 of the written file")
    lineage_preserved: bool = Field(description="true when the input's lineage metadata is in the output")
