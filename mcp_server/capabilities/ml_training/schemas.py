"""Pydantic input and output models of the ml_training tools.

Each algorithm's `hyperparameters` is its own model with names, ranges and defaults, and unknown
names are refused, so a typo (`n_estimator`) is an error rather than a silently ignored setting.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mcp_server.capabilities.base import JobInput, JobOutput, JobProgress, ToolInput, ToolResultModel
from mcp_server.common.jobs import JobStatus

SupervisedTask = Literal["classification", "regression"]
LayerUnits = Annotated[int, Field(ge=1, le=4096)]
HISTORY_NOTE = "at most 50 evenly spaced entries (first, best and last included); the full series at history_s3_uri"


def _seed() -> Any:
    return Field(default=None, ge=0, le=2**32 - 1, description="seed; default: fresh, returned")


class Hyperparameters(BaseModel):
    """Base of the per-algorithm hyperparameter models: unknown names are refused."""

    model_config = ConfigDict(extra="forbid")


class RandomForestHyperparameters(Hyperparameters):
    n_estimators: int = Field(default=100, ge=1, le=5000, description="number of trees")
    max_depth: int | None = Field(default=None, ge=1, le=1000, description="null: unlimited")
    min_samples_split: int = Field(default=2, ge=2, le=100_000)
    min_samples_leaf: int = Field(default=1, ge=1, le=100_000)
    max_features: Literal["sqrt", "log2"] | float | None = Field(
        default="sqrt",
        description="per split: sqrt, log2, a fraction, null: all",
    )
    bootstrap: bool = True
    max_samples: float | None = Field(default=None, gt=0, le=1, description="rows per tree (fraction)")
    criterion: (
        Literal["gini", "entropy", "log_loss", "squared_error", "absolute_error", "friedman_mse", "poisson"] | None
    ) = Field(default=None, description="default gini or squared_error")
    class_weight: Literal["balanced", "balanced_subsample"] | None = Field(default=None)
    n_jobs: int = Field(default=-1, ge=-1, le=64, description="-1: all CPUs")

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
    scale_pos_weight: float = Field(default=1.0, gt=0, description="positive class weight")
    early_stopping_rounds: int | None = Field(
        default=10,
        ge=1,
        le=10_000,
        description="needs validation data",
    )
    n_jobs: int | None = Field(default=None, ge=1, le=64, description="default: all CPUs")


class NeuralNetworkHyperparameters(Hyperparameters):
    hidden_layers: list[LayerUnits] = Field(
        default=[64, 32], min_length=1, max_length=10, description="units per layer"
    )
    epochs: int = Field(default=50, ge=1, le=10_000)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    learning_rate: float = Field(default=1e-3, gt=0, le=1)
    early_stopping_patience: int | None = Field(
        default=10,
        ge=1,
        le=1000,
        description="needs validation data",
    )


class KMeansHyperparameters(Hyperparameters):
    init: Literal["k-means++", "random"] = "k-means++"
    n_init: int = Field(default=10, ge=1, le=100, description="seeded runs, best kept")
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
    learning_rate: Literal["auto"] | float = Field(default="auto", description="'auto' or 10-1000")
    max_iter: int = Field(default=1000, ge=300, le=10_000)
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
class SupervisedInput(JobInput):
    train_data_s3_uri: str = Field(description="training data")
    target_column: str = Field(min_length=1, description="the label column")
    model_output_s3_uri: str = Field(description="bundle folder to write")
    task_type: SupervisedTask | None = Field(
        default=None,
        description="default: from lineage or the target",
    )
    validation_data_s3_uri: str | None = Field(default=None, description="for validation metrics, early stopping")
    validation_fraction: float | None = Field(default=None, gt=0, le=0.5, description="or hold out this fraction")
    feature_columns: list[str] | None = Field(default=None, min_length=1, description="default: all but the target")
    random_state: int | None = _seed()


class TrainRandomForestInput(SupervisedInput):
    hyperparameters: RandomForestHyperparameters | None = Field(default=None, description="settings")


class BackendInput(ToolInput):
    """The options of trainers that can also train off the server's machine (TOOLS.md section 8):
    `backend` itself is declared by each trainer (which backends it has)."""

    num_workers: int | None = Field(default=None, ge=1, le=256, description="ray: train workers (default 2)")
    resources_per_worker: dict[str, float] | None = Field(default=None, description='ray: e.g. {"CPU": 1}')

    @model_validator(mode="after")
    def _options_match_backend(self) -> BackendInput:
        backend = getattr(self, "backend", "local")
        for name, owner in _BACKEND_OPTIONS:
            if getattr(self, name, None) is not None and backend != owner:
                raise ValueError(f"{name} applies to backend {owner!r} only: set backend to {owner!r} or drop {name}")
        return self


_BACKEND_OPTIONS = (
    ("num_workers", "ray"),
    ("resources_per_worker", "ray"),
    ("instance_type", "sagemaker"),
    ("instance_count", "sagemaker"),
)


class TrainXGBoostInput(SupervisedInput, BackendInput):
    hyperparameters: XGBoostHyperparameters | None = Field(default=None, description="settings")
    backend: Literal["local", "ray", "sagemaker"] = Field(default="local", description="where it trains")
    instance_type: str | None = Field(default=None, max_length=64, description="sagemaker")
    instance_count: int | None = Field(default=None, ge=1, le=100, description="sagemaker; default 1")


class TrainNeuralNetworkInput(SupervisedInput, BackendInput):
    backend: Literal["local", "ray"] = Field(default="local", description="where it trains")
    framework: Literal["pytorch", "tensorflow"] = Field(default="pytorch", description="the library")
    hidden_layers: list[LayerUnits] | None = Field(
        default=None, min_length=1, max_length=10, description="default [64, 32]"
    )
    epochs: int | None = Field(default=None, ge=1, le=10_000, description="default 50")
    batch_size: int | None = Field(default=None, ge=1, le=65_536, description="default 32")
    learning_rate: float | None = Field(default=None, gt=0, le=1, description="default 0.001")
    hyperparameters: NeuralNetworkHyperparameters | None = Field(default=None, description="the same as a group")


class UnsupervisedInput(JobInput):
    train_data_s3_uri: str = Field(description="data to fit")
    model_output_s3_uri: str = Field(description="bundle folder to write")
    columns: list[str] | None = Field(default=None, min_length=1, description="default: all but label_column")
    label_column: str | None = Field(default=None, description="true labels: not fitted, scored (ari/nmi)")


class TrainKMeansInput(UnsupervisedInput):
    n_clusters: int | None = Field(default=None, ge=2, le=1000, description="default: best silhouette")
    min_clusters: int = Field(default=2, ge=2, le=1000, description="smallest k tried")
    max_clusters: int = Field(default=10, ge=2, le=1000, description="largest k tried")
    random_state: int | None = _seed()
    hyperparameters: KMeansHyperparameters | None = Field(default=None, description="settings")


class TrainDBSCANInput(UnsupervisedInput):
    eps: float = Field(default=0.5, gt=0, description="radius")
    min_samples: int = Field(default=5, ge=1, le=100_000, description="neighbours of a core point")
    hyperparameters: DBSCANHyperparameters | None = Field(default=None, description="settings")


class TrainPCAInput(UnsupervisedInput):
    n_components: int | float = Field(
        default=0.95,
        gt=0,
        description="a count, or a variance ratio to keep",
    )
    transformed_output_s3_uri: str | None = Field(default=None, description="default: <model>-transformed.parquet")
    random_state: int | None = _seed()
    hyperparameters: PCAHyperparameters | None = Field(default=None, description="settings")


class TrainTSNEInput(UnsupervisedInput):
    n_components: int = Field(default=2, ge=1, le=3, description="dimensions")
    perplexity: float = Field(default=30.0, gt=1, le=500, description="below the row count")
    max_rows: int = Field(
        default=10_000,
        ge=10,
        le=100_000,
        description="larger inputs are sampled or refused",
    )
    sample_if_larger: bool = Field(default=True, description="false: refuse")
    embedding_output_s3_uri: str | None = Field(default=None, description="default: <model>-embedding.parquet")
    random_state: int | None = _seed()
    hyperparameters: TSNEHyperparameters | None = Field(default=None, description="settings")


class GetTrainingMetricsInput(ToolInput):
    job_id: str | None = Field(default=None, description="from a job tool")
    model_s3_uri: str | None = Field(default=None, description="or a model bundle")

    @model_validator(mode="after")
    def _one(self) -> GetTrainingMetricsInput:
        if bool(self.job_id) == bool(self.model_s3_uri):
            raise ValueError("pass exactly one of job_id or model_s3_uri")
        return self


class CancelTrainingJobInput(ToolInput):
    job_id: str = Field(description="from a job tool")
    wait_seconds: float = Field(default=10.0, ge=0, le=60, description="wait this long for it to stop")


class SaveModelInput(ToolInput):
    model_s3_uri: str = Field(description="the bundle")
    output_s3_uri: str = Field(description="native: a folder; onnx: a .onnx file")
    format: Literal["native", "onnx"] = Field(default="native", description="the format")


# --------------------------------------------------------------------------- outputs
TRAINING_KEYS: tuple[str, ...] = ("job_id", "status", "model_s3_uri", "metrics")


class TrainingOutput(JobOutput):
    """Every trainer's result: the job, and (once it succeeded) the model and its scores."""

    key_outputs = TRAINING_KEYS

    model_output_s3_uri: str | None = None
    model_s3_uri: str | None = None
    algorithm: str | None = None
    metrics: dict[str, dict[str, float | None]] | None = None
    history: list[dict[str, Any]] | None = Field(default=None, description=HISTORY_NOTE)
    history_total: int | None = None
    history_s3_uri: str | None = None
    training_seconds: float | None = None
    timings: dict[str, float] | None = Field(default=None, description="seconds per phase (load, fit, score, write)")
    random_state: int | None = None
    n_train_rows: int | None = None
    warnings: list[str] = Field(default_factory=list)


