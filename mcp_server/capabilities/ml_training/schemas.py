"""Pydantic input and output models of the ml_training tools.

Each algorithm's `hyperparameters` is its own model with names, ranges and defaults, and unknown
names are refused, so a typo (`n_estimator`) is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_server.capabilities.base import ToolInput, ToolResultModel

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
SupervisedTask = Literal["classification", "regression"]
LayerUnits = Annotated[int, Field(ge=1, le=4096)]


def _seed() -> Any:
    return Field(
        default=None, ge=0, le=2**32 - 1, description="seed for reproducible results; default: a fresh seed, recorded"
    )


def _max_wait() -> Any:
    return Field(
        default=None,
        ge=0,
        le=3600,
        description="wait at most this long before returning the job_id with status running "
        "(default: the server's MLOPS_MAX_WAIT_SECONDS, 50)",
    )


def _wait() -> Any:
    return Field(
        default=True, description="wait for the result (up to max_wait_seconds); false: return the job_id at once"
    )


class Hyperparameters(BaseModel):
    """Base of the per-algorithm hyperparameter models: unknown names are refused."""

    model_config = ConfigDict(extra="forbid")


class RandomForestHyperparameters(Hyperparameters):
    n_estimators: int = Field(default=100, ge=1, le=5000, description="number of trees")
    max_depth: int | None = Field(default=None, ge=1, le=1000, description="maximum tree depth; null: unlimited")
    min_samples_split: int = Field(default=2, ge=2, le=100_000)
    min_samples_leaf: int = Field(default=1, ge=1, le=100_000)
    max_features: Literal["sqrt", "log2"] | float | None = Field(
        default="sqrt",
        description="features tried per split: sqrt, log2, a fraction in (0, 1], or null for all",
    )
    bootstrap: bool = True
    max_samples: float | None = Field(
        default=None, gt=0, le=1, description="fraction of rows drawn per tree (bootstrap)"
    )
    criterion: (
        Literal["gini", "entropy", "log_loss", "squared_error", "absolute_error", "friedman_mse", "poisson"] | None
    ) = Field(default=None, description="split criterion; default gini (classification) or squared_error (regression)")
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(
        default=None, description="classification only"
    )
    n_jobs: int = Field(default=-1, ge=-1, le=64, description="CPU threads; -1: all")

    @model_validator(mode="after")
    def _check(self) -> RandomForestHyperparameters:
        if isinstance(self.max_features, float) and not 0 < self.max_features <= 1:
            raise ValueError("max_features as a number must be a fraction in (0, 1]")
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be -1 (all CPUs) or at least 1")
        return self


class XGBoostHyperparameters(Hyperparameters):
    n_estimators: int = Field(default=100, ge=1, le=10_000, description="boosting rounds")
    max_depth: int = Field(default=6, ge=1, le=64)
    learning_rate: float = Field(default=0.3, gt=0, le=1)
    subsample: float = Field(default=1.0, gt=0, le=1)
    colsample_bytree: float = Field(default=1.0, gt=0, le=1)
    min_child_weight: float = Field(default=1.0, ge=0)
    gamma: float = Field(default=0.0, ge=0)
    reg_alpha: float = Field(default=0.0, ge=0)
    reg_lambda: float = Field(default=1.0, ge=0)
    max_bin: int = Field(default=256, ge=2, le=4096)
    tree_method: Literal["hist", "approx", "exact"] = "hist"
    scale_pos_weight: float = Field(
        default=1.0, gt=0, description="binary classification: weight of the positive class"
    )
    early_stopping_rounds: int | None = Field(
        default=10,
        ge=1,
        le=10_000,
        description="stop when the validation score has not improved for this many rounds (needs validation data)",
    )
    n_jobs: int | None = Field(default=None, ge=1, le=64, description="CPU threads; default: all")


class NeuralNetworkHyperparameters(Hyperparameters):
    hidden_layers: list[LayerUnits] = Field(
        default=[64, 32], min_length=1, max_length=10, description="units per hidden layer"
    )
    epochs: int = Field(default=50, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    early_stopping_patience: int | None = Field(
        default=10,
        ge=1,
        le=1000,
        description="stop after this many epochs without validation improvement (needs validation)",
    )


class KMeansHyperparameters(Hyperparameters):
    init: Literal["k-means++", "random"] = "k-means++"
    n_init: int = Field(default=10, ge=1, le=100, description="runs with different centroid seeds; the best is kept")
    max_iter: int = Field(default=300, ge=1, le=100_000)
    tol: float = Field(default=1e-4, ge=0)
    algorithm: Literal["lloyd", "elkan"] = "lloyd"


class DBSCANHyperparameters(Hyperparameters):
    metric: Literal["euclidean", "manhattan", "chebyshev", "cosine"] = "euclidean"
    algorithm: Literal["auto", "ball_tree", "kd_tree", "brute"] = "auto"
    leaf_size: int = Field(default=30, ge=1, le=10_000)


class PCAHyperparameters(Hyperparameters):
    whiten: bool = False
    svd_solver: Literal["auto", "full", "randomized", "covariance_eigh"] = "auto"


class TSNEHyperparameters(Hyperparameters):
    learning_rate: Literal["auto"] | float = Field(default="auto", description="'auto' or a number in [10, 1000]")
    max_iter: int = Field(default=1000, ge=300, le=10_000, description="at least 300 (250 are exploration)")
    early_exaggeration: float = Field(default=12.0, ge=1, le=100)
    init: Literal["pca", "random"] = "pca"
    metric: Literal["euclidean", "manhattan", "cosine", "chebyshev"] = "euclidean"
    angle: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> TSNEHyperparameters:
        if isinstance(self.learning_rate, float) and not 10 <= self.learning_rate <= 1000:
            raise ValueError("learning_rate must be 'auto' or in [10, 1000]")
        return self


# --------------------------------------------------------------------------- inputs
class JobInput(ToolInput):
    wait: bool = _wait()
    max_wait_seconds: float | None = _max_wait()


class SupervisedInput(JobInput):
    train_data_s3_uri: str = Field(
        description="training data (CSV, Parquet or JSON); processed data brings its pipeline"
    )
    target_column: str = Field(min_length=1, description="the label column")
    model_output_s3_uri: str = Field(description="folder where the model bundle is written")
    task_type: SupervisedTask | None = Field(
        default=None,
        description="classification or regression; default: from the data's lineage or the target's values",
    )
    validation_data_s3_uri: str | None = Field(
        default=None, description="validation data (processed or raw) for validation metrics and early stopping"
    )
    validation_fraction: float | None = Field(
        default=None, gt=0, le=0.5, description="hold out this fraction of the training rows (stratified) instead"
    )
    feature_columns: list[str] | None = Field(
        default=None, min_length=1, description="features to use; default: every column but the target"
    )
    random_state: int | None = _seed()


class TrainRandomForestInput(SupervisedInput):
    hyperparameters: RandomForestHyperparameters | None = Field(default=None, description="random forest settings")


class TrainXGBoostInput(SupervisedInput):
    hyperparameters: XGBoostHyperparameters | None = Field(default=None, description="XGBoost settings")


class TrainNeuralNetworkInput(SupervisedInput):
    framework: Literal["pytorch", "tensorflow"] = Field(
        default="pytorch", description="pytorch (a torch MLP) or tensorflow (a Keras 3 model)"
    )
    hidden_layers: list[LayerUnits] | None = Field(
        default=None, min_length=1, max_length=10, description="default [64, 32]"
    )
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="default 50")
    batch_size: int | None = Field(default=None, ge=1, le=65_536, description="default 32")
    learning_rate: float | None = Field(default=None, gt=0, le=1, description="default 0.001")
    hyperparameters: NeuralNetworkHyperparameters | None = Field(
        default=None, description="the same settings as a group (plus early_stopping_patience)"
    )


class UnsupervisedInput(JobInput):
    train_data_s3_uri: str = Field(description="data to fit (CSV, Parquet or JSON)")
    model_output_s3_uri: str = Field(description="folder where the model bundle is written")
    columns: list[str] | None = Field(
        default=None, min_length=1, description="feature columns; default: every column but label_column"
    )
    label_column: str | None = Field(
        default=None, description="known labels: not used for fitting, only to report ari/nmi (and kept in outputs)"
    )


class TrainKMeansInput(UnsupervisedInput):
    n_clusters: int | None = Field(default=None, ge=2, le=1000, description="default: chosen by silhouette")
    min_clusters: int = Field(default=2, ge=2, le=1000, description="smallest k tried when choosing automatically")
    max_clusters: int = Field(default=10, ge=2, le=1000, description="largest k tried when choosing automatically")
    random_state: int | None = _seed()
    hyperparameters: KMeansHyperparameters | None = Field(default=None, description="k-means settings")


class TrainDBSCANInput(UnsupervisedInput):
    eps: float = Field(default=0.5, gt=0, description="neighbourhood radius")
    min_samples: int = Field(default=5, ge=1, le=100_000, description="points within eps that make a core point")
    hyperparameters: DBSCANHyperparameters | None = Field(default=None, description="DBSCAN settings")


class TrainPCAInput(UnsupervisedInput):
    n_components: int | float = Field(
        default=0.95,
        gt=0,
        description="components to keep: a count (>= 1), or a variance ratio in (0, 1) to keep; default 0.95",
    )
    transformed_output_s3_uri: str | None = Field(
        default=None, description="where the transformed data goes; default: <model folder>-transformed.parquet"
    )
    random_state: int | None = _seed()
    hyperparameters: PCAHyperparameters | None = Field(default=None, description="PCA settings")


class TrainTSNEInput(UnsupervisedInput):
    n_components: int = Field(default=2, ge=1, le=3, description="embedding dimensions")
    perplexity: float = Field(default=30.0, gt=1, le=500, description="must be below the number of rows")
    max_rows: int = Field(
        default=10_000,
        ge=10,
        le=100_000,
        description="t-SNE is slow on more rows: larger inputs are sampled or refused",
    )
    sample_if_larger: bool = Field(
        default=True, description="true: sample max_rows rows from larger inputs; false: refuse"
    )
    embedding_output_s3_uri: str | None = Field(
        default=None, description="where the embedding goes; default: <model folder>-embedding.parquet"
    )
    random_state: int | None = _seed()
    hyperparameters: TSNEHyperparameters | None = Field(default=None, description="t-SNE settings")


class GetTrainingMetricsInput(ToolInput):
    job_id: str | None = Field(default=None, description="a job_id returned by a train_* tool")
    model_s3_uri: str | None = Field(default=None, description="or a model bundle (its recorded metrics and history)")

    @model_validator(mode="after")
    def _one(self) -> GetTrainingMetricsInput:
        if bool(self.job_id) == bool(self.model_s3_uri):
            raise ValueError("pass exactly one of job_id or model_s3_uri")
        return self


class CancelTrainingJobInput(ToolInput):
    job_id: str = Field(description="a job_id returned by a train_* tool")
    wait_seconds: float = Field(default=10.0, ge=0, le=60, description="how long to wait for the job to stop")


class SaveModelInput(ToolInput):
    model_s3_uri: str = Field(description="the model bundle to save")
    output_s3_uri: str = Field(description="native: a folder for the bundle copy; onnx: a .onnx file")
    format: Literal["native", "onnx"] = Field(default="native", description="native (bundle copy) or onnx")


# --------------------------------------------------------------------------- outputs
class JobProgress(BaseModel):
    done: float
    total: float | None = None
    fraction: float | None = None
    message: str | None = None


class TrainingOutput(ToolResultModel):
    """Every trainer's result: the job, and (once it succeeded) the model and its scores."""

    job_id: str
    status: JobStatus
    message: str | None = Field(default=None, description="what to do next when the job is not finished")
    progress: JobProgress | None = None
    queue_position: int | None = None
    model_output_s3_uri: str | None = None
    model_s3_uri: str | None = None
    algorithm: str | None = None
    metrics: dict[str, dict[str, float | None]] | None = None
    history: list[dict[str, Any]] | None = None
    training_seconds: float | None = None
    timings: dict[str, float] | None = Field(default=None, description="seconds per phase (load, fit, score, write)")
    random_state: int | None = None
    n_train_rows: int | None = None
    warnings: list[str] = Field(default_factory=list)


