"""compare_models: several bundles of one task on the same test data, ranked with bootstrap CIs."""

from __future__ import annotations

from typing import Any

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation.schemas import CompareModelsInput, CompareModelsOutput, McNemar, RankingEntry
from mcp_server.common import bundles
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.metrics import HIGHER_IS_BETTER


def _read_bundles(ctx: ToolContext, uris: list[str]) -> list[bundles.Bundle]:
    loaded = [bundles.read_bundle(ctx.storage, uri, f"model_s3_uris[{i}]") for i, uri in enumerate(uris)]
    seen: set[str] = set()
    for bundle in loaded:
        if bundle.uri in seen:
            raise InvalidInputError(
                f"{bundle.uri} is listed twice", field="model_s3_uris", hint="List each model once."
            )
        seen.add(bundle.uri)
    tasks = {b.task_type for b in loaded}
    if len(tasks) > 1:
        listing = "; ".join(f"{b.uri} is {b.task_type}" for b in loaded)
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
    return loaded


def compare_models(ctx: ToolContext, params: CompareModelsInput) -> ToolOutput:
    loaded = _read_bundles(ctx, params.model_s3_uris)
    task = loaded[0].task_type
    metric = params.metric or ev.DEFAULT_METRIC[task]
    ev.check_metric_names(task, [metric], "metric", params.label_column)
    higher = HIGHER_IS_BETTER.get(metric, True)
    test_uri, frame = ev.read_test_data(ctx.storage, params.test_data_s3_uri)

    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    predictions: dict[str, ev.Predictions] = {}
    for i, bundle in enumerate(loaded):
        ctx.check_cancelled()
        p = ev.predict_on(bundle, frame, params.target_column, params.label_column)
        result = ev.evaluate(p)
        low, high = ev.bootstrap_ci(
            p, metric, params.n_bootstrap, params.confidence, params.random_state, ctx.check_cancelled
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
        ctx.report_progress(i + 1, len(loaded), f"evaluated {bundle.uri}")

    # Unknown values rank last; ties keep the order the models were given in.
    ordered = sorted(rows, key=lambda r: (r["value"] is None, -(r["value"] or 0) if higher else (r["value"] or 0)))
    ranking = [
        RankingEntry(rank=n, metric=metric, **{k: r[k] for k in ("model", "algorithm", "value", "ci_low", "ci_high")})
        for n, r in enumerate(ordered, start=1)
    ]
    mcnemar: McNemar | None = None
    if task == ev.CLASSIFICATION:
        first, second = (predictions[r["model"]] for r in ordered[:2])
        mcnemar = McNemar(
            model_a=ordered[0]["model"],
            model_b=ordered[1]["model"],
            **ev.mcnemar_test(first.correct, second.correct),
        )
    data = CompareModelsOutput(
        task_type=task,
        metric=metric,
        higher_is_better=higher,
        test_data_s3_uri=test_uri,
        n_samples=ordered[0]["n_samples"],
        ranking=ranking,
        best_model_s3_uri=ordered[0]["model"],
        table=[{"model": r["model"], "algorithm": r["algorithm"], **r["metrics"]} for r in rows],
        mcnemar=mcnemar,
        n_bootstrap=params.n_bootstrap,
        confidence=params.confidence,
        warnings=warnings,
    )
    artifacts = []
    if params.save_result:
        uri = ev.save_evaluation(ctx.storage, data.best_model_s3_uri, "compare_models", data.model_dump(mode="json"))
        data.evaluation_s3_uri = uri
        artifacts.append(Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="application/json"))
    best = ranking[0]
    return ToolOutput(
        data=data,
        artifacts=artifacts,
        summary=f"Best of {len(rows)} by {metric}: {best.model} ({best.algorithm}, {metric}={best.value})",
    )
