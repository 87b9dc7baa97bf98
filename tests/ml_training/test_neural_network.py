"""train_neural_network with both frameworks: quality, per-epoch history, early stopping,
reproducibility, bundles that reload and predict the same, and refused inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.common.inference import feature_matrix, predict
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_training.conftest import frames

FRAMEWORKS = ["pytorch", "tensorflow"]


def scaled(name: str) -> pd.DataFrame:
    frame = frames()[name]
    features = frame.drop(columns="target")
    out = (features - features.mean()) / features.std()
    out["target"] = frame["target"]
    return out


@pytest.fixture
def nn_data(router: ToolRouter) -> dict[str, str]:
    storage = router.storage
    for name in ("breast_cancer", "diabetes"):
        storage.write_dataframe(scaled(name), storage.resolve(f"scaled/{name}.parquet"))
    return {"breast_cancer": "scaled/breast_cancer.parquet", "diabetes": "scaled/diabetes.parquet"}


def classifier_args(nn_data: dict[str, str], framework: str, **extra: Any) -> dict[str, Any]:
    return {
        "train_data_s3_uri": nn_data["breast_cancer"],
        "target_column": "target",
        "model_output_s3_uri": f"models/nn-{framework}",
        "framework": framework,
        "validation_fraction": 0.25,
        "random_state": 0,
        "hidden_layers": [16],
        "epochs": 15,
        "learning_rate": 0.01,
        **extra,
    }


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_network_classifies_breast_cancer(router: ToolRouter, nn_data: dict[str, str], framework: str) -> None:
    out = await call(router, "train_neural_network", **classifier_args(nn_data, framework))
    assert out["framework"] == framework
    assert out["metrics"]["validation"]["accuracy"] >= 0.93
    assert out["epochs_run"] == len(out["history"]) <= 15
    assert [h["epoch"] for h in out["history"]] == list(range(1, out["epochs_run"] + 1))
    assert {"loss", "val_loss", "val_accuracy"} <= set(out["history"][0])
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    meta = bundle.metadata
    assert meta["family"] == ("torch" if framework == "pytorch" else "keras")
    assert meta["label_encoded"] is True and meta["classes"] == [0, 1]
    # the bundle keeps the full series; the result the same entries, scores to 6 digits
    assert [h["epoch"] for h in meta["history"]] == [h["epoch"] for h in out["history"]]
    assert all(
        pytest.approx(stored, rel=1e-5) == shown for stored, shown in zip(meta["history"], out["history"], strict=True)
    )
    frame = scaled("breast_cancer")
    x = feature_matrix(frame, meta)
    labels = predict(bundle, x)
    assert set(labels) <= {0, 1}
    assert (labels == frame["target"].to_numpy()).mean() > 0.95
    proba = bundle.model.predict_proba(x)
    assert proba.shape == (len(frame), 2) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
async def test_network_same_call_twice_gives_same_metrics(
    router: ToolRouter, nn_data: dict[str, str], framework: str
) -> None:
    args = classifier_args(nn_data, framework, epochs=4)
    first = await call(router, "train_neural_network", **args)
    second = await call(router, "train_neural_network", **args)
    assert first["metrics"] == second["metrics"]
    assert first["history"] == second["history"]


async def test_network_regression_on_diabetes(router: ToolRouter, nn_data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_neural_network",
        train_data_s3_uri=nn_data["diabetes"],
        target_column="target",
        model_output_s3_uri="models/nn-reg",
        validation_fraction=0.2,
        random_state=0,
        hyperparameters={"hidden_layers": [32], "epochs": 60, "learning_rate": 0.01, "early_stopping_patience": 8},
    )
    assert out["task_type"] == "regression" and out["classes"] is None
    assert out["metrics"]["validation"]["r2"] > 0.3
    if out["epochs_run"] < 60:  # stopped early: the kept weights are those of the best epoch
        best = min(out["history"], key=lambda h: h["val_loss"])
        assert out["best_epoch"] == best["epoch"]
        assert out["metrics"]["validation"]["mse"] == pytest.approx(best["val_loss"], rel=1e-3)


async def test_network_stops_early_on_validation(router: ToolRouter, nn_data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_neural_network",
        **classifier_args(nn_data, "pytorch", epochs=300, learning_rate=0.05, hidden_layers=[64, 64]),
        hyperparameters={"early_stopping_patience": 3},
    )
    assert out["epochs_run"] < 300
    assert out["best_epoch"] == min(out["history"], key=lambda h: h["val_loss"])["epoch"]


async def test_network_progress_is_per_epoch(router: ToolRouter, nn_data: dict[str, str]) -> None:
    messages: list[str] = []

    async def sender(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    args = classifier_args(nn_data, "pytorch", epochs=60, batch_size=8, validation_fraction=None)
    result = await router.call("train_neural_network", args, sender)
    assert not result.is_error
    assert any("epoch" in m for m in messages)


async def test_network_refuses_missing_values(router: ToolRouter) -> None:
    frame = scaled("breast_cancer")
    frame.iloc[3, 0] = np.nan
    router.storage.write_dataframe(frame, router.storage.resolve("gaps.parquet"))
    text = await call_error(
        router,
        "train_neural_network",
        train_data_s3_uri="gaps.parquet",
        target_column="target",
        model_output_s3_uri="m",
    )
    assert "missing values" in text and "handle_missing" in text


async def test_network_settings_given_twice_must_agree(router: ToolRouter, nn_data: dict[str, str]) -> None:
    args = classifier_args(nn_data, "pytorch", epochs=5, hyperparameters={"epochs": 7})
    text = await call_error(router, "train_neural_network", **args)
    assert "epochs is given twice" in text
    text = await call_error(router, "train_neural_network", **classifier_args(nn_data, "pytorch", hidden_layers=[0]))
    assert "hidden_layers" in text


async def test_network_bundle_has_no_onnx_export(router: ToolRouter, nn_data: dict[str, str]) -> None:
    out = await call(router, "train_neural_network", **classifier_args(nn_data, "pytorch", epochs=1))
    text = await call_error(
        router, "save_model", model_s3_uri=out["model_s3_uri"], output_s3_uri="nn.onnx", format="onnx"
    )
    assert "not supported for torch" in text and "format=native" in text
    copy = await call(router, "save_model", model_s3_uri=out["model_s3_uri"], output_s3_uri="copies/nn")
    assert "model.safetensors" in copy["files"] and "architecture.json" in copy["files"]
    assert read_bundle(router.storage, copy["output_s3_uri"]).model is not None
