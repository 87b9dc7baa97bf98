"""train_random_forest and train_xgboost: quality on scikit-learn's datasets, bundle contents,
reproducibility, preprocessing lineage and hyperparameter validation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.common.inference import feature_matrix, predict
from mcp_server.common.metrics import classification_metrics
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_training.conftest import frames

REQUIRED_KEYS = {
    "algorithm",
    "task_type",
    "hyperparameters",
    "feature_names",
    "feature_dtypes",
    "target_column",
    "classes",
    "label_encoded",
    "metrics",
    "training_data_uri",
    "data_fingerprint",
    "history",
    "random_state",
    "feature_importance",
    "library_versions",
    "artifacts",
}


def rf_args(data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "train_data_s3_uri": data["breast_cancer"],
        "target_column": "target",
        "model_output_s3_uri": "models/rf",
        "validation_fraction": 0.25,
        "random_state": 0,
        "hyperparameters": {"n_estimators": 40, "n_jobs": 1},
        **extra,
    }


async def test_random_forest_reaches_breast_cancer_accuracy(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_random_forest", **rf_args(data))
    assert out["status"] == "succeeded"
    assert out["task_type"] == "classification"
    assert out["classes"] == [0, 1]
    assert out["metrics"]["validation"]["accuracy"] >= 0.93
    assert out["metrics"]["validation"]["roc_auc"] >= 0.97
    assert out["n_validation_rows"] == round(569 * 0.25)
    assert out["n_train_rows"] + out["n_validation_rows"] == 569
    assert set(out["feature_importance"]) == set(frames()["breast_cancer"].columns) - {"target"}
    assert abs(sum(out["feature_importance"].values()) - 1.0) < 1e-6
    # one history record per batch of trees, ending at the full forest
    assert out["history"][-1]["n_estimators"] == 40
    assert [h["n_estimators"] for h in out["history"]] == sorted(h["n_estimators"] for h in out["history"])


async def test_random_forest_bundle_reloads_and_predicts_the_same(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_random_forest", **rf_args(data))
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    meta = bundle.metadata
    assert meta.keys() >= REQUIRED_KEYS
    assert meta["algorithm"] == "random_forest" and meta["family"] == "sklearn"
    assert meta["label_encoded"] is False
    assert meta["metrics"] == out["metrics"]
    assert meta["job_id"] == out["job_id"]
    assert meta["library_versions"]["scikit-learn"]
    # the fingerprint is the sha256 of the training object itself
    import hashlib

    raw = (router.storage.root / data["breast_cancer"]).read_bytes()
    assert meta["data_fingerprint"] == hashlib.sha256(raw).hexdigest()
    # reloaded model scores the validation metrics it recorded, on an independent recomputation
    frame = frames()["breast_cancer"]
    x = feature_matrix(frame, meta)
    assert np.array_equal(predict(bundle, x), bundle.model.predict(x))
    assert classification_metrics(frame["target"], predict(bundle, x))["accuracy"] > 0.97


async def test_random_forest_same_call_twice_gives_same_metrics(router: ToolRouter, data: dict[str, str]) -> None:
    first = await call(router, "train_random_forest", **rf_args(data, hyperparameters={"n_estimators": 20}))
    second = await call(router, "train_random_forest", **rf_args(data, hyperparameters={"n_estimators": 20}))
    assert first["metrics"] == second["metrics"]
    assert first["feature_importance"] == second["feature_importance"]


async def test_random_forest_without_seed_records_the_one_it_drew(router: ToolRouter, data: dict[str, str]) -> None:
    args = rf_args(data, hyperparameters={"n_estimators": 10})
    args.pop("random_state")
    first = await call(router, "train_random_forest", **args)
    again = await call(router, "train_random_forest", **{**args, "random_state": first["random_state"]})
    assert first["metrics"] == again["metrics"]


async def test_random_forest_regression_on_diabetes(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_random_forest",
        train_data_s3_uri=data["diabetes"],
        target_column="target",
        model_output_s3_uri="models/rf-reg",
        validation_fraction=0.25,
        random_state=0,
        hyperparameters={"n_estimators": 40, "max_depth": 6},
    )
    assert out["task_type"] == "regression"  # inferred: a float target with many values
    assert out["classes"] is None
    assert out["metrics"]["validation"]["r2"] > 0.3
    assert out["metrics"]["train"]["r2"] > out["metrics"]["validation"]["r2"]


async def test_xgboost_reaches_wine_accuracy_and_stops_early(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_xgboost",
        train_data_s3_uri=data["wine"],
        target_column="target",
        model_output_s3_uri="models/xgb",
        validation_fraction=0.3,
        random_state=0,
        hyperparameters={"n_estimators": 300, "max_depth": 3, "learning_rate": 0.3, "early_stopping_rounds": 5},
    )
    assert out["metrics"]["validation"]["accuracy"] >= 0.9
    assert out["best_iteration"] is not None and out["best_iteration"] < 299
    # per-round history with train and validation curves, cut where early stopping ended
    # (summarised to at most 50 rounds, the best one always among them)
    assert out["history_total"] < 300 and len(out["history"]) <= 50
    assert {"iteration", "train_mlogloss", "validation_mlogloss"} <= set(out["history"][0])
    best = min(out["history"], key=lambda entry: entry["validation_mlogloss"])
    assert out["best_iteration"] == best["iteration"]
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    assert bundle.metadata["label_encoded"] is True and bundle.metadata["classes"] == [0, 1, 2]
    assert bundle.metadata["best_iteration"] == out["best_iteration"]
    assert "xgboost" in bundle.metadata["library_versions"]
    frame = frames()["wine"]
    x = feature_matrix(frame, bundle.metadata)
    labels = predict(bundle, x)
    assert set(np.unique(labels)) <= {0, 1, 2}
    assert (labels == frame["target"].to_numpy()).mean() > 0.95


async def test_xgboost_string_labels_come_back_as_labels(router: ToolRouter) -> None:
    frame = frames()["iris"].copy()
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame.pop("target")]
    router.storage.write_dataframe(frame, router.storage.resolve("data/iris-named.csv"))
    out = await call(
        router,
        "train_xgboost",
        train_data_s3_uri="data/iris-named.csv",
        target_column="species",
        model_output_s3_uri="models/xgb-iris",
        validation_fraction=0.3,
        random_state=1,
        hyperparameters={"n_estimators": 30},
    )
    assert out["classes"] == ["setosa", "versicolor", "virginica"]
    assert out["metrics"]["validation"]["accuracy"] > 0.85
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    assert set(predict(bundle, feature_matrix(frame, bundle.metadata))) == set(out["classes"])


async def test_xgboost_regression_same_call_twice(router: ToolRouter, data: dict[str, str]) -> None:
    args = {
        "train_data_s3_uri": data["diabetes"],
        "target_column": "target",
        "model_output_s3_uri": "models/xgb-reg",
        "validation_fraction": 0.2,
        "random_state": 3,
        "hyperparameters": {"n_estimators": 40, "max_depth": 3, "learning_rate": 0.1, "subsample": 0.8},
    }
    first = await call(router, "train_xgboost", **args)
    second = await call(router, "train_xgboost", **args)
    assert first["task_type"] == "regression"
    assert first["metrics"] == second["metrics"]
    assert first["metrics"]["validation"]["r2"] > 0.2


async def test_explicit_validation_file_gives_validation_metrics(router: ToolRouter, data: dict[str, str]) -> None:
    frame = frames()["breast_cancer"]
    storage = router.storage
    storage.write_dataframe(frame.iloc[:400], storage.resolve("split/train.parquet"))
    storage.write_dataframe(frame.iloc[400:], storage.resolve("split/val.csv"))
    out = await call(
        router,
        "train_random_forest",
        train_data_s3_uri="split/train.parquet",
        validation_data_s3_uri="split/val.csv",
        target_column="target",
        model_output_s3_uri="models/rf-val",
        random_state=0,
        hyperparameters={"n_estimators": 30},
    )
    bundle = read_bundle(storage, out["model_s3_uri"])
    val = frame.iloc[400:]
    expected = classification_metrics(val["target"], bundle.model.predict(val.drop(columns="target").to_numpy()))
    assert out["metrics"]["validation"]["accuracy"] == pytest.approx(expected["accuracy"])
    assert out["n_validation_rows"] == len(val) and out["n_train_rows"] == 400
    assert bundle.metadata["validation_data_uri"].endswith("split/val.csv")


async def test_trainer_bundles_the_preprocessing_pipeline_of_processed_data(router: ToolRouter) -> None:
    """Raw data with a text column and gaps -> preprocess_supervised -> trainer: the bundle carries
    the pipeline, so raw rows give the same predictions as processed rows."""
    rng = np.random.default_rng(0)
    raw = frames()["breast_cancer"].iloc[:, :6].copy()
    raw.columns = [c.replace(" ", "_") for c in raw.columns]
    raw["clinic"] = rng.choice(["north", "south", "east"], size=len(raw))
    raw.loc[rng.choice(len(raw), 20, replace=False), "mean_radius"] = np.nan
    raw["target"] = frames()["breast_cancer"]["target"]
    storage = router.storage
    storage.write_dataframe(raw, storage.resolve("raw/bc.csv"))
    prep = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri="raw/bc.csv",
        target_column="target",
        task_type="classification",
        output_s3_uri="processed/bc.parquet",
    )
    out = await call(
        router,
        "train_random_forest",
        train_data_s3_uri=prep["output_s3_uri"],
        target_column="target",
        model_output_s3_uri="models/rf-prep",
        validation_data_s3_uri="raw/bc.csv",  # raw validation data goes through the pipeline too
        random_state=0,
        hyperparameters={"n_estimators": 30},
    )
    bundle = read_bundle(storage, out["model_s3_uri"])
    meta = bundle.metadata
    assert bundle.preprocessor is not None and meta["has_preprocessor"] is True
    assert meta["raw_feature_columns"] == prep["raw_feature_columns"]
    assert meta["feature_names"] == prep["feature_names"]
    assert "preprocessor.skops" in meta["artifacts"]
    processed = storage.read_dataframe(storage.resolve(prep["output_s3_uri"]))
    from_raw = predict(bundle, feature_matrix(raw.drop(columns="target"), meta, bundle.preprocessor))
    from_processed = predict(bundle, feature_matrix(processed, meta))
    assert np.array_equal(from_raw, from_processed)
    assert out["metrics"]["validation"]["accuracy"] > 0.85


async def test_trainer_refuses_text_features_and_points_to_preprocessing(router: ToolRouter) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 5, "colour": ["red", "blue"] * 10, "y": [0, 1] * 10})
    router.storage.write_dataframe(frame, router.storage.resolve("data/text.parquet"))
    text = await call_error(
        router, "train_random_forest", train_data_s3_uri="data/text.parquet", target_column="y", model_output_s3_uri="m"
    )
    assert "colour" in text and "preprocess_supervised" in text


async def test_trainer_names_a_missing_target_column(router: ToolRouter, data: dict[str, str]) -> None:
    text = await call_error(router, "train_xgboost", **rf_args(data, target_column="label"))
    assert "'label'" in text and "target_column" in text


async def test_trainer_refuses_a_missing_training_file_at_once(router: ToolRouter) -> None:
    text = await call_error(
        router,
        "train_random_forest",
        train_data_s3_uri="data/nothing.parquet",
        target_column="y",
        model_output_s3_uri="m",
        wait=False,
    )
    assert "does not exist" in text and "train_data_s3_uri" in text


@pytest.mark.parametrize(
    ("tool", "hyperparameters", "expected"),
    [
        ("train_random_forest", {"n_estimator": 10}, "hyperparameters.n_estimator: unknown field"),
        ("train_random_forest", {"n_estimators": 0}, "hyperparameters.n_estimators"),
        ("train_random_forest", {"max_features": 1.5}, "fraction in (0, 1]"),
        ("train_xgboost", {"learning_rate": 2}, "hyperparameters.learning_rate"),
        ("train_xgboost", {"booster": "dart"}, "hyperparameters.booster: unknown field"),
        ("train_xgboost", {"tree_method": "gpu_hist"}, "hyperparameters.tree_method"),
    ],
)
async def test_hyperparameters_are_validated(
    router: ToolRouter, data: dict[str, str], tool: str, hyperparameters: dict[str, Any], expected: str
) -> None:
    text = await call_error(router, tool, **rf_args(data, hyperparameters=hyperparameters))
    assert expected in text


async def test_criterion_must_fit_the_task(router: ToolRouter, data: dict[str, str]) -> None:
    args = rf_args(data, hyperparameters={"criterion": "gini", "n_estimators": 5})
    text = await call_error(router, "train_random_forest", **{**args, "task_type": "regression"})
    assert "criterion" in text and "squared_error" in text


async def test_validation_file_with_unseen_class_is_refused(router: ToolRouter) -> None:
    frame = frames()["iris"]
    storage = router.storage
    storage.write_dataframe(frame[frame.target < 2], storage.resolve("iris/train.parquet"))
    storage.write_dataframe(frame, storage.resolve("iris/val.parquet"))
    text = await call_error(
        router,
        "train_xgboost",
        train_data_s3_uri="iris/train.parquet",
        validation_data_s3_uri="iris/val.parquet",
        target_column="target",
        model_output_s3_uri="m",
    )
    assert "classes the training data lacks" in text and "[2]" in text


async def test_output_must_be_a_folder(router: ToolRouter, data: dict[str, str]) -> None:
    text = await call_error(router, "train_random_forest", **rf_args(data, model_output_s3_uri="models/rf.pkl"))
    assert "folder" in text and "model_output_s3_uri" in text


async def test_job_record_is_stored_with_the_result(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_random_forest", **rf_args(data, hyperparameters={"n_estimators": 10}))
    record = json.loads((router.storage.root / "jobs" / f"{out['job_id']}.json").read_text())
    assert record["status"] == "succeeded"
    assert record["result"]["model_s3_uri"] == out["model_s3_uri"]
    assert record["result"]["metrics"] == out["metrics"]
    assert record["progress"]["fraction"] == 1.0


async def test_wait_yes_and_n_estimators_true_are_refused_naming_the_field(router: ToolRouter) -> None:
    base = {"train_data_s3_uri": "data/t.parquet", "target_column": "y", "model_output_s3_uri": "models/x"}
    text = await call_error(router, "train_random_forest", **base, wait="yes")
    assert "wait: must be true or false" in text
    text = await call_error(router, "train_random_forest", **base, hyperparameters={"n_estimators": True})
    assert "hyperparameters: n_estimators: must be a number, not true" in text


# ----------------------------------------------------------------------------- attacks: unbounded work, vague errors
def _write(router: ToolRouter, key: str, frame: pd.DataFrame) -> str:
    router.storage.write_dataframe(frame, router.storage.resolve(key))
    return key


async def test_attack_thousands_of_string_labels_are_refused_by_max_classes(storage_root: Any) -> None:
    from mcp_server.config import Config
    from tests.conftest import make_router

    router = make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_MAX_CLASSES": "50"}))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=600), "label": [f"user-{i}" for i in range(600)]})
    uri = _write(router, "data/labels.parquet", frame)
    text = await call_error(
        router,
        "train_random_forest",
        train_data_s3_uri=uri,
        target_column="label",
        model_output_s3_uri="models/many",
        task_type="classification",
    )
    assert "target_column" in text and "600 classes" in text and "MLOPS_MAX_CLASSES limit of 50" in text


async def test_attack_bundle_over_max_bundle_mb_is_refused_while_writing(storage_root: Any) -> None:
    from mcp_server.config import Config
    from tests.conftest import make_router

    router = make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_MAX_BUNDLE_MB": "1"}))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(4000, 5)), columns=list("abcde")).assign(y=rng.normal(size=4000))
    uri = _write(router, "data/noise.parquet", frame)
    text = await call_error(
        router,
        "train_random_forest",
        train_data_s3_uri=uri,
        target_column="y",
        model_output_s3_uri="models/big",
        hyperparameters={"n_estimators": 20},
    )
    assert "MLOPS_MAX_BUNDLE_MB limit of 1 MB" in text and "nothing was published" in text
    assert not (storage_root / "models" / "big").exists()


@pytest.mark.parametrize("tool", ["train_random_forest", "train_xgboost"])
async def test_attack_infinite_feature_values_are_a_clear_error(router: ToolRouter, tool: str) -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, np.inf, 4.0] * 10, "b": [1.0] * 40, "y": [0, 1] * 20})
    uri = _write(router, "data/inf.parquet", frame)
    text = await call_error(router, tool, train_data_s3_uri=uri, target_column="y", model_output_s3_uri="models/inf")
    assert "train_data_s3_uri" in text and "['a'] hold infinite values" in text and "unexpectedly" not in text


async def test_attack_min_child_weight_1e308_is_a_clear_error(router: ToolRouter) -> None:
    frame = pd.DataFrame({"a": np.arange(40.0), "y": [0, 1] * 20})
    uri = _write(router, "data/ok.parquet", frame)
    text = await call_error(
        router,
        "train_xgboost",
        train_data_s3_uri=uri,
        target_column="y",
        model_output_s3_uri="models/mcw",
        hyperparameters={"min_child_weight": 1e308},
    )
    assert "hyperparameters" in text and "min_child_weight" in text and "unexpectedly" not in text
