"""evaluate_classifier, evaluate_regressor, evaluate_clustering: one flow, three task checks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import schemas as s
from mcp_server.common import bundles
from mcp_server.common import evaluation as ev


def run_evaluation(
    ctx: ToolContext,
    model_s3_uri: str,
    test_data_s3_uri: str,
    task: str,
    tool: str,
    thresholds: dict[str, float] | None = None,
    target_column: str | None = None,
    label_column: str | None = None,
) -> tuple[dict[str, Any], ev.Predictions]:
    """Evaluate one bundle of `task` on test data; the JSON-ready result and the predictions."""
    ev.check_metric_names(task, list(thresholds or {}), "thresholds", label_column)
    bundle = bundles.read_bundle(ctx.storage, model_s3_uri, "model_s3_uri")
    ev.require_task(bundle, task, tool)
    test_uri, frame = ev.read_test_data(ctx.storage, test_data_s3_uri)
    ctx.check_cancelled()
    predictions = ev.predict_on(bundle, frame, target_column, label_column)
    result = ev.evaluate(predictions)
    passed, failed = ev.check_thresholds(result["metrics"], thresholds)
    result.update(
        model_s3_uri=bundle.uri,
        test_data_s3_uri=test_uri,
        algorithm=bundle.metadata.get("algorithm"),
        task_type=task,
        thresholds=thresholds or None,
        passed=passed,
        failed_metrics=failed,
    )
    if task == ev.CLUSTERING:
        result["label_column"] = label_column
    else:
        result["target_column"] = predictions.target_column
    return result, predictions


def _finish(ctx: ToolContext, tool: str, result: dict[str, Any], save: bool, model: type[BaseModel]) -> ToolOutput:
    data = model.model_validate(result)  # validated before anything is written
    artifacts = []
    if save:
        uri = ev.save_evaluation(ctx.storage, result["model_s3_uri"], tool, data.model_dump(mode="json"))
        data = model.model_validate({**result, "evaluation_s3_uri": uri})  # keeps the field validated
        artifacts.append(Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="application/json"))
    shown = {k: v for k, v in result["metrics"].items() if v is not None and not k.endswith(("_macro", "_weighted"))}
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
    verdict = "" if result["passed"] is None else (" PASSED" if result["passed"] else " FAILED")
    summary = f"{tool}: {result['algorithm']} on {result['n_samples']} rows: {metrics}.{verdict}"
    return ToolOutput(data=data, artifacts=artifacts, summary=summary)


def evaluate_classifier(ctx: ToolContext, params: s.EvaluateClassifierInput) -> ToolOutput:
    tool = "evaluate_classifier"
    result, _ = run_evaluation(
        ctx,
        params.model_s3_uri,
        params.test_data_s3_uri,
        ev.CLASSIFICATION,
        tool,
        params.thresholds,
        target_column=params.target_column,
    )
    return _finish(ctx, tool, result, params.save_result, s.EvaluateClassifierOutput)


def evaluate_regressor(ctx: ToolContext, params: s.EvaluateRegressorInput) -> ToolOutput:
    tool = "evaluate_regressor"
    result, _ = run_evaluation(
        ctx,
        params.model_s3_uri,
        params.test_data_s3_uri,
        ev.REGRESSION,
        tool,
        params.thresholds,
        target_column=params.target_column,
    )
    return _finish(ctx, tool, result, params.save_result, s.EvaluateRegressorOutput)


def evaluate_clustering(ctx: ToolContext, params: s.EvaluateClusteringInput) -> ToolOutput:
    tool = "evaluate_clustering"
    result, _ = run_evaluation(
        ctx,
        params.model_s3_uri,
        params.test_data_s3_uri,
        ev.CLUSTERING,
        tool,
        params.thresholds,
        label_column=params.label_column,
    )
    return _finish(ctx, tool, result, params.save_result, s.EvaluateClusteringOutput)
