"""Demo section: evaluation. Describes and evaluates the models the training section produced on
the held-out test split, compares them (bootstrap intervals, McNemar's test), draws a confusion
matrix and a ROC curve of the best one, and writes a self-contained HTML report.

Returns the best model's URI (for the registry section) and the report's URI.
"""

from __future__ import annotations

from typing import Any

EVALUATORS = {
    "classification": "evaluate_classifier",
    "regression": "evaluate_regressor",
    "clustering": "evaluate_clustering",
}
HEADLINE = {
    "classification": ("accuracy", "f1", "roc_auc"),
    "regression": ("rmse", "mae", "r2"),
    "clustering": ("silhouette", "davies_bouldin"),
}
PLOTS = {"classification": ("confusion_matrix", "roc_curve"), "regression": ("residuals",), "clustering": ("clusters",)}
THRESHOLDS = {"classification": {"accuracy": 0.9, "roc_auc": 0.95}, "regression": {}, "clustering": {}}


def _numbers(metrics: dict[str, Any], names: tuple[str, ...]) -> str:
    return ", ".join(f"{n}={metrics[n]:.4f}" for n in names if metrics.get(n) is not None)


async def run(demo: Any, prep: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """`demo` is the demo's `Demo` (its `call(tool, show, **arguments)` prints one line per call);
    `models["model_uris"]` lists the trained bundles; the test data is `prep["test_uri"]`."""
    print("\n== Evaluation ==")
    test_uri = prep["test_uri"]
    target = prep.get("target_column") or "target"
    uris: list[str] = list(models["model_uris"])
    tasks: dict[str, str] = {}
    for uri in uris:
        info = await demo.call("load_model", ("algorithm", "task_type", "sha256_verified"), model_s3_uri=uri)
        tasks[uri] = info["task_type"]
    # Compare the models of the most common evaluable task (the demo trains classifiers).
    evaluable = [u for u in uris if tasks[u] in EVALUATORS]
    task = max({tasks[u] for u in evaluable}, key=lambda t: sum(tasks[u] == t for u in evaluable))
    chosen = [u for u in evaluable if tasks[u] == task]
    target_arg = {} if task == "clustering" else {"target_column": target}

    evaluations = []
    for uri in chosen:
        result = await demo.call(
            EVALUATORS[task],
            ("passed", "evaluation_s3_uri"),
            model_s3_uri=uri,
            test_data_s3_uri=test_uri,
            thresholds=THRESHOLDS[task] or None,
            **target_arg,
        )
        evaluations.append(result["evaluation_s3_uri"])
        print(f"     {result['algorithm']}: {_numbers(result['metrics'], HEADLINE[task])}")

    best = chosen[0]
    if len(chosen) >= 2:
        comparison = await demo.call(
            "compare_models",
            ("metric", "best_model_s3_uri", "mcnemar"),
            model_s3_uris=chosen,
            test_data_s3_uri=test_uri,
            n_bootstrap=500,
            **target_arg,
        )
        for entry in comparison["ranking"]:
            print(
                f"     #{entry['rank']} {entry['algorithm']}: {entry['metric']}={entry['value']:.4f} "
                f"(95% CI {entry['ci_low']:.4f}-{entry['ci_high']:.4f})"
            )
        best = comparison["best_model_s3_uri"]

    for plot_type in PLOTS[task]:
        await demo.call(
            "visualization",
            ("plot_type", "image_s3_uri", "bytes"),
            model_s3_uri=best,
            plot_type=plot_type,
            test_data_s3_uri=test_uri,
            **target_arg,
        )
    report = await demo.call(
        "generate_report",
        ("report_s3_uri", "plots", "passed", "bytes"),
        model_s3_uri=best,
        test_data_s3_uri=test_uri,
        thresholds=THRESHOLDS[task] or None,
        output_s3_uri="reports/best_model.html",
        **target_arg,
    )
    return {"best_model_uri": best, "report_uri": report["report_s3_uri"], "evaluation_uris": evaluations}