class SupervisedOutput(TrainingOutput):
    task_type: SupervisedTask | None = None
    classes: list[Any] | None = None
    n_validation_rows: int | None = None
    feature_importance: dict[str, float] | None = None


class TrainRandomForestOutput(SupervisedOutput):
    pass


class TrainXGBoostOutput(SupervisedOutput):
    best_iteration: int | None = Field(default=None, description="the kept round when early stopping ran")


class TrainNeuralNetworkOutput(SupervisedOutput):
    framework: str | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None


class TrainKMeansOutput(TrainingOutput):
    n_clusters: int | None = None
    cluster_sizes: list[int] | None = None


class TrainDBSCANOutput(TrainingOutput):
    n_clusters: int | None = None
    n_noise: int | None = None
    cluster_sizes: list[int] | None = None


class TrainPCAOutput(TrainingOutput):
    n_components: int | None = None
    explained_variance_ratio: list[float] | None = None
    cumulative_variance_ratio: float | None = None
    transformed_s3_uri: str | None = None


class TrainTSNEOutput(TrainingOutput):
    embedding_s3_uri: str | None = None
    n_rows_embedded: int | None = None
    sampled: bool | None = None


class GetTrainingMetricsOutput(ToolResultModel):
    status: JobStatus
    job_id: str | None = None
    tool: str | None = None
    progress: JobProgress | None = None
    queue_position: int | None = None
    model_s3_uri: str | None = None
    metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, description="the trainer's full result once it succeeded")
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class CancelTrainingJobOutput(ToolResultModel):
    job_id: str
    status: JobStatus = Field(description="cancelled once the job has stopped")
    message: str


