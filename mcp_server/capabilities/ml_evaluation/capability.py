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

_SAVED = (
    " The result is saved as <model>/evaluations/<timestamp>-<tool>.json (evaluation_s3_uri) unless "
    "save_result is false."
)
_PREPROCESSING = (
    " Test data may hold raw columns (the bundle's preprocessing is applied) or processed ones; "
    "missing feature columns are an error, extra ones are ignored and listed in warnings."
)


class MLEvaluationCapability(BaseCapability):
    name = "ml_evaluation"
    description = "Evaluate and compare models; plots and reports."
    resources_module = "mcp_server.capabilities.ml_evaluation.resources"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="load_model",
                title="Load model",
                description=(
                    "Read a model bundle (every artifact's sha256 verified; pickle is never loaded) and describe "
                    "it: algorithm, task type, features, target, classes, training metrics, lineage."
                ),
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
                    "Score a classification model on labelled test data: accuracy, precision, recall, f1 "
                    "(binary, or weighted for multiclass; macro and weighted also given), ROC-AUC "
                    "(one-vs-rest for multiclass), log loss, confusion matrix and a per-class report. "
                    "Optional thresholds give passed/failed_metrics." + _PREPROCESSING + _SAVED
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
                    "Score a regression model on test data: MAE, MSE, RMSE, R2 and MAPE (rows with a zero "
                    "target are skipped for MAPE). Thresholds on error metrics are maximums." + _PREPROCESSING + _SAVED
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
                    "Assign test points to the model's clusters (KMeans predict; DBSCAN: nearest core sample "
                    "within eps, else noise) and score them: silhouette, Davies-Bouldin, Calinski-Harabasz, "
                    "plus ARI and NMI with label_column; n_clusters and n_noise." + _SAVED
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
                    "Evaluate 2-20 models of the same task on the same test data and rank them by `metric` "
                    "(default accuracy, rmse or silhouette), with a paired bootstrap confidence interval per "
                    "model (n_bootstrap, default 1000, fixed seed) and McNemar's test between the top two "
                    "classifiers. Returns ranking, best_model_s3_uri and a table of every metric."
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
                    "Write a report of a model (model summary, test metrics, thresholds verdict, plots, "
                    "lineage) to output_s3_uri: self-contained HTML with embedded images, or Markdown with "
                    "PNG files beside it. Reports on model_s3_uri (evaluated on test_data_s3_uri when given) "
                    "or on a saved evaluation (evaluation_s3_uri). Overwrites output_s3_uri."
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
                description=(
                    "Draw one plot as PNG (returned as an image and saved, default <model>/plots/<plot_type>.png): "
                    "confusion_matrix, roc_curve, pr_curve, residuals, clusters (need test_data_s3_uri), "
                    "feature_importance, learning_curve, reward_curve (from the bundle). Overwrites the output."
                ),
                input_model=s.VisualizationInput,
                output_model=s.VisualizationOutput,
                fn=visualization,
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
        ]
