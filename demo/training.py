"""Demo section: training. Trains a random forest and an XGBoost model on the prepared train split
(validated on the validation split, with progress notifications), shows their metrics, reads one
back with get_training_metrics, and exports the forest to ONNX.

Returns the model URIs later sections (evaluation, registry) use.
"""

from __future__ import annotations

from typing import Any


def _scores(metrics: dict[str, Any], split: str) -> str:
    values = metrics.get(split) or {}
    return ", ".join(f"{k}={values[k]:.4f}" for k in ("accuracy", "f1", "roc_auc") if values.get(k) is not None)


async def run(demo: Any, prep: dict[str, Any]) -> dict[str, Any]:
    """`demo` is the demo's `Demo`; `prep` holds `train_uri`, `validation_uri` (target column `target`)."""
    print("\n== Training ==")
    common = {
        "train_data_s3_uri": prep["train_uri"],
        "validation_data_s3_uri": prep["validation_uri"],
        "target_column": prep.get("target_column") or "target",
        "random_state": 42,
    }
    forest = await demo.call(
        "train_random_forest",
        ("model_s3_uri", "training_seconds"),
        model_output_s3_uri="models/breast_cancer_rf",
        hyperparameters={"n_estimators": 200, "max_depth": 8},
        **common,
    )
    boosted = await demo.call(
        "train_xgboost",
        ("model_s3_uri", "best_iteration", "training_seconds"),
        model_output_s3_uri="models/breast_cancer_xgb",
        hyperparameters={"n_estimators": 300, "max_depth": 3, "learning_rate": 0.1, "early_stopping_rounds": 20},
        **common,
    )
    for name, out in (("random forest", forest), ("xgboost", boosted)):
        print(f"     {name}: train {_scores(out['metrics'], 'train')}")
        print(f"     {name}: validation {_scores(out['metrics'], 'validation')}")
    top = sorted(forest["feature_importance"].items(), key=lambda item: -item[1])[:3]
    print("     random forest top features: " + ", ".join(f"{k} ({v:.3f})" for k, v in top))
    await demo.call("get_training_metrics", ("status", "job_id"), model_s3_uri=boosted["model_s3_uri"])
    await demo.call(
        "save_model",
        ("output_s3_uri", "sha256"),
        model_s3_uri=forest["model_s3_uri"],
        output_s3_uri="exports/breast_cancer_rf.onnx",
        format="onnx",
    )
    return {
        "model_uris": [forest["model_s3_uri"], boosted["model_s3_uri"]],
        "random_forest_uri": forest["model_s3_uri"],
        "xgboost_uri": boosted["model_s3_uri"],
    }
