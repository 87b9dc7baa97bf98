"""Pydantic input and output models of the ml_evaluation tools."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_server.capabilities.base import ToolInput, ToolResultModel

Label = bool | int | float | str
PlotType = Literal[
    "confusion_matrix",
    "roc_curve",
    "pr_curve",
    "feature_importance",
    "residuals",
    "clusters",
    "learning_curve",
    "reward_curve",
]

_MODEL_URI = "the model bundle folder a train_* tool returned (model_s3_uri), or its metadata.json"
_TEST_URI = "test data (CSV, Parquet or JSON) with the model's raw or processed feature columns"
_TARGET = "label column in the test data; default: the bundle's target_column"
_THRESHOLDS = (
    "minimum (or, for lower-is-better metrics such as log_loss, rmse, mae, mape, davies_bouldin: maximum) "
    'value per metric, e.g. {"accuracy": 0.9}; gives `passed` and `failed_metrics`'
)
_SAVE = "save the result as JSON under <model>/evaluations/ (returned as evaluation_s3_uri)"


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- load_model
class LoadModelInput(ToolInput):
    model_s3_uri: str = Field(description=_MODEL_URI)


class Lineage(_Nested):
    training_data_uri: str | None = None
    data_fingerprint: str | None = None
    created_at: str | None = None
    library_versions: dict[str, str] = Field(default_factory=dict)


class LoadModelOutput(ToolResultModel):
    model_s3_uri: str
    algorithm: str | None
    task_type: str | None
    family: str
    model_class: str
    feature_names: list[str]
    raw_feature_columns: list[str]
    has_preprocessor: bool
    target_column: str | None
    classes: list[Label] | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    lineage: Lineage
    sha256_verified: bool
    sha256: dict[str, str] = Field(description="sha256 of every artifact in the bundle, all verified on load")
    evaluations: list[str] = Field(description="saved evaluation results under <model>/evaluations/")
    metadata: dict[str, Any]


# ---------------------------------------------------------------------------- evaluate_*
class EvaluateInput(ToolInput):
    model_s3_uri: str = Field(description=_MODEL_URI)
    test_data_s3_uri: str = Field(description=_TEST_URI)
    thresholds: dict[str, float] | None = Field(None, description=_THRESHOLDS)
    save_result: bool = Field(True, description=_SAVE)


class EvaluateClassifierInput(EvaluateInput):
    target_column: str | None = Field(None, description=_TARGET)


class EvaluateRegressorInput(EvaluateInput):
    target_column: str | None = Field(None, description=_TARGET)


class EvaluateClusteringInput(EvaluateInput):
    label_column: str | None = Field(
        None, description="column with true labels: adds ari and nmi (the column is not used as a feature)"
    )


class FailedMetric(_Nested):
    metric: str
    value: float | None
    threshold: float
    direction: Literal[">=", "<="] = Field(description="the value had to be >= (higher is better) or <= the threshold")


class PerClass(_Nested):
    label: Label
    precision: float | None
    recall: float | None
    f1: float | None
    support: int


class _EvaluationOutput(ToolResultModel):
    model_s3_uri: str
    test_data_s3_uri: str
    algorithm: str | None
    task_type: str
    n_samples: int
    metrics: dict[str, float | None]
    thresholds: dict[str, float] | None = None
    passed: bool | None = Field(None, description="all thresholds met; null when no thresholds were given")
    failed_metrics: list[FailedMetric] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    evaluation_s3_uri: str | None = None


class EvaluateClassifierOutput(_EvaluationOutput):
    target_column: str
    average: Literal["binary", "weighted"] = Field(
        description="what precision/recall/f1 mean: binary (positive_label) or weighted over classes"
    )
    positive_label: Label | None
    labels: list[Label] = Field(description="row and column order of confusion_matrix")
    confusion_matrix: list[list[int]] = Field(description="rows: true label, columns: predicted label")
    per_class: list[PerClass]


class Residuals(_Nested):
    mean: float
    std: float
    max_abs: float


class EvaluateRegressorOutput(_EvaluationOutput):
    target_column: str
    residuals: Residuals


class EvaluateClusteringOutput(_EvaluationOutput):
    label_column: str | None
    n_clusters: int
    n_noise: int = Field(description="test points assigned to no cluster (label -1)")
    cluster_sizes: dict[str, int]


# ---------------------------------------------------------------------------- compare_models
class CompareModelsInput(ToolInput):
    model_s3_uris: list[str] = Field(min_length=2, max_length=20, description="bundles of the same task to compare")
    test_data_s3_uri: str = Field(description=_TEST_URI)
    metric: str | None = Field(
        None,
        description="ranking metric; default accuracy (classification), rmse (regression), silhouette (clustering)",
    )
    target_column: str | None = Field(None, description=_TARGET)
    label_column: str | None = Field(None, description="true-label column for clustering models (ari, nmi)")
    n_bootstrap: int = Field(1000, ge=0, le=10000, description="bootstrap resamples for ci_low/ci_high; 0 skips")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="confidence level of the bootstrap interval")
    random_state: int = Field(0, description="seed of the bootstrap resampling (the same resamples for every model)")
    save_result: bool = Field(True, description="save the comparison under <best model>/evaluations/")


class RankingEntry(_Nested):
    rank: int
    model: str
    algorithm: str | None
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None


class McNemar(_Nested):
    model_a: str
    model_b: str
    b: int = Field(description="test rows only model_a got right")
    c: int = Field(description="test rows only model_b got right")
    statistic: float
    p_value: float
    method: str


class CompareModelsOutput(ToolResultModel):
    task_type: str
    metric: str
    higher_is_better: bool
    test_data_s3_uri: str
    n_samples: int
    ranking: list[RankingEntry]
    best_model_s3_uri: str
    table: list[dict[str, Any]] = Field(description="one row per model with every metric")
    mcnemar: McNemar | None = Field(None, description="McNemar's test between the top two classifiers")
    n_bootstrap: int
    confidence: float
    warnings: list[str] = Field(default_factory=list)
    evaluation_s3_uri: str | None = None


# ---------------------------------------------------------------------------- visualization
class VisualizationInput(ToolInput):
    model_s3_uri: str = Field(description=_MODEL_URI)
    plot_type: PlotType = Field(
        description=(
            "confusion_matrix, roc_curve, pr_curve (classifiers), residuals (regressors), clusters "
            "(clustering; PCA 2-D projection) need test_data_s3_uri; feature_importance, learning_curve "
            "(training history) and reward_curve (RL history) come from the bundle"
        )
    )
    test_data_s3_uri: str | None = Field(None, description=_TEST_URI)
    target_column: str | None = Field(None, description=_TARGET)
    output_s3_uri: str | None = Field(None, description="where to save the PNG; default <model>/plots/<plot_type>.png")
    top_n: int = Field(20, ge=1, le=200, description="feature_importance: how many features to show")
    evaluation_s3_uri: str | None = Field(
        None, description="reward_curve: also draw the mean return of this evaluate_reinforcement result"
    )


class VisualizationOutput(ToolResultModel):
    model_s3_uri: str
    plot_type: str
    image_s3_uri: str
    bytes: int
    sha256: str


# ---------------------------------------------------------------------------- generate_report
class GenerateReportInput(ToolInput):
    model_s3_uri: str | None = Field(None, description=_MODEL_URI + "; or give evaluation_s3_uri")
    evaluation_s3_uri: str | None = Field(
        None, description="a saved evaluation result (evaluation_s3_uri of an evaluate_* tool) to report on"
    )
    output_s3_uri: str = Field(description="where to write the report (.html or .md)")
    format: Literal["html", "markdown"] | None = Field(
        None,
        description="html (self-contained, images embedded) or markdown (PNG files beside it); default from "
        "the output name (.md: markdown), else html",
    )
    test_data_s3_uri: str | None = Field(None, description="evaluate on this data for the report's metrics and plots")
    target_column: str | None = Field(None, description=_TARGET)
    label_column: str | None = Field(None, description="clustering: true-label column")
    thresholds: dict[str, float] | None = Field(None, description=_THRESHOLDS)
    title: str | None = Field(None, max_length=200, description="report title; default from the model")

    @model_validator(mode="after")
    def _one_source(self) -> GenerateReportInput:
        if not self.model_s3_uri and not self.evaluation_s3_uri:
            raise ValueError("pass model_s3_uri or evaluation_s3_uri")
        return self


class GenerateReportOutput(ToolResultModel):
    report_s3_uri: str
    format: Literal["html", "markdown"]
    model_s3_uri: str
    sections: list[str]
    plots: list[str]
    image_s3_uris: list[str] = Field(default_factory=list, description="markdown: the PNG files saved beside it")
    passed: bool | None = None
    bytes: int
    sha256: str


# ---------------------------------------------------------------------------- evaluate_reinforcement
class EvaluateReinforcementInput(ToolInput):
    model_s3_uri: str = Field(description="a policy bundle written by train_ppo, train_dqn or train_a3c")
    environment: str | None = Field(None, description="a Gymnasium id; default: the bundle's environment")
    env_spec_s3_uri: str | None = Field(None, description="or an env spec (preprocess_reinforcement)")
    n_episodes: int = Field(10, ge=1, le=1000, description="episodes to run")
    success_threshold: float | None = Field(
        None, description="an episode succeeds when its return is >= this; default: the env's reward threshold"
    )
    random_state: int = Field(0, ge=0, le=2**32 - 1, description="episode i is reset with seed random_state + i")
    save_result: bool = Field(True, description=_SAVE)


class EvaluateReinforcementOutput(ToolResultModel):
    model_s3_uri: str
    algorithm: str | None
    environment: str
    n_episodes: int
    random_state: int
    success_threshold: float | None
    metrics: dict[str, float | None] = Field(
        description="episode_return_mean, episode_return_std, episode_length_mean, success_rate"
    )
    returns: list[float]
    lengths: list[int]
    evaluation_s3_uri: str | None = None
