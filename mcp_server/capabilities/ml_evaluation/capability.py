"""The ml_evaluation capability: its tool table, nothing else."""

from __future__ import annotations

from mcp_server.capabilities.base import BaseCapability, ToolSpec
from mcp_server.capabilities.ml_evaluation import schemas as s

_SAVED = " Saved as evaluation_s3_uri."
_PREPROCESSING = " Raw test columns go through the bundle's preprocessing."

# Tool functions are named, not imported: their modules (pandas, scikit-learn, ...) load on
# the first call, so listing tools stays fast.
_TOOLS = "mcp_server.capabilities.ml_evaluation.tools"


class MLEvaluationCapability(BaseCapability):
    name = "ml_evaluation"
    description = "Evaluate and compare models; plots and reports."
    resources_module = "mcp_server.capabilities.ml_evaluation.resources"

    def tool_specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(
                name="load_model",
                title="Load model",
                description=("Read a model bundle (sha256 verified, never pickle) and describe it."),
                input_model=s.LoadModelInput,
                output_model=s.LoadModelOutput,
                fn=f"{_TOOLS}.load:load_model",
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
                fn=f"{_TOOLS}.evaluate:evaluate_classifier",
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
                fn=f"{_TOOLS}.evaluate:evaluate_regressor",
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
                fn=f"{_TOOLS}.evaluate:evaluate_clustering",
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
                fn=f"{_TOOLS}.compare:compare_models",
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
                fn=f"{_TOOLS}.report:generate_report",
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
                fn=f"{_TOOLS}.visualize:visualization",
                read_only=False,
                destructive=True,
                idempotent=True,
                open_world=False,
            ),
            ToolSpec(
                name="evaluate_reinforcement",
                title="Evaluate RL policy",
                description=(
                    "Run a policy bundle (train_ppo, train_dqn, train_a3c) greedily for n_episodes (default 10) on "
                    "its environment (or environment / env_spec_s3_uri), episode i seeded random_state + i: "
                    "return mean and std, episode length, success_rate against success_threshold (default: the "
                    "env's reward threshold), and every return. The same seed gives the same numbers." + _SAVED
                ),
                input_model=s.EvaluateReinforcementInput,
                output_model=s.EvaluateReinforcementOutput,
                fn=f"{_TOOLS}.reinforcement:evaluate_reinforcement",
                read_only=False,
                destructive=False,
                idempotent=False,
                open_world=False,
            ),
        ]