class SaveModelOutput(ToolResultModel):
    output_s3_uri: str
    sha256: str = Field(
        description="native: sha256 of the copied metadata.json (it pins every file); onnx: of the file"
    )
    format: Literal["native", "onnx"]
    family: str
    algorithm: str | None = None
    files: list[str] = Field(default_factory=list)
    input_name: str | None = None
    feature_names: list[str] | None = None
    note: str | None = None


# ----------------------------------------------------------------------------- the pipeline (TOOLS.md section 7)
StageStatus = Literal["planned", "pending", "running", "succeeded", "failed", "skipped", "cancelled"]
RunStatus = Literal["planned", "queued", "running", "succeeded", "failed", "cancelled"]


class RunPipelineInput(JobInput):
    config: dict[str, Any] | None = Field(
        default=None,
        description="the training config parse_issue_config validates (dataset_s3_uri, target_column, task_type, "
        "algorithm(s), hyperparameters, thresholds, model_name, environment, notify, email_to); or give "
        "repository + issue_number to read it from the issue",
    )
    repository: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$", description="owner/name of the issue to report to"
    )
    issue_number: int | None = Field(default=None, ge=1, description="the issue to read the config from and comment on")
    max_retries: int = Field(
        default=2, ge=0, le=5, description="retries with adjusted hyperparameters when no model passes"
    )
    dry_run: bool = Field(default=False, description="validate the config and return the planned stages; run nothing")
    passed_label: str = Field(default="mlops:passed", min_length=1, max_length=50, description="label of a pass")
    failed_label: str = Field(default="mlops:failed", min_length=1, max_length=50, description="label of a failure")

    @model_validator(mode="after")
    def _source(self) -> RunPipelineInput:
        if (self.repository is None) != (self.issue_number is None):
            raise ValueError("give repository and issue_number together")
        if self.config is None and self.repository is None:
            raise ValueError("give config, or repository + issue_number")
        return self


class PipelineStage(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    status: StageStatus
    seconds: float | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class RegisteredVersion(BaseModel):
    model_name: str
    version: int
    status: str


class RunPipelineOutput(ToolResultModel):
    run_id: str | None = Field(description="the run's job id (get_pipeline_run, get_training_metrics); null: dry run")
    status: RunStatus
    stages: list[PipelineStage]
    best_model_s3_uri: str | None = None
    registered: RegisteredVersion | None = None
    passed: bool | None = None
    report_s3_uri: str | None = None
    reused: bool = Field(default=False, description="true: the same issue and config ran before; its run is returned")
    message: str | None = None
    config: dict[str, Any] | None = None
    thresholds: dict[str, float] | None = None
    repository: str | None = None
    issue_number: int | None = None
    idempotency_key: str | None = None
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    created_at: str | None = None
    finished_at: str | None = None
    seconds: float | None = None


class GetPipelineRunInput(ToolInput):
    run_id: str = Field(min_length=1, max_length=96, description="the run_id run_pipeline returned")
