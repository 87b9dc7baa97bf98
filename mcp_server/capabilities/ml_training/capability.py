"""The ml_training capability: its tool table, nothing else."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mcp_server.capabilities.base import BaseCapability, ToolInput, ToolSpec
from mcp_server.capabilities.ml_training import schemas as s

# How jobs behave (wait, max_wait_seconds, job_id, polling) is said once, in the server's instructions.
_JOB_NOTE = " A job; progress per {unit}."
_SUPERVISED = ""  # processed data bringing its pipeline into the bundle is said in the instructions

# Tool functions are named, not imported: their modules (pandas, scikit-learn, ...) load on
# the first call, so listing tools stays fast.
_TOOLS = "mcp_server.capabilities.ml_training.tools"


def _trainer(
    name: str, title: str, text: str, unit: str, input_model: type[ToolInput], output_model: type[BaseModel], fn: Any
) -> ToolSpec:
    return ToolSpec(
        name=name,
        title=title,
        description=text + _JOB_NOTE.format(unit=unit),
        input_model=input_model,
        output_model=output_model,
        fn=fn,
        read_only=False,
        destructive=True,  # overwrites an existing output
        idempotent=True,  # with random_state, the same call writes the same model again
        open_world=False,
    )


class MLTrainingCapability(BaseCapability):
    name = "ml_training"
    description = "Train supervised, unsupervised and reinforcement-learning models as jobs."

    def tool_specs(self) -> list[ToolSpec]:
        return [
            _trainer(
                "train_random_forest",
                "Train a random forest",
                "Train a random forest (scikit-learn) into a model bundle with metrics and feature importance."
                + _SUPERVISED,
                "batch of trees",
                s.TrainRandomForestInput,
                s.TrainRandomForestOutput,
                f"{_TOOLS}.supervised:train_random_forest",
            ),
            _trainer(
                "train_xgboost",
                "Train XGBoost",
                "Train XGBoost into a model bundle; with validation data, early stopping keeps the best round."
                + _SUPERVISED,
                "boosting round",
                s.TrainXGBoostInput,
                s.TrainXGBoostOutput,
                f"{_TOOLS}.supervised:train_xgboost",
            ),
            _trainer(
                "train_neural_network",
                "Train a neural network",
                "Train an MLP (pytorch or tensorflow) into a model bundle; with validation data, early "
                "stopping restores the best epoch. No missing values." + _SUPERVISED,
                "epoch",
                s.TrainNeuralNetworkInput,
                s.TrainNeuralNetworkOutput,
                f"{_TOOLS}.neural:train_neural_network",
            ),
            _trainer(
                "train_kmeans",
                "Train k-means",
                "Cluster numeric data with k-means (n_clusters, or the best silhouette in min_clusters..max_clusters).",
                "candidate k",
                s.TrainKMeansInput,
                s.TrainKMeansOutput,
                f"{_TOOLS}.unsupervised:train_kmeans",
            ),
            _trainer(
                "train_dbscan",
                "Train DBSCAN",
                f"Cluster scaled numeric data with DBSCAN (at most {200_000} rows).",
                "step",
                s.TrainDBSCANInput,
                s.TrainDBSCANOutput,
                f"{_TOOLS}.unsupervised:train_dbscan",
            ),
            _trainer(
                "train_pca",
                "Train PCA",
                "Fit PCA and write the transformed data (pc1..pcN plus unused columns).",
                "step",
                s.TrainPCAInput,
                s.TrainPCAOutput,
                f"{_TOOLS}.unsupervised:train_pca",
            ),
            _trainer(
                "train_tsne",
                "Train t-SNE",
                "Embed data with t-SNE and write the embedding (metrics: kl_divergence).",
                "step",
                s.TrainTSNEInput,
                s.TrainTSNEOutput,
                f"{_TOOLS}.unsupervised:train_tsne",
            ),
            ToolSpec(
                name="get_training_metrics",
                title="Get training metrics",
                description=(
                    "Status, progress, metrics and history of a training job (job_id) or of a model bundle. "
                    "A job whose server restarted reads as failed."
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
                description=("Stop a queued or running job of this server; it publishes no model."),
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
        ]
