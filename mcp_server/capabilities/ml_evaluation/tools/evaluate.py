"""evaluate_classifier, evaluate_regressor, evaluate_clustering: one flow, three task checks.

Each runs as an evaluation job (see ml_evaluation/jobs.py): `_check` refuses bad input before
any job exists, `_work` evaluates (progress per step) and saves the result last.
"""

from __future__ import annotations

from typing import Any

from mcp_server.capabilities.base import JobOutput, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation import schemas as s
from mcp_server.capabilities.ml_evaluation.jobs import finish, run_evaluation
from mcp_server.common import bundles
from mcp_server.common.jobs import Job

_STEPS = 4  # read the bundle, read the test data, predict and score, save


def _check(ctx: ToolContext, params: s.EvaluateInput, task: str) -> None:
    """What fails at once: unknown metric names, no bundle, a model of another task, no test data."""
    tool = ev.EVALUATION_TOOLS[task]
    ev.check_metric_names(task, list(params.thresholds or {}), "thresholds", getattr(params, "label_column", None))
    loc, metadata = bundles.read_metadata(ctx.storage, params.model_s3_uri, "model_s3_uri")
    ev.require_task(bundles.Bundle(uri=loc.uri, metadata=metadata), task, tool)
    ctx.storage.resolve_existing(params.test_data_s3_uri, "test_data_s3_uri")


def _work(job: Job, ctx: ToolContext, params: s.EvaluateInput, task: str, output: type[JobOutput]) -> dict[str, Any]:
    """Evaluate one bundle of `task` on test data, check thresholds, save the result next to the model."""
    target_column: str | None = getattr(params, "target_column", None)
    label_column: str | None = getattr(params, "label_column", None)
    job.report(0, _STEPS, "reading the model bundle")
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri")
    ev.require_task(bundle, task, job.tool)  # the bundle may have changed since the check
    job.check_cancelled()
    job.report(1, _STEPS, "reading the test data")
    test_uri, frame = ev.read_test_data(ctx.storage, params.test_data_s3_uri)
    job.check_cancelled()
    job.report(2, _STEPS, f"predicting on {len(frame)} rows")
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
    job.report(3, _STEPS, "saving the evaluation" if params.save_result else "scored")
    return finish(job, ctx, output, result, bundle.uri if params.save_result else None, _STEPS)


def _summary(result: dict[str, Any]) -> str:
    shown = {k: v for k, v in result["metrics"].items() if v is not None and not k.endswith(("_macro", "_weighted"))}
    metrics = ", ".join(f"{k}={v:.4g}" for k, v in shown.items())
    passed = result.get("passed")
    verdict = "" if passed is None else (" PASSED" if passed else " FAILED")
    tool = ev.EVALUATION_TOOLS[result["task_type"]]
    return f"{tool}: {result['algorithm']} on {result['n_samples']} rows: {metrics}.{verdict}"


async def _evaluate(ctx: ToolContext, params: s.EvaluateInput, task: str, output: type[JobOutput]) -> ToolOutput:
    return await run_evaluation(
        ctx,
        ev.EVALUATION_TOOLS[task],
        params,
        output,
        lambda: _check(ctx, params, task),
        lambda job, _: _work(job, ctx, params, task, output),
        _summary,
        {"model_s3_uri": params.model_s3_uri, "test_data_s3_uri": params.test_data_s3_uri},
    )


async def evaluate_classifier(ctx: ToolContext, params: s.EvaluateClassifierInput) -> ToolOutput:
    return await _evaluate(ctx, params, ev.CLASSIFICATION, s.EvaluateClassifierOutput)


async def evaluate_regressor(ctx: ToolContext, params: s.EvaluateRegressorInput) -> ToolOutput:
    return await _evaluate(ctx, params, ev.REGRESSION, s.EvaluateRegressorOutput)


async def evaluate_clustering(ctx: ToolContext, params: s.EvaluateClusteringInput) -> ToolOutput:
    return await _evaluate(ctx, params, ev.CLUSTERING, s.EvaluateClusteringOutput)
