"""Pydantic input and output models of the data_preparation tools."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mcp_server.capabilities.base import ToolInput, ToolResultModel
from mcp_server.common.rl_env import EnvWrapper

FileFormat = Literal["csv", "parquet", "json"]


class LoadDatasetInput(ToolInput):
    s3_uri: str = Field(description="the dataset")
    file_format: FileFormat | None = Field(None, description="default: from the extension")
    preview_rows: int = Field(5, ge=0, le=100, description="first rows in preview")


class LoadDatasetOutput(ToolResultModel):
    key_outputs = ("rows", "columns", "column_names", "dtypes", "missing_values", "preview")
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
    """One column's rules (only stated ones are checked)."""

    model_config = ConfigDict(extra="forbid")

    dtype: ColumnDtype | None = Field(
        None,
        description="int: whole numbers; datetime: parseable dates",
    )
    nullable: bool = Field(True, description="false: no gaps")
    required: bool = Field(True, description="false: may be absent")
    min: float | str | None = Field(None, description="number or ISO date")
    max: float | str | None = Field(None, description="number or ISO date")
    allowed_values: list[str | int | float | bool] | None = Field(None, min_length=1)
    unique: bool = Field(False, description="no repeats")

    @model_validator(mode="after")
    def _bounds_in_order(self) -> ColumnRule:
        if isinstance(self.min, float) and isinstance(self.max, float) and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if isinstance(self.min, str) != isinstance(self.max, str) and None not in (self.min, self.max):
            raise ValueError("min and max must both be numbers or both be dates")
        return self


class ValidateDataInput(ToolInput):
    data_s3_uri: str = Field(description="the dataset")
    file_format: FileFormat | None = Field(None, description="default: from the extension")
    schema_: dict[str, ColumnRule] | None = Field(
        None,
        alias="schema",
        description='per-column rules, e.g. {"age": {"dtype": "int", "min": 0}}',
    )
    required_columns: list[str] = Field(default_factory=list, description="must be present")
    max_missing_ratio: float | None = Field(None, ge=0, le=1, description="largest share of gaps in any column")
    max_examples: int = Field(5, ge=1, le=50, description="offending values shown")

    model_config = ConfigDict(populate_by_name=True)


class Violation(BaseModel):
    column: str | None = Field(description="the column at fault (null for table-wide checks)")
    check: str = Field(description="which check failed: missing_column, dtype, nullable, min, max, ...")
    message: str
    count: int = Field(description="how many values (or columns) offend")
    examples: list[Any] = Field(default_factory=list, description="a few offending values")


class ValidateDataOutput(ToolResultModel):
    key_outputs = ("is_valid", "errors", "warnings", "checks")
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

    normalize: bool = Field(True, description="standardise numeric columns")
    handle_missing: Literal["drop", "mean", "median", "mode"] = Field(
        "median",
        description="numeric gaps: drop rows or impute (categorical: mode)",
    )
    encode_categorical: bool | Literal["onehot", "ordinal"] = Field(
        "onehot",
        description="text columns: onehot (true), ordinal, or false (left out)",
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
    dataset_s3_uri: str = Field(description="the raw dataset")
    file_format: FileFormat | None = Field(None, description="default: from the extension")
    preprocessing_config: PreprocessingConfig = Field(
        default_factory=lambda: PreprocessingConfig.model_validate({}),
        description="how columns become features",
    )
    keep_columns: list[str] = Field(default_factory=list, description="raw columns copied unchanged (ids, labels)")
    output_s3_uri: str | None = Field(
        None,
        description="the processed Parquet",
    )
    pipeline_output_s3_uri: str | None = Field(None, description="the pipeline; default <output>.pipeline.skops")


class PreprocessSupervisedInput(_PreprocessInput):
    target_column: str = Field(description="the label column")
    task_type: Literal["classification", "regression"] = Field(description="the task")
    feature_columns: list[str] | None = Field(None, min_length=1, description="default: all but the target")


class PreprocessUnsupervisedInput(_PreprocessInput):
    columns: list[str] | None = Field(None, min_length=1, description="feature columns; default: all")


PREPROCESS_KEYS: tuple[str, ...] = ("output_s3_uri", "pipeline_s3_uri", "n_rows", "feature_names")


class PreprocessOutput(ToolResultModel):
    key_outputs = PREPROCESS_KEYS
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
    key_outputs = PREPROCESS_KEYS
    target_column: str
    task_type: str
    class_counts: dict[str, int] | None = Field(None, description="rows per class (classification)")


# ---------------------------------------------------------------------------- reinforcement
class PreprocessReinforcementInput(ToolInput):
    environment: str = Field(description="Gymnasium id, e.g. CartPole-v1")
    wrappers: list[EnvWrapper] = Field(
        default_factory=list,
        description="applied in order, each type once",
    )
    env_kwargs: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="gymnasium.make arguments"
    )
    output_s3_uri: str | None = Field(None, description="where the spec goes")


