"""Pydantic input and output models of the ml_evaluation tools.

The evaluations that run as jobs (evaluate_*, compare_models) take the trainers' `wait` and
`max_wait_seconds` (`JobInput`) and answer with `JobOutput`: while the job runs, the handle alone
(every evaluation field null); once it succeeded, the fields in `done_fields` are always there.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_server.capabilities.base import JobInput, JobOutput, ToolInput, ToolResultModel

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

_MODEL_URI = "the model bundle"
_TEST_URI = "test data, raw or processed columns"
_TARGET = "default: the bundle's target"
_THRESHOLDS = 'e.g. {"accuracy": 0.9}; maximums for error metrics'
_SAVE = "save under <model>/evaluations/"


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
    key_outputs = ("algorithm", "task_type", "feature_names", "sha256_verified", "metadata")
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
class EvaluateInput(JobInput):
    model_s3_uri: str = Field(description=_MODEL_URI)
    test_data_s3_uri: str = Field(description=_TEST_URI)
    thresholds: dict[str, float] | None = Field(None, description=_THRESHOLDS)
    save_result: bool = Field(True, description=_SAVE)


class EvaluateClassifierInput(EvaluateInput):
    target_column: str | None = Field(None, description=_TARGET)


class EvaluateRegressorInput(EvaluateInput):
    target_column: str | None = Field(None, description=_TARGET)


class EvaluateClusteringInput(EvaluateInput):
    label_column: str | None = Field(None, description="true labels: adds ari, nmi")


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


EVALUATION_KEYS: tuple[str, ...] = ("job_id", "status", "metrics", "passed", "evaluation_s3_uri")
_DONE: tuple[str, ...] = ("model_s3_uri", "test_data_s3_uri", "task_type", "n_samples", "metrics")


class _EvaluationOutput(JobOutput):
    key_outputs = EVALUATION_KEYS
    done_fields = _DONE
    model_s3_uri: str | None = None
    test_data_s3_uri: str | None = None
    algorithm: str | None = None
    task_type: str | None = None
    n_samples: int | None = None
    metrics: dict[str, float | None] | None = None
    thresholds: dict[str, float] | None = None
    passed: bool | None = Field(None, description="all thresholds met; null when no thresholds were given")
    failed_metrics: list[FailedMetric] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    evaluation_s3_uri: str | None = None


class EvaluateClassifierOutput(_EvaluationOutput):
    key_outputs = (*EVALUATION_KEYS, "confusion_matrix", "per_class")
    done_fields = (*_DONE, "target_column", "average", "labels", "confusion_matrix", "per_class")
    target_column: str | None = None
    average: Literal["binary", "weighted"] | None = Field(
        None, description="what precision/recall/f1 mean: binary (positive_label) or weighted over classes"
    )
    positive_label: Label | None = None
    labels: list[Label] | None = Field(None, description="row and column order of confusion_matrix")
    confusion_matrix: list[list[int]] | None = Field(None, description="rows: true label, columns: predicted label")
    per_class: list[PerClass] | None = None


class Residuals(_Nested):
    mean: float
    std: float
    max_abs: float


class EvaluateRegressorOutput(_EvaluationOutput):
    done_fields = (*_DONE, "target_column", "residuals")
    target_column: str | None = None
    residuals: Residuals | None = None


class EvaluateClusteringOutput(_EvaluationOutput):
    key_outputs = (*EVALUATION_KEYS, "n_clusters")
    done_fields = (*_DONE, "n_clusters", "n_noise", "cluster_sizes")
    label_column: str | None = None
    n_clusters: int | None = None
    n_noise: int | None = Field(None, description="test points assigned to no cluster (label -1)")
    cluster_sizes: dict[str, int] | None = None


# ---------------------------------------------------------------------------- compare_models
class CompareModelsInput(JobInput):
    model_s3_uris: list[str] = Field(min_length=2, max_length=20, description="bundles of one task")
    test_data_s3_uri: str = Field(description=_TEST_URI)
    metric: str | None = Field(
        None,
        description="default accuracy, rmse or silhouette",
    )
    target_column: str | None = Field(None, description=_TARGET)
    label_column: str | None = Field(None, description="clustering: true labels")
    n_bootstrap: int = Field(1000, ge=0, le=10000, description="resamples for the interval; 0 skips")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="interval level")
    random_state: int = Field(0, description="bootstrap seed")
    save_result: bool = Field(True, description="save under <best model>/evaluations/")


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


class CompareModelsOutput(JobOutput):
    key_outputs = ("job_id", "status", "ranking", "best_model_s3_uri", "table")
    done_fields = ("task_type", "metric", "test_data_s3_uri", "n_samples", "ranking", "best_model_s3_uri", "table")
    task_type: str | None = None
    metric: str | None = None
    higher_is_better: bool | None = None
    test_data_s3_uri: str | None = None
    n_samples: int | None = None
    ranking: list[RankingEntry] | None = None
    best_model_s3_uri: str | None = None
    table: list[dict[str, Any]] | None = Field(None, description="one row per model with every metric")
    mcnemar: McNemar | None = Field(None, description="McNemar's test between the top two classifiers")
    n_bootstrap: int | None = None
    confidence: float | None = None
    warnings: list[str] = Field(default_factory=list)
    evaluation_s3_uri: str | None = None


# ---------------------------------------------------------------------------- visualization
class VisualizationInput(ToolInput):
    model_s3_uri: str = Field(description=_MODEL_URI)
    plot_type: PlotType = Field(description="confusion_matrix, roc_curve, pr_curve, residuals, clusters need test data")
    test_data_s3_uri: str | None = Field(None, description=_TEST_URI)
    target_column: str | None = Field(None, description=_TARGET)
    output_s3_uri: str | None = Field(None, description="default <model>/plots/<plot_type>.png")
    top_n: int = Field(20, ge=1, le=200, description="feature_importance: features shown")
    evaluation_s3_uri: str | None = Field(
        None, description="reward_curve: also draw the mean return of this evaluate_reinforcement result"
    )


class VisualizationOutput(ToolResultModel):
    key_outputs = ("image_s3_uri",)
    model_s3_uri: str
    plot_type: str
    image_s3_uri: str
    bytes: int
    sha256: str
    warnings: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------- generate_report
class GenerateReportInput(JobInput):
    model_s3_uri: str | None = Field(None, description="the model bundle, or give evaluation_s3_uri")
    evaluation_s3_uri: str | None = Field(None, description="a saved evaluation")
    output_s3_uri: str = Field(description=".html or .md")
    format: Literal["html", "markdown"] | None = Field(
        None,
        description="default: from the output name",
    )
    test_data_s3_uri: str | None = Field(None, description="evaluate on this data")
    target_column: str | None = Field(None, description=_TARGET)
    label_column: str | None = Field(None, description="clustering: true labels")
    thresholds: dict[str, float] | None = Field(None, description=_THRESHOLDS)
    title: str | None = Field(None, max_length=200, description="default from the model")

    @model_validator(mode="after")
    def _one_source(self) -> GenerateReportInput:
        if not self.model_s3_uri and not self.evaluation_s3_uri:
            raise ValueError("pass model_s3_uri or evaluation_s3_uri")
        return self


class GenerateReportOutput(JobOutput):
    key_outputs = ("job_id", "status", "report_s3_uri")
    done_fields = ("report_s3_uri", "format", "model_s3_uri", "sections", "plots", "bytes", "sha256")
    report_s3_uri: str | None = None
    format: Literal["html", "markdown"] | None = None
    model_s3_uri: str | None = None
    sections: list[str] | None = None
    plots: list[str] | None = None
    image_s3_uris: list[str] = Field(default_factory=list, description="markdown: the PNG files saved beside it")
    passed: bool | None = None
    bytes: int | None = None
    sha256: str | None = None


# ---------------------------------------------------------------------------- evaluate_reinforcement
class EvaluateReinforcementInput(JobInput):
    model_s3_uri: str = Field(description="a policy bundle")
    environment: str | None = Field(None, description="a Gymnasium id; default: the bundle's environment")
    env_spec_s3_uri: str | None = Field(None, description="or an env spec (preprocess_reinforcement)")
    n_episodes: int = Field(10, ge=1, le=1000, description="episodes to run")
    success_threshold: float | None = Field(None, description="an episode succeeds when its return is >= this")
    random_state: int = Field(0, ge=0, le=2**32 - 1, description="seed of episode 0")
    save_result: bool = Field(True, description=_SAVE)


class EvaluateReinforcementOutput(JobOutput):
    key_outputs = (
        "job_id",
        "status",
        "model_s3_uri",
        "environment",
        "metrics",
        "returns",
        "lengths",
        "evaluation_s3_uri",
    )
    done_fields = ("model_s3_uri", "environment", "n_episodes", "metrics", "returns", "lengths")
    model_s3_uri: str | None = None
    algorithm: str | None = None
    environment: str | None = None
    n_episodes: int | None = None
    random_state: int | None = None
    success_threshold: float | None = None
    metrics: dict[str, float | None] | None = Field(
        None, description="episode_return_mean, episode_return_std, episode_length_mean, success_rate"
    )
    returns: list[float] | None = None
    lengths: list[int] | None = None
    evaluation_s3_uri: str | None = None
