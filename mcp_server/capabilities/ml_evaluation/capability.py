"""The ml_evaluation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.ml_evaluation import schemas as s
from mcp_server.capabilities.ml_evaluation.tools.compare import compare_models
from mcp_server.capabilities.ml_evaluation.tools.evaluate import (
    evaluate_classifier,
    evaluate_clustering,
    evaluate_regressor,
)
from mcp_server.capabilities.ml_evaluation.tools.load import load_model
from mcp_server.capabilities.ml_evaluation.tools.report import generate_report
from mcp_server.capabilities.ml_evaluation.tools.visualize import visualization

_SAVED = " Saved as evaluation_s3_uri."
_PREPROCESSING = " Raw test columns go through the bundle's preprocessing."


class MLEvaluationCapability(BaseCapability):
    name = "ml_evaluation"
    description = "Evaluate and compare models; plots and reports."

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="load_model",
                title="Load model",
                description=("Read a model bundle (sha256 verified, never pickle) and describe it."),
                input_model=s.LoadModelInput,
                output_model=s.LoadModelOutput,
                fn=load_model,
                read_only=True,
                destructive=False,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="evaluate_classifier",
                title="Evaluate classifier",
                description=(
                    "Score a classifier: accuracy, precision, recall, f1, roc_auc, log_loss, confusion matrix, "
                    "per class; thresholds give passed." + _PREPROCESSING + _SAVED
                ),
                input_model=s.EvaluateClassifierInput,
                output_model=s.EvaluateClassifierOutput,
                fn=evaluate_classifier,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="evaluate_regressor",
                title="Evaluate regressor",
                description=(
                    "Score a regressor: mae, mse, rmse, r2, mape; thresholds give passed." + _PREPROCESSING + _SAVED
                ),
                input_model=s.EvaluateRegressorInput,
                output_model=s.EvaluateRegressorOutput,
                fn=evaluate_regressor,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="evaluate_clustering",
                title="Evaluate clustering",
                description=(
                    "Assign test points to clusters (DBSCAN: nearest core sample, else noise) and score: "
                    "silhouette, davies_bouldin, calinski_harabasz, ari/nmi with labels." + _SAVED
                ),
                input_model=s.EvaluateClusteringInput,
                output_model=s.EvaluateClusteringOutput,
                fn=evaluate_clustering,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="compare_models",
                title="Compare models",
                description=(
                    "Rank 2-20 models of one task on the same test data by metric, with bootstrap intervals "
                    "and McNemar's test between the top two classifiers."
                ),
                input_model=s.CompareModelsInput,
                output_model=s.CompareModelsOutput,
                fn=compare_models,
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
            ToolSpec(
                name="generate_report",
                title="Generate report",
                description=(
                    "Write a model report (metrics, verdict, plots, lineage): self-contained HTML, or Markdown "
                    "with PNGs beside it."
                ),
                input_model=s.GenerateReportInput,
                output_model=s.GenerateReportOutput,
                fn=generate_report,
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="visualization",
                title="Plot model",
                description=("Draw one plot as PNG, returned and saved."),
                input_model=s.VisualizationInput,
                output_model=s.VisualizationOutput,
                fn=visualization,
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
        ]