class SupervisedOutput(TrainingOutput):
    key_outputs = (*TRAINING_KEYS, "feature_importance")
    task_type: SupervisedTask | None = None
    classes: list[Any] | None = None
    n_validation_rows: int | None = None
    feature_importance: dict[str, float] | None = None


class TrainRandomForestOutput(SupervisedOutput):
    pass


class TrainXGBoostOutput(SupervisedOutput):
    key_outputs = (*TRAINING_KEYS, "feature_importance", "best_iteration")
    best_iteration: int | None = Field(default=None, description="the kept round when early stopping ran")
    sagemaker: dict[str, Any] | None = Field(default=None, description="backend sagemaker: the training job")


class TrainNeuralNetworkOutput(SupervisedOutput):
    key_outputs = (*TRAINING_KEYS, "history", "best_epoch")
    framework: str | None = None
    epochs_run: int | None = None
    best_epoch: int | None = None


class TrainKMeansOutput(TrainingOutput):
    key_outputs = (*TRAINING_KEYS, "cluster_sizes")
    n_clusters: int | None = None
    cluster_sizes: list[int] | None = None


class TrainDBSCANOutput(TrainingOutput):
    key_outputs = (*TRAINING_KEYS, "n_clusters", "n_noise")
    n_clusters: int | None = None
    n_noise: int | None = None
    cluster_sizes: list[int] | None = None


