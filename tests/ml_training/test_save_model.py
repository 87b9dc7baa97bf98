"""save_model: native copies, ONNX exports checked with onnxruntime, and refused inputs
(pickle files, tampered bundles, families without an ONNX converter)."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.common.inference import feature_matrix
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_training.conftest import frames


async def train(router: ToolRouter, tool: str, **args: Any) -> dict[str, Any]:
    return await call(router, tool, random_state=0, **args)


def onnx_outputs(router: ToolRouter, uri: str, x: np.ndarray) -> list[Any]:
    import onnxruntime as ort

    data = router.storage.read_bytes(router.storage.resolve(uri))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return list(session.run(None, {"input": x.astype(np.float32)}))


async def test_random_forest_onnx_matches_the_model(router: ToolRouter, data: dict[str, str]) -> None:
    model = await train(
        router,
        "train_random_forest",
        train_data_s3_uri=data["breast_cancer"],
        target_column="target",
        model_output_s3_uri="models/rf",
        hyperparameters={"n_estimators": 20, "max_depth": 5},
    )
    out = await call(
        router, "save_model", model_s3_uri=model["model_s3_uri"], output_s3_uri="export/rf.onnx", format="onnx"
    )
    assert out["format"] == "onnx" and out["family"] == "sklearn"
    blob = router.storage.read_bytes(router.storage.resolve(out["output_s3_uri"]))
    import hashlib

    assert out["sha256"] == hashlib.sha256(blob).hexdigest()
    bundle = read_bundle(router.storage, model["model_s3_uri"])
    x = feature_matrix(frames()["breast_cancer"].head(25), bundle.metadata)
    labels, proba = onnx_outputs(router, out["output_s3_uri"], x)
    assert np.array_equal(labels, bundle.model.predict(x))
    assert np.allclose(proba, bundle.model.predict_proba(x), atol=1e-5)
    import onnx

    props = {p.key: p.value for p in onnx.load_from_string(blob).metadata_props}
    assert json.loads(props["mlops"])["feature_names"] == bundle.feature_names


async def test_xgboost_onnx_keeps_the_early_stopped_rounds(router: ToolRouter, data: dict[str, str]) -> None:
    model = await train(
        router,
        "train_xgboost",
        train_data_s3_uri=data["wine"],
        target_column="target",
        model_output_s3_uri="models/xgb",
        validation_fraction=0.3,
        hyperparameters={"n_estimators": 200, "max_depth": 3, "early_stopping_rounds": 5},
    )
    assert model["best_iteration"] < 199
    out = await call(
        router, "save_model", model_s3_uri=model["model_s3_uri"], output_s3_uri="export/xgb.onnx", format="onnx"
    )
    assert "indices into the bundle's classes" in out["note"]
    bundle = read_bundle(router.storage, model["model_s3_uri"])
    x = feature_matrix(frames()["wine"].sample(30, random_state=0), bundle.metadata)
    labels, proba = onnx_outputs(router, out["output_s3_uri"], x)
    assert np.array_equal(labels, bundle.model.predict(x))
    assert np.allclose(proba, bundle.model.predict_proba(x), atol=1e-5)


async def test_xgboost_regressor_onnx(router: ToolRouter, data: dict[str, str]) -> None:
    model = await train(
        router,
        "train_xgboost",
        train_data_s3_uri=data["diabetes"],
        target_column="target",
        model_output_s3_uri="models/xgb-reg",
        hyperparameters={"n_estimators": 20},
    )
    out = await call(
        router, "save_model", model_s3_uri=model["model_s3_uri"], output_s3_uri="export/reg.onnx", format="onnx"
    )
    bundle = read_bundle(router.storage, model["model_s3_uri"])
    x = feature_matrix(frames()["diabetes"].head(20), bundle.metadata)
    (predicted,) = onnx_outputs(router, out["output_s3_uri"], x)
    assert np.allclose(predicted.ravel(), bundle.model.predict(x), rtol=1e-4, atol=1e-3)


async def test_kmeans_and_pca_export_to_onnx(router: ToolRouter, data: dict[str, str]) -> None:
    x = frames()["iris"].drop(columns="target").to_numpy()
    kmeans = await train(
        router,
        "train_kmeans",
        train_data_s3_uri=data["iris"],
        label_column="target",
        model_output_s3_uri="m/km",
        n_clusters=3,
    )
    out = await call(
        router, "save_model", model_s3_uri=kmeans["model_s3_uri"], output_s3_uri="export/km.onnx", format="onnx"
    )
    labels = onnx_outputs(router, out["output_s3_uri"], x)[0]
    assert np.array_equal(labels, read_bundle(router.storage, kmeans["model_s3_uri"]).model.predict(x))
    pca = await train(
        router,
        "train_pca",
        train_data_s3_uri=data["iris"],
        label_column="target",
        model_output_s3_uri="m/pca",
        n_components=2,
    )
    out = await call(
        router, "save_model", model_s3_uri=pca["model_s3_uri"], output_s3_uri="export/pca.onnx", format="onnx"
    )
    (projected,) = onnx_outputs(router, out["output_s3_uri"], x)
    assert np.allclose(projected, read_bundle(router.storage, pca["model_s3_uri"]).model.transform(x), atol=1e-4)


async def test_onnx_export_without_a_converter_is_a_clear_error(router: ToolRouter, data: dict[str, str]) -> None:
    model = await call(
        router, "train_dbscan", train_data_s3_uri=data["blobs"], columns=["a", "b"], model_output_s3_uri="m/db"
    )
    text = await call_error(
        router, "save_model", model_s3_uri=model["model_s3_uri"], output_s3_uri="x.onnx", format="onnx"
    )
    assert "no ONNX converter" in text and "dbscan" in text and "format=native" in text
    assert not (router.storage.root / "x.onnx").exists()


async def test_onnx_export_needs_an_onnx_name(router: ToolRouter) -> None:
    text = await call_error(router, "save_model", model_s3_uri="m", output_s3_uri="export/model", format="onnx")
    assert ".onnx" in text


async def test_native_copy_is_an_identical_verified_bundle(router: ToolRouter, data: dict[str, str]) -> None:
    model = await train(
        router,
        "train_random_forest",
        train_data_s3_uri=data["iris"],
        target_column="target",
        model_output_s3_uri="models/src",
        hyperparameters={"n_estimators": 5},
    )
    out = await call(router, "save_model", model_s3_uri=model["model_s3_uri"], output_s3_uri="archive/rf-v1")
    root = router.storage.root
    assert out["files"] == ["model.skops", "metadata.json"]
    for name in out["files"]:
        assert (root / "archive/rf-v1" / name).read_bytes() == (root / "models/src" / name).read_bytes()
    import hashlib

    assert out["sha256"] == hashlib.sha256((root / "archive/rf-v1/metadata.json").read_bytes()).hexdigest()
    copy = read_bundle(router.storage, out["output_s3_uri"])
    x = frames()["iris"].drop(columns="target").to_numpy()
    assert np.array_equal(copy.model.predict(x), read_bundle(router.storage, model["model_s3_uri"]).model.predict(x))


async def test_pickle_files_are_refused(router: ToolRouter) -> None:
    (router.storage.root / "evil.pkl").write_bytes(pickle.dumps({"boom": 1}))
    for tool, args in (
        ("save_model", {"model_s3_uri": "evil.pkl", "output_s3_uri": "out/copy"}),
        ("get_training_metrics", {"model_s3_uri": "evil.pkl"}),
    ):
        text = await call_error(router, tool, **args)
        assert "pickle" in text and "never loads" in text


@pytest.mark.parametrize("tool", ["save_model", "get_training_metrics"])
async def test_tampered_bundle_is_refused(router: ToolRouter, data: dict[str, str], tool: str) -> None:
    model = await train(
        router,
        "train_random_forest",
        train_data_s3_uri=data["iris"],
        target_column="target",
        model_output_s3_uri="models/t",
        hyperparameters={"n_estimators": 3},
    )
    path = router.storage.root / "models/t/model.skops"
    path.write_bytes(path.read_bytes() + b"\0")
    args = {"model_s3_uri": model["model_s3_uri"]}
    if tool == "save_model":
        args["output_s3_uri"] = "out/t"
    text = await call_error(router, tool, **args)
    assert "does not match its recorded sha256" in text
    assert not (router.storage.root / "out/t/metadata.json").exists()


@pytest.mark.parametrize("target", ["registry/rf", "jobs/x", "pipelines/p"])
async def test_attack_model_outputs_into_server_prefixes_are_refused(router: ToolRouter, target: str) -> None:
    from tests.model_registry.helpers import bundle_writer, train_tiny_models

    uri = bundle_writer(router.storage, train_tiny_models())("models/src")
    text = await call_error(router, "save_model", model_s3_uri=uri, output_s3_uri=target)
    assert "output_s3_uri" in text and "only the server itself writes" in text
    text = await call_error(
        router,
        "train_random_forest",
        train_data_s3_uri="data/none.parquet",
        target_column="y",
        model_output_s3_uri=target,
    )
    assert "model_output_s3_uri" in text and "only the server itself writes" in text
    assert not (router.storage.root / target).exists()


async def test_attack_a_model_bundle_inside_another_bundle_is_refused(router: ToolRouter) -> None:
    from tests.model_registry.helpers import bundle_writer, train_tiny_models

    uri = bundle_writer(router.storage, train_tiny_models())("models/prod")
    text = await call_error(router, "save_model", model_s3_uri=uri, output_s3_uri="models/prod/copy")
    assert "inside the model bundle" in text
