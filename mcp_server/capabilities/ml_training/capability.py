"""The ml_training capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.ml_training import schemas as s
from mcp_server.capabilities.ml_training.tools.common import Backend, Trainer

# Tool functions are named, not imported: their modules (pandas, scikit-learn, ...) load on
# the first call, so listing tools stays fast.
_TOOLS = "mcp_server.capabilities.ml_training.tools"
_BACKENDS = "mcp_server.capabilities.ml_training.backends"  # backend: ray / sagemaker (TOOLS.md section 8)
_RL = "mcp_server.capabilities.ml_training.rl"
# What an RL fit imports (seconds of work): a spare worker started after an RL job imports it ahead.
_RLLIB = ("torch", "ray", "ray.rllib.algorithms.ppo", "ray.rllib.algorithms.dqn", f"{_RL}.rllib")
RL_PRELOAD = {"ppo": _RLLIB, "dqn": _RLLIB, "a3c": ("torch", "ray", f"{_RL}.a3c")}


# The trainers: one row each (every fit runs in a worker process; see tools/common.py).
TRAINERS: tuple[Trainer, ...] = (
    Trainer(
        "train_random_forest",
        "Train a random forest",
        "Train a random forest (scikit-learn) into a model bundle with metrics and feature importance.",
        "batch of trees",
        s.TrainRandomForestInput,
        s.TrainRandomForestOutput,
        fit=f"{_TOOLS}.supervised:fit_random_forest",
    ),
    Trainer(
        "train_xgboost",
        "Train XGBoost",
        "Train XGBoost into a model bundle; with validation data, early stopping keeps the best round.",
        "boosting round",
        s.TrainXGBoostInput,
        s.TrainXGBoostOutput,
        fit=f"{_TOOLS}.supervised:fit_xgboost",
        backends=(
            Backend("ray", f"{_BACKENDS}.ray_train:fit_xgboost", f"{_BACKENDS}.ray_train:prepare"),
            Backend("sagemaker", f"{_BACKENDS}.sagemaker:fit_xgboost", f"{_BACKENDS}.sagemaker:prepare", False, True),
        ),
    ),
    Trainer(
        "train_neural_network",
        "Train a neural network",
        "Train an MLP (pytorch or tensorflow) into a model bundle; with validation data, early "
        "stopping restores the best epoch. No missing values.",
        "epoch",
        s.TrainNeuralNetworkInput,
        s.TrainNeuralNetworkOutput,
        fit=f"{_TOOLS}.neural:fit_neural_network",
        prepare=f"{_TOOLS}.neural:prepare_neural_network",
        backends=(Backend("ray", f"{_BACKENDS}.ray_train:fit_neural_network", f"{_BACKENDS}.ray_train:prepare"),),
    ),
    Trainer(
        "train_kmeans",
        "Train k-means",
        "Cluster numeric data with k-means (n_clusters, or the best silhouette in min_clusters..max_clusters).",
        "candidate k",
        s.TrainKMeansInput,
        s.TrainKMeansOutput,
        fit=f"{_TOOLS}.unsupervised:fit_kmeans",
        prepare=f"{_TOOLS}.unsupervised:prepare_kmeans",
    ),
    Trainer(
        "train_dbscan",
        "Train DBSCAN",
        f"Cluster scaled numeric data with DBSCAN (at most {200_000} rows).",
        "step",
        s.TrainDBSCANInput,
        s.TrainDBSCANOutput,
        fit=f"{_TOOLS}.unsupervised:fit_dbscan",
    ),
    Trainer(
        "train_pca",
        "Train PCA",
        "Fit PCA and write the transformed data (pc1..pcN plus unused columns).",
        "step",
        s.TrainPCAInput,
        s.TrainPCAOutput,
        fit=f"{_TOOLS}.unsupervised:fit_pca",
        prepare=f"{_TOOLS}.unsupervised:prepare_pca",
    ),
    Trainer(
        "train_tsne",
        "Train t-SNE",
        "Embed data with t-SNE and write the embedding (metrics: kl_divergence).",
        "step",
        s.TrainTSNEInput,
        s.TrainTSNEOutput,
        fit=f"{_TOOLS}.unsupervised:fit_tsne",
        prepare=f"{_TOOLS}.unsupervised:prepare_tsne",
    ),
    *(
        Trainer(
            f"train_{algorithm}",
            f"Train {algorithm.upper()}",
            text,  # environments, stop rules and the policy format: said once, in the server instructions
            "iteration",
            input_model,
            output_model,
            fit=f"{_TOOLS}.reinforcement:fit_rl",
            prepare=f"{_TOOLS}.reinforcement:prepare_{algorithm}",
            # The server starts (or joins) its one Ray; the driver runs in the job's worker process
            # and connects to it, and Ray's own workers run the env runners and A3C actors.
            setup=f"{_TOOLS}.reinforcement:connect_ray",
            preload=RL_PRELOAD[algorithm],
        )
        for algorithm, text, input_model, output_model in (
            (
                "ppo",
                "Train a PPO policy with RLlib on Ray (discrete or continuous actions); defaults solve CartPole-v1. "
                "resume_from continues a PPO bundle.",
                s.TrainPPOInput,
                s.TrainPPOOutput,
            ),
            (
                "dqn",
                "Train a DQN policy with RLlib on Ray (double, dueling, n-step, prioritized replay; discrete "
                "actions only). resume_from continues a DQN bundle.",
                s.TrainDQNInput,
                s.TrainDQNOutput,
            ),
            (
                "a3c",
                "Train with asynchronous advantage actor-critic: num_workers Ray actors (default 2) send n-step "
                "gradients to a parameter holder that applies each as it comes, no barrier; async_stats shows "
                "updates and staleness. Discrete actions only.",
                s.TrainA3CInput,
                s.TrainA3COutput,
            ),
        )
    ),
)


class MLTrainingCapability(BaseCapability):
    name = "ml_training"
    description = "Train supervised, unsupervised and reinforcement-learning models as jobs."
    resources_module = "mcp_server.capabilities.ml_training.resources"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            *(trainer.tool_spec() for trainer in TRAINERS),
            ToolSpec(
                name="get_training_metrics",
                title="Get training metrics",
                description=(
                    "Status, progress, metrics, history and result of a training, evaluation or pipeline job "
                    "(job_id) or of a model bundle. A job whose server restarted reads as failed."
                ),
                input_model=s.GetTrainingMetricsInput,
                output_model=s.GetTrainingMetricsOutput,
                fn=f"{_TOOLS}.jobs:get_training_metrics",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="cancel_training_job",
                title="Cancel a training job",
                description=("Stop a queued or running job of this server; it publishes nothing."),
                input_model=s.CancelTrainingJobInput,
                output_model=s.CancelTrainingJobOutput,
                fn=f"{_TOOLS}.jobs:cancel_training_job",
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="save_model",
                title="Save or export a model",
                description=(
                    "Copy a verified bundle (native) or export scikit-learn/XGBoost to ONNX (float32 processed "
                    "features)."
                ),
                input_model=s.SaveModelInput,
                output_model=s.SaveModelOutput,
                fn=f"{_TOOLS}.export:save_model",
                read_only=False,
                destructive=True,  # overwrites an existing output
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="run_pipeline",
                title="Run the training pipeline",
                description=(
                    "From a training config (or repository + issue_number): load, validate, preprocess, split, "
                    "train (retried up to max_retries), evaluate, judge against thresholds (default accuracy>=0.85 "
                    "and f1>=0.80, r2>=0.80, silhouette>=0.50, or the env's reward threshold); on a pass register, "
                    "promote, notify, comment and label the issue. A job (run_id); dry_run plans only; the same "
                    "issue and config returns the earlier run."
                ),
                input_model=s.RunPipelineInput,
                output_model=s.RunPipelineOutput,
                fn=f"{_TOOLS}.pipeline:run_pipeline",
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=True,
            ),
            ToolSpec(
                name="get_pipeline_run",
                title="Get a pipeline run",
                description="A pipeline run as it stands: status, stages with outputs and attempts, verdict, "
                "registered version (also after a restart).",
                input_model=s.GetPipelineRunInput,
                output_model=s.RunPipelineOutput,
                fn=f"{_TOOLS}.pipeline:get_pipeline_run",
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