class TrainPCAOutput(TrainingOutput):
    key_outputs = (*TRAINING_KEYS, "explained_variance_ratio", "transformed_s3_uri")
    n_components: int | None = None
    explained_variance_ratio: list[float] | None = None
    cumulative_variance_ratio: float | None = None
    transformed_s3_uri: str | None = None


class TrainTSNEOutput(TrainingOutput):
    key_outputs = (*TRAINING_KEYS, "embedding_s3_uri")
    embedding_s3_uri: str | None = None
    n_rows_embedded: int | None = None
    sampled: bool | None = None


class GetTrainingMetricsOutput(ToolResultModel):
    key_outputs = ("status", "progress", "metrics", "history", "history_total", "history_s3_uri", "error", "result")
    status: JobStatus
    job_id: str | None = None
    tool: str | None = None
    progress: JobProgress | None = None
    queue_position: int | None = None
    model_s3_uri: str | None = None
    metrics: dict[str, Any] | None = None
    history: list[dict[str, Any]] = Field(default_factory=list, description=HISTORY_NOTE)
    history_total: int = 0
    history_s3_uri: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = Field(default=None, description="the job's full output once it succeeded")
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class CancelTrainingJobOutput(ToolResultModel):
    key_outputs = ("status", "message")
    job_id: str
    status: JobStatus = Field(description="cancelled once the job has stopped")
    message: str


