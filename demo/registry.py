"""Demo section: the model registry. Registers the best model, promotes it, lists, searches, rolls back."""

from __future__ import annotations

from typing import Any

MODEL_NAME = "breast-cancer-classifier"


def _headline_metric(metrics: dict[str, float]) -> tuple[str, float] | None:
    for name in ("accuracy", "f1", "roc_auc", "r2", "silhouette"):
        if name in metrics:
            return name, metrics[name]
    return next(iter(metrics.items()), None)


async def run(demo: Any, best_model_uri: str, model_name: str = MODEL_NAME) -> dict[str, Any]:
    """`demo` is the demo's `Demo` (its `call(tool, show, **arguments)` prints one line per call)."""
    print("\n== Model registry ==")
    first = await demo.call(
        "register_model",
        ("model_name", "version", "status", "metrics"),
        model_name=model_name,
        model_s3_uri=best_model_uri,
        tags={"source": "demo", "selected_by": "compare_models"},
        description="best model of the demo's comparison",
    )
    # The same bundle again, as a scheduled retrain would: versions count up with no gaps.
    second = await demo.call(
        "register_model",
        ("model_name", "version"),
        model_name=model_name,
        model_s3_uri=best_model_uri,
        tags={"source": "demo", "retrain": "weekly"},
        description="weekly retrain",
    )
    v1, v2 = first["version"], second["version"]
    show = ("version", "previous_status", "status", "demoted")
    await demo.call("update_model_status", show, model_name=model_name, version=v1, status="staging")
    await demo.call("update_model_status", show, model_name=model_name, version=v1, status="production")
    await demo.call(
        "update_model_status", show, model_name=model_name, version=v2, status="production", reason="weekly retrain"
    )
    listed = await demo.call(
        "list_model_versions", ("latest_version", "production_version", "count"), model_name=model_name
    )
    print("     versions: " + ", ".join(f"v{v['version']}={v['status']}" for v in listed["versions"]))

    found: dict[str, Any] = {"total_matches": 0, "models": []}
    headline = _headline_metric(first["metrics"])
    if headline:
        metric, value = headline
        found = await demo.call(
            "search_models",
            ("total_matches", "order_by"),
            name_contains=model_name,
            metric=f"{metric}>={round(value - 0.01, 4)}",
            order_by=f"metrics.{metric} desc",
            limit=5,
        )
        print(f"     search {metric}>={round(value - 0.01, 4)}: {found['total_matches']} version(s) match")

    rolled = await demo.call(
        "rollback_model",
        ("from_version", "to_version", "reason"),
        model_name=model_name,
        reason="demo: canary showed higher latency",
    )
    return {
        "model_name": model_name,
        "versions": [v1, v2],
        "production_version": rolled["to_version"],
        "rolled_back_from": rolled["from_version"],
        "metrics": first["metrics"],
        "search_matches": found["total_matches"],
    }
