"""evaluate_classifier, evaluate_regressor, evaluate_clustering: one flow, three task checks."""

from __future__ import annotations

from pydantic import BaseModel

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation import schemas as s
from mcp_server.common import bundles


def _evaluate(ctx: ToolContext, params: s.EvaluateInput, task: str, output: type[BaseModel]) -> ToolOutput:
    """Evaluate one bundle of `task` on test data, check thresholds, save the result next to the model."""
    tool = ev.EVALUATION_TOOLS[task]
    target_column: str | None = getattr(params, "target_column", None)
    label_column: str | None = getattr(params, "label_column", None)
    ev.check_metric_names(task, list(params.thresholds or {}), "thresholds", label_column)
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri")
    ev.require_task(bundle, task, tool)
    test_uri, frame = ev.read_test_data(ctx.storage, params.test_data_s3_uri)
    ctx.check_cancelled()
    predictions = ev.predict_on(bundle, frame, target_column, label_column)
    result = ev.evaluate(predictions)
    passed, failed = ev.check_thresholds(result["metrics"], params.thresholds)
    result.update(
        model_s3_uri=bundle.uri,
        test_data_s3_uri=test_uri,
        algorithm=bundle.metadata.get("algorithm"),
        task_type=task,
        thresholds=params.thresholds or None,
        passed=passed,
        failed_metrics=failed,
    )
    if task == ev.CLUSTERING:
        result["label_column"] = label_column
    else:
        result["target_column"] = predictions.target_column
    data = output.model_validate(result)  # validated before anything is written
    artifacts = []
    if params.save_result:
        uri = ev.save_evaluation(ctx.storage, bundle.uri, tool, data.model_dump(mode="json"))
        data = output.model_validate({**result, "evaluation_s3_uri": uri})
        artifacts.append(Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="application/json"))
    shown = {k: v for k, v in result["metrics"].items() if v is not None and not k.endswith(("_macro", "_weighted"))}
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
    verdict = "" if passed is None else (" PASSED" if passed else " FAILED")
    summary = f"{tool}: {result['algorithm']} on {result['n_samples']} rows: {metrics}.{verdict}"
    return ToolOutput(data=data, artifacts=artifacts, summary=summary)


def evaluate_classifier(ctx: ToolContext, params: s.EvaluateClassifierInput) -> ToolOutput:
    return _evaluate(ctx, params, ev.CLASSIFICATION, s.EvaluateClassifierOutput)


def evaluate_regressor(ctx: ToolContext, params: s.EvaluateRegressorInput) -> ToolOutput:
    return _evaluate(ctx, params, ev.REGRESSION, s.EvaluateRegressorOutput)


def evaluate_clustering(ctx: ToolContext, params: s.EvaluateClusteringInput) -> ToolOutput:
    return _evaluate(ctx, params, ev.CLUSTERING, s.EvaluateClusteringOutput)
