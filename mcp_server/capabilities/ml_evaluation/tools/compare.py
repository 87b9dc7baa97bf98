"""compare_models: several bundles of one task on the same test data, ranked with bootstrap CIs.

An evaluation job (see ml_evaluation/jobs.py): the bundles' metadata, their task, the metric and
the test data are checked before any job exists; the job loads, scores and bootstraps each model
(progress per model) and saves the comparison last.
"""

from __future__ import annotations

from typing import Any

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation.jobs import finish, run_evaluation
from mcp_server.capabilities.ml_evaluation.schemas import CompareModelsInput, CompareModelsOutput
from mcp_server.common import bundles
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import Job
from mcp_server.common.metrics import HIGHER_IS_BETTER

TOOL = "compare_models"


def _field(i: int) -> str:
    return f"model_s3_uris[{i}]"


def _check(ctx: ToolContext, params: CompareModelsInput) -> tuple[str, str]:
    """What fails at once: a missing bundle, one listed twice, mixed or unsupported tasks, an unknown
    metric, no test data. Returns (task, metric)."""
    located = [bundles.read_metadata(ctx.storage, uri, _field(i)) for i, uri in enumerate(params.model_s3_uris)]
    seen: set[str] = set()
    for loc, _ in located:
        if loc.uri in seen:
            raise InvalidInputError(f"{loc.uri} is listed twice", field="model_s3_uris", hint="List each model once.")
        seen.add(loc.uri)
    tasks = {str(meta.get("task_type")) for _, meta in located}
    if len(tasks) > 1:
        listing = "; ".join(f"{loc.uri} is {meta.get('task_type')}" for loc, meta in located)
        raise InvalidInputError(
            f"models of different tasks cannot be compared ({listing})",
            field="model_s3_uris",
            hint="Compare models of one task (all classifiers, all regressors or all clustering models).",
        )
    task = tasks.pop()
    if task not in ev.EVALUATION_TOOLS:
        raise InvalidInputError(
            f"{task} models are not compared on test data",
            field="model_s3_uris",
            hint="compare_models takes classification, regression or clustering models.",
        )
    metric = params.metric or ev.DEFAULT_METRIC[task]
    ev.check_metric_names(task, [metric], "metric", params.label_column)
    ctx.storage.resolve_existing(params.test_data_s3_uri, "test_data_s3_uri")
    return task, metric


def _work(job: Job, ctx: ToolContext, params: CompareModelsInput, task: str, metric: str) -> dict[str, Any]:
    higher = HIGHER_IS_BETTER.get(metric, True)
    steps = len(params.model_s3_uris) + 2  # the test data, each model, the ranking
    job.report(0, steps, "reading the test data")
    test_uri, frame = ev.read_test_data(ctx.storage, params.test_data_s3_uri)
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    predictions: dict[str, ev.Predictions] = {}
    for i, uri in enumerate(params.model_s3_uris):
        job.check_cancelled()
        bundle = bundles.read_bundle(ctx.storage, uri, _field(i))
        ev.require_task(bundle, task, TOOL, _field(i))  # the bundle may have changed since the check
        p = ev.predict_on(bundle, frame, params.target_column, params.label_column)
        result = ev.evaluate(p)
        low, high = ev.bootstrap_ci(
            p, metric, params.n_bootstrap, params.confidence, params.random_state, job.check_cancelled
        )
        predictions[bundle.uri] = p
        warnings += [f"{bundle.uri}: {w}" for w in result["warnings"]]
        rows.append(
            {
                "model": bundle.uri,
                "algorithm": bundle.metadata.get("algorithm"),
                "value": result["metrics"].get(metric),
                "ci_low": low,
                "ci_high": high,
                "metrics": result["metrics"],
                "n_samples": result["n_samples"],
            }
        )
        job.report(i + 1, steps, f"evaluated {bundle.uri}")

    # Unknown values rank last; ties keep the order the models were given in.
    ordered = sorted(rows, key=lambda r: (r["value"] is None, -(r["value"] or 0) if higher else (r["value"] or 0)))
    ranking = [
        {"rank": n, "metric": metric, **{k: r[k] for k in ("model", "algorithm", "value", "ci_low", "ci_high")}}
        for n, r in enumerate(ordered, start=1)
    ]
    mcnemar = None
    if task == ev.CLASSIFICATION:
        first, second = (predictions[r["model"]] for r in ordered[:2])
        mcnemar = {
            "model_a": ordered[0]["model"],
            "model_b": ordered[1]["model"],
            **ev.mcnemar_test(first.correct, second.correct),
        }
    result = {
        "task_type": task,
        "metric": metric,
        "higher_is_better": higher,
        "test_data_s3_uri": test_uri,
        "n_samples": ordered[0]["n_samples"],
        "ranking": ranking,
        "best_model_s3_uri": ordered[0]["model"],
        "table": [{"model": r["model"], "algorithm": r["algorithm"], **r["metrics"]} for r in rows],
        "mcnemar": mcnemar,
        "n_bootstrap": params.n_bootstrap,
        "confidence": params.confidence,
        "warnings": warnings,
    }
    job.report(steps - 1, steps, "saving the comparison" if params.save_result else "ranked")
    return finish(job, ctx, CompareModelsOutput, result, ordered[0]["model"] if params.save_result else None, steps)


def _summary(result: dict[str, Any]) -> str:
    best = result["ranking"][0]
    metric = result["metric"]
    return (
        f"Best of {len(result['ranking'])} by {metric}: {best['model']} ({best['algorithm']}, {metric}={best['value']})"
    )


async def compare_models(ctx: ToolContext, params: CompareModelsInput) -> ToolOutput:
    return await run_evaluation(
        ctx,
        TOOL,
        params,
        CompareModelsOutput,
        lambda: _check(ctx, params),
        lambda job, checked: _work(job, ctx, params, *checked),
        _summary,
        {"model_s3_uris": params.model_s3_uris, "test_data_s3_uri": params.test_data_s3_uri},
    )