class PreprocessReinforcementOutput(ToolResultModel):
    key_outputs = ("env_spec_s3_uri", "observation_space", "action_space")
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
    """Products up to `degree` (`a^2`, `a*b`)."""

    type: Literal["polynomial"]
    columns: list[str] = Field(min_length=1, description="numeric columns")
    degree: int = Field(2, ge=2, le=5)
    interaction_only: bool = False


class InteractionOp(_Operation):
    """`a*b` per pair."""

    type: Literal["interaction"]
    pairs: list[tuple[str, str]] = Field(min_length=1, description='e.g. [["a", "b"]]')


class LogOp(_Operation):
    """`log1p_<col>` (x >= 0) or `log_<col>` (x > 0)."""

    type: Literal["log"]
    columns: list[str] = Field(min_length=1, description="numeric columns")
    log1p: bool = True


class BinOp(_Operation):
    """`<column>_bin`: bin index or label."""

    type: Literal["bin"]
    column: str
    bins: int = Field(4, ge=2, le=100)
    strategy: Literal["quantile", "uniform"] = "quantile"
    labels: list[str] | None = Field(None, description="one per bin")

    @model_validator(mode="after")
    def _labels_match(self) -> BinOp:
        if self.labels is not None and len(self.labels) != self.bins:
            raise ValueError(f"labels has {len(self.labels)} entries but bins is {self.bins}")
        return self


DatetimePart = Literal["year", "month", "day", "dayofweek", "hour"]


def _all_parts() -> list[DatetimePart]:
    return ["year", "month", "day", "dayofweek", "hour"]


class DatetimeOp(_Operation):
    """`<column>_<part>` (dayofweek: Monday=0)."""

    type: Literal["datetime"]
    column: str
    parts: list[DatetimePart] = Field(default_factory=_all_parts, min_length=1)


class OneHotOp(_Operation):
    """`<column>_<value>` 0/1 columns."""

    type: Literal["one_hot"]
    columns: list[str] = Field(min_length=1)
    drop_original: bool = True
    max_categories: int = Field(50, ge=2, le=1000)


Operation = Annotated[PolynomialOp | InteractionOp | LogOp | BinOp | DatetimeOp | OneHotOp, Field(discriminator="type")]


class FeatureEngineeringInput(ToolInput):
    dataset_s3_uri: str = Field(description="the dataset")
    file_format: FileFormat | None = Field(None, description="default: from the extension")
    operations: list[Operation] = Field(
        min_length=1,
        description="in order; later ones may use earlier ones' columns",
    )
    output_s3_uri: str | None = Field(None, description="the output (its extension sets the format)")


class FeatureEngineeringOutput(ToolResultModel):
    key_outputs = ("output_s3_uri", "new_columns")
    output_s3_uri: str
    rows: int
    new_columns: list[str]
    removed_columns: list[str]
    column_names: list[str]


# ---------------------------------------------------------------------------- split_dataset
class SplitDatasetInput(ToolInput):
    dataset_s3_uri: str = Field(description="the dataset")
    file_format: FileFormat | None = Field(None, description="default: from the extension")
    train_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.7")
    validation_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.15")
    test_ratio: float | None = Field(None, ge=0, lt=1, description="default 0.15")
    stratify_column: str | None = Field(None, description="keep its class ratios")
    random_state: int = Field(42, ge=0, description="seed")
    shuffle: bool = Field(True, description="false: keep row order")
    output_prefix: str | None = Field(
        None,
        description="folder for train/validation/test.parquet",
    )


class SplitDatasetOutput(ToolResultModel):
    key_outputs = ("train_s3_uri", "validation_s3_uri", "test_s3_uri", "train_rows", "validation_rows", "test_rows")
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
    data_s3_uri: str = Field(description="the dataset")
    output_s3_uri: str = Field(description="destination")
    file_format: FileFormat | None = Field(None, description="default: from the output extension")
    input_format: FileFormat | None = Field(None, description="default: from its extension")


class SaveProcessedDataOutput(ToolResultModel):
    key_outputs = ("output_s3_uri", "rows", "sha256")
    output_s3_uri: str
    rows: int
    columns: int
    file_format: str
    sha256: str = Field(description="sha256 of the written file")
    lineage_preserved: bool = Field(description="true when the input's lineage metadata is in the output")