class SaveModelOutput(ToolResultModel):
    key_outputs = ("output_s3_uri", "sha256")
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


# --------------------------------------------------------------------------- reinforcement learning
RLActivation = Literal["tanh", "relu"]


class RLStop(BaseModel):
    """When to stop training: the first limit reached wins (`stopped_by` says which)."""

    model_config = ConfigDict(extra="forbid")

    target_return: float | None = Field(default=None, description="stop once the mean episode return reaches this")
    max_iterations: int | None = Field(default=None, ge=1, le=1_000_000)
    max_timesteps: int | None = Field(default=None, ge=1, le=100_000_000, description="environment steps")
    max_seconds: float | None = Field(default=None, gt=0, le=86_400)


class RLHyperparameters(Hyperparameters):
    gamma: float = Field(default=0.99, gt=0, le=1, description="discount factor")
    hidden_layers: list[LayerUnits] = Field(default=[32], min_length=1, max_length=8, description="units per layer")
    activation: RLActivation = "tanh"
    grad_clip: float | None = Field(default=40.0, gt=0, description="global gradient-norm clip; null: none")


class PPOHyperparameters(RLHyperparameters):
    learning_rate: float = Field(default=3e-4, gt=0, le=1)
    train_batch_size: int = Field(default=2000, ge=32, le=1_000_000, description="env steps per iteration")
    batch_size: int = Field(default=128, ge=8, le=65_536, description="SGD minibatch")
    num_epochs: int = Field(default=6, ge=1, le=100, description="passes over each iteration's batch")
    vf_loss_coeff: float = Field(default=0.01, ge=0, le=100)
    entropy_coeff: float = Field(default=0.0, ge=0, le=1)
    clip_param: float = Field(default=0.2, gt=0, le=1)
    gae_lambda: float = Field(default=0.95, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> PPOHyperparameters:
        if self.batch_size > self.train_batch_size:
            raise ValueError("batch_size (the SGD minibatch) must not exceed train_batch_size")
        return self


class DQNHyperparameters(RLHyperparameters):
    # RLlib's tuned CartPole sizes: smaller networks learn far less steadily.
    hidden_layers: list[LayerUnits] = Field(default=[256], min_length=1, max_length=8, description="units per layer")
    head_hidden_layers: list[LayerUnits] = Field(
        default=[256], max_length=4, description="hidden layers of the Q (advantage and value) heads"
    )
    learning_rate: float = Field(default=5e-4, gt=0, le=1)
    train_batch_size: int = Field(default=1000, ge=1, le=1_000_000, description="env steps per iteration")
    batch_size: int = Field(default=32, ge=8, le=65_536, description="SGD minibatch drawn from the replay buffer")
    replay_buffer_capacity: int = Field(default=50_000, ge=100, le=10_000_000)
    prioritized_replay: bool = True
    learning_starts: int = Field(default=1000, ge=0, le=10_000_000, description="env steps before learning starts")
    epsilon_start: float = Field(default=1.0, ge=0, le=1)
    epsilon_end: float = Field(default=0.02, ge=0, le=1)
    epsilon_timesteps: int = Field(default=10_000, ge=1, le=100_000_000, description="steps of the linear decay")
    target_network_update_freq: int = Field(default=500, ge=1, le=10_000_000, description="in env steps")
    n_step: int = Field(default=3, ge=1, le=100)
    double_q: bool = True
    dueling: bool = True
    rollout_fragment_length: int = Field(default=4, ge=1, le=1000, description="env steps sampled per gradient step")


class A3CHyperparameters(RLHyperparameters):
    hidden_layers: list[LayerUnits] = Field(default=[64], min_length=1, max_length=8, description="units per layer")
    learning_rate: float = Field(default=2e-3, gt=0, le=1, description="Adam step size of the parameter holder")
    n_step: int = Field(default=32, ge=1, le=10_000, description="rollout length of each gradient")
    vf_loss_coeff: float = Field(default=0.5, ge=0, le=100)
    entropy_coeff: float = Field(default=0.01, ge=0, le=1)
    train_batch_size: int = Field(
        default=2000, ge=32, le=1_000_000, description="env steps (all workers) per reported iteration"
    )


class RLTrainInput(JobInput):
    environment: str | None = Field(
        default=None, description="a Gymnasium id (CartPole-v1, Acrobot-v1, MountainCar-v0, Pendulum-v1, ...)"
    )
    env_spec_s3_uri: str | None = Field(default=None, description="or an env spec written by preprocess_reinforcement")
    model_output_s3_uri: str = Field(description="folder where the policy bundle is written")
    stop: RLStop | None = Field(
        default=None,
        description="limits; default: the env's reward threshold, 200k timesteps or 600 s, whichever comes first",
    )
    random_state: int | None = _seed()


class TrainPPOInput(RLTrainInput):
    hyperparameters: PPOHyperparameters | None = Field(default=None, description="PPO settings")
    num_workers: int = Field(default=1, ge=0, le=32, description="RLlib env runners (0: sample in the driver)")
    resume_from: str | None = Field(default=None, description="a PPO bundle to continue from (its settings are reused)")


class TrainDQNInput(RLTrainInput):
    hyperparameters: DQNHyperparameters | None = Field(default=None, description="DQN settings")
    num_workers: int = Field(default=1, ge=0, le=32, description="RLlib env runners (0: sample in the driver)")
    resume_from: str | None = Field(default=None, description="a DQN bundle to continue from (its settings are reused)")


class TrainA3CInput(RLTrainInput):
    hyperparameters: A3CHyperparameters | None = Field(default=None, description="A3C settings")
    num_workers: int = Field(default=2, ge=1, le=32, description="asynchronous worker actors")
    resume_from: str | None = Field(default=None, description="an A3C bundle to continue from")


class AsyncStats(BaseModel):
    workers: int
    updates: int
    updates_per_worker: list[int]
    mean_staleness: float
    max_staleness: int


class RLTrainingOutput(TrainingOutput):
    metrics: dict[str, float | None] | None = None  # type: ignore[assignment]
    stopped_by: Literal["target_return", "max_iterations", "max_timesteps", "max_seconds"] | None = None
    environment: str | None = None
    history_total: int | None = Field(default=None, description="iterations recorded (history shows at most 50)")
    ray_address: str | None = Field(default=None, description="the Ray cluster that ran it (GCS address)")


class TrainPPOOutput(RLTrainingOutput):
    pass


class TrainDQNOutput(RLTrainingOutput):
    pass


class TrainA3COutput(RLTrainingOutput):
    async_stats: AsyncStats | None = None


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
