"""The ml_training capability: its tool table, nothing else."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mcp_server.capabilities.base import BaseCapability, ToolInput, ToolSpec
from mcp_server.capabilities.ml_training import schemas as s
from mcp_server.capabilities.ml_training.tools.export import save_model
from mcp_server.capabilities.ml_training.tools.jobs import cancel_training_job, get_training_metrics
from mcp_server.capabilities.ml_training.tools.neural import train_neural_network
from mcp_server.capabilities.ml_training.tools.supervised import train_random_forest, train_xgboost
from mcp_server.capabilities.ml_training.tools.unsupervised import train_dbscan, train_kmeans, train_pca, train_tsne

_JOB_NOTE = (
    " Runs as a job: progress is reported per {unit}; when it outlives max_wait_seconds (default 50) "
    "the call returns job_id with status running (poll get_training_metrics); wait=false returns at once."
)
_SUPERVISED = (
    " Takes processed data (its preprocessing pipeline is bundled) or raw numeric data; validation "
    "comes from validation_data_s3_uri or validation_fraction."
)


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
        destructive=False,
        idempotent=True,  # with random_state, the same call writes the same model again
        open_world=False,
    )


class MLTrainingCapability(BaseCapability):
    name = "ml_training"
    description = "Train supervised, unsupervised and reinforcement-learning models as jobs."
    resources_module = "mcp_server.capabilities.ml_training.resources"

    def tool_specs(self) -> list[ToolSpec]:
        from mcp_server.capabilities.ml_training.tools.pipeline import get_pipeline_run, run_pipeline

        return [
            _trainer(
                "train_random_forest",
                "Train a random forest",
                "Train a scikit-learn random forest (classification or regression) and write a model bundle "
                "(skops) with train/validation metrics and feature importance." + _SUPERVISED,
                "batch of trees",
                s.TrainRandomForestInput,
                s.TrainRandomForestOutput,
                train_random_forest,
            ),
            _trainer(
                "train_xgboost",
                "Train XGBoost",
                "Train gradient-boosted trees with XGBoost (classification or regression; hist by default) and write "
                "a model bundle (UBJSON). With validation data, early stopping keeps the best round "
                "(best_iteration)." + _SUPERVISED,
                "boosting round",
                s.TrainXGBoostInput,
                s.TrainXGBoostOutput,
                train_xgboost,
            ),
            _trainer(
                "train_neural_network",
                "Train a neural network",
                "Train a multilayer perceptron (classification or regression) with framework pytorch (torch, saved "
                "as safetensors) or tensorflow (Keras 3, saved as .keras); returns per-epoch history. With "
                "validation data, early stopping restores the best epoch. Features must have no missing values."
                + _SUPERVISED,
                "epoch",
                s.TrainNeuralNetworkInput,
                s.TrainNeuralNetworkOutput,
                train_neural_network,
            ),
            _trainer(
                "train_kmeans",
                "Train k-means",
                "Cluster numeric data with k-means. Give n_clusters, or let it be chosen by silhouette among "
                "min_clusters..max_clusters (2..10). label_column (optional) is left out of fitting and scored "
                "with ari/nmi. Returns inertia, silhouette and cluster sizes.",
                "candidate k",
                s.TrainKMeansInput,
                s.TrainKMeansOutput,
                train_kmeans,
            ),
            _trainer(
                "train_dbscan",
                "Train DBSCAN",
                "Cluster numeric data with DBSCAN (eps default 0.5, min_samples default 5); returns the number "
                f"of clusters and noise points. Scale the features first. At most {200_000} rows.",
                "step",
                s.TrainDBSCANInput,
                s.TrainDBSCANOutput,
                train_dbscan,
            ),
            _trainer(
                "train_pca",
                "Train PCA",
                "Fit PCA with n_components as a count or a variance ratio to keep (default 0.95); writes the "
                "transformed data (pc1..pcN plus the unused columns) and returns explained_variance_ratio.",
                "step",
                s.TrainPCAInput,
                s.TrainPCAOutput,
                train_pca,
            ),
            _trainer(
                "train_tsne",
                "Train t-SNE",
                "Embed data in 2 (or 1, 3) dimensions with t-SNE and write the embedding; returns kl_divergence. "
                "Inputs over max_rows (default 10000) are sampled (sample_if_larger, the default) or refused.",
                "step",
                s.TrainTSNEInput,
                s.TrainTSNEOutput,
                train_tsne,
            ),
            ToolSpec(
                name="get_training_metrics",
                title="Get training metrics",
                description=(
                    "Status (queued, running, succeeded, failed, cancelled), progress, metrics and per-iteration "
                    "history of a training job (job_id), or the recorded metrics of a model bundle (model_s3_uri, "
                    "integrity-checked). Jobs from a server that restarted show as failed."
                ),
                input_model=s.GetTrainingMetricsInput,
                output_model=s.GetTrainingMetricsOutput,
                fn=get_training_metrics,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="cancel_training_job",
                title="Cancel a training job",
                description=(
                    "Stop a queued or running training job of this server (e.g. one started with wait=false); "
                    "it publishes no model. Waits up to wait_seconds (default 10) for it to stop."
                ),
                input_model=s.CancelTrainingJobInput,
                output_model=s.CancelTrainingJobOutput,
                fn=cancel_training_job,
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="save_model",
                title="Save or export a model",
                description=(
                    "Copy a model bundle to output_s3_uri after verifying its hashes (format native), or export it "
                    "to a .onnx file (format onnx: scikit-learn and XGBoost models; the ONNX model takes the "
                    "processed feature columns as float32)."
                ),
                input_model=s.SaveModelInput,
                output_model=s.SaveModelOutput,
                fn=save_model,
                read_only=False,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="run_pipeline",
                title="Run the training pipeline",
                description=(
                    "Train, judge, register and announce a model from a training config (or a GitHub issue's: "
                    "repository + issue_number): load, validate, preprocess, split, train (retried with adjusted "
                    "hyperparameters up to max_retries, default 2), evaluate, judge against thresholds (default: "
                    "accuracy>=0.85 and f1>=0.80, r2>=0.80, silhouette>=0.50, or the environment's reward "
                    "threshold), then on a pass register and promote the best model; notify the config's channels "
                    "and comment and label the issue. A job: run_id is a job_id; wait=false returns at once; "
                    "dry_run plans only. The same issue and config again returns the earlier run."
                ),
                input_model=s.RunPipelineInput,
                output_model=s.RunPipelineOutput,
                fn=run_pipeline,
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
                fn=get_pipeline_run,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
        ]
