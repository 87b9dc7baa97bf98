"""The Keras MLP (TensorFlow backend): it learns, reports, stops, reproduces, and loads safely."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_server.capabilities.ml_training.nets.keras_fit import fit_keras_mlp
from mcp_server.common.bundles import read_bundle, write_bundle
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.keras_models import KerasMLP, KerasMLPClassifier
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.ml_training.nets.mlp_checks import (
    breast_cancer_split,
    bundle_files,
    check_breast_cancer_classifier,
    check_diabetes_regressor,
    check_epoch_calls,
    diabetes_split,
    fit_breast_cancer,
    fit_noise_with_early_stopping,
    fit_until_cancelled,
    forge_artifact,
)

# Keras' own weight saving trips NumPy 2's __array__(copy=) deprecation; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def cancer() -> tuple[Any, ...]:
    return breast_cancer_split()


@pytest.fixture(scope="module")
def cancer_fit() -> tuple[KerasMLP, list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    return fit_breast_cancer(fit_keras_mlp, epochs=20)


def test_classifier_reaches_90_percent_on_breast_cancer(cancer: tuple[Any, ...], cancer_fit: Any) -> None:
    _, x_va, _, y_va = cancer
    model, history, _ = cancer_fit
    assert isinstance(model, KerasMLPClassifier)
    check_breast_cancer_classifier(model, history, x_va, y_va)


def test_network_is_the_described_mlp(cancer_fit: Any) -> None:
    model, _, _ = cancer_fit
    arch = model.architecture
    assert arch["framework"] == "keras" and arch["hidden_layers"] == [64, 32]
    dense = [layer for layer in model.model.layers if type(layer).__name__ == "Dense"]
    assert [layer.units for layer in dense] == [64, 32, 2]
    assert [layer.activation.__name__ for layer in dense] == ["relu", "relu", "linear"]


def test_on_epoch_is_called_once_per_epoch_in_order(cancer_fit: Any) -> None:
    _, history, calls = cancer_fit
    check_epoch_calls(calls, history, 20)


def test_regressor_predicts_diabetes_in_target_units() -> None:
    x_tr, x_va, y_tr, y_va = diabetes_split()
    model, history = fit_keras_mlp(x_tr, y_tr, "regression", x_val=x_va, y_val=y_va, epochs=10, random_state=0)
    assert type(model) is KerasMLP
    check_diabetes_regressor(model, history, x_va, y_va)


def test_same_seed_gives_the_same_model(cancer: tuple[Any, ...]) -> None:
    x_tr, x_va, y_tr, _ = cancer
    kwargs: dict[str, Any] = {"n_classes": 2, "epochs": 2, "batch_size": 64, "hidden_layers": (16,)}
    first, h1 = fit_keras_mlp(x_tr, y_tr, "classification", random_state=7, **kwargs)
    second, h2 = fit_keras_mlp(x_tr, y_tr, "classification", random_state=7, **kwargs)
    other, _ = fit_keras_mlp(x_tr, y_tr, "classification", random_state=8, **kwargs)
    np.testing.assert_allclose([r["loss"] for r in h1], [r["loss"] for r in h2], rtol=1e-6)
    np.testing.assert_allclose(first.predict_proba(x_va), second.predict_proba(x_va), rtol=1e-5, atol=1e-7)
    assert not np.allclose(first.predict_proba(x_va), other.predict_proba(x_va))


def test_early_stopping_stops_and_restores_best_weights() -> None:
    fit_noise_with_early_stopping(fit_keras_mlp, epochs=100, patience=3)


def test_check_cancelled_stops_training(cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    # 8 checks per epoch (one before it, one per batch of 64 of 426 rows): the 20th is in epoch 3.
    assert fit_until_cancelled(fit_keras_mlp, x_tr, y_tr, batch_size=64, stop_at=20) == [1, 2]


def test_nan_features_are_refused_before_tensorflow_runs(cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    bad = x_tr.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError) as err:
        fit_keras_mlp(bad, y_tr, "classification", n_classes=2, epochs=1)
    assert err.value.field == "train_data_s3_uri"


# ---------------------------------------------------------------------------- bundles
@pytest.fixture
def storage(tmp_path: Path) -> S3Utils:
    return S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path)}))


def _write(storage: S3Utils, model: KerasMLP, key: str = "models/keras") -> Path:
    meta = {"algorithm": "neural_network", "task_type": model.task_type}
    write_bundle(storage, storage.resolve(key), model, "keras", meta)
    return storage.root / key


def test_bundle_round_trip_gives_identical_predictions(
    storage: S3Utils, cancer: tuple[Any, ...], cancer_fit: Any
) -> None:
    _, x_va, _, _ = cancer
    model, _, _ = cancer_fit
    folder = _write(storage, model)
    assert bundle_files(folder) == {"model.keras", "architecture.json", "metadata.json"}
    with zipfile.ZipFile(folder / "model.keras") as archive:
        names = archive.namelist()
    assert set(names) == {"config.json", "metadata.json", "model.weights.h5"}  # JSON + HDF5, no pickle
    loaded = read_bundle(storage, "models/keras").model
    assert isinstance(loaded, KerasMLPClassifier)
    assert loaded.architecture == model.architecture
    assert np.array_equal(loaded.predict(x_va), model.predict(x_va))
    np.testing.assert_array_equal(loaded.predict_proba(x_va), model.predict_proba(x_va))


def test_regression_bundle_keeps_target_scaling(storage: S3Utils) -> None:
    x_tr, x_va, y_tr, _ = diabetes_split()
    model, _ = fit_keras_mlp(x_tr, y_tr, "regression", epochs=1, random_state=1, hidden_layers=(8,))
    _write(storage, model, "models/reg")
    loaded = read_bundle(storage, "models/reg").model
    assert type(loaded) is KerasMLP and not hasattr(loaded, "predict_proba")
    np.testing.assert_array_equal(loaded.predict(x_va), model.predict(x_va))


def test_tampered_model_file_is_refused(storage: S3Utils, cancer_fit: Any) -> None:
    model, _, _ = cancer_fit
    folder = _write(storage, model)
    data = bytearray((folder / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.keras").write_bytes(bytes(data))
    with pytest.raises(BadFormatError, match="sha256"):
        read_bundle(storage, "models/keras")


def test_forged_model_with_a_lambda_layer_is_refused(storage: S3Utils, tmp_path: Path, cancer_fit: Any) -> None:
    import keras

    model, _, _ = cancer_fit
    folder = _write(storage, model)
    marker = tmp_path / "pwned"
    # The path is a constant in the lambda's code, which Keras stores as marshalled bytecode.
    touch = eval(f"lambda x: __import__('pathlib').Path({str(marker)!r}).touch() or x")
    evil = keras.Sequential([keras.Input(shape=(30,)), keras.layers.Lambda(touch)])
    evil_path = tmp_path / "evil.keras"
    evil.save(evil_path)
    marker.unlink(missing_ok=True)  # touched once while building the evil model here
    forge_artifact(folder, "model.keras", evil_path.read_bytes())
    with pytest.raises(BadFormatError, match="Lambda"):
        read_bundle(storage, "models/keras")
    assert not marker.exists()


def test_forged_model_naming_another_keras_module_is_refused_by_name(storage: S3Utils, cancer_fit: Any) -> None:
    import io
    import json
    import zipfile

    model, _, _ = cancer_fit
    folder = _write(storage, model)
    source = zipfile.ZipFile(io.BytesIO((folder / "model.keras").read_bytes()))
    config = json.loads(source.read("config.json"))
    # Same class name, another module Keras would import to find it: refused without importing.
    config["config"]["layers"][1]["module"] = "keras.src.utils.naming"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in source.namelist():
            archive.writestr(name, json.dumps(config) if name == "config.json" else source.read(name))
    forge_artifact(folder, "model.keras", out.getvalue())
    with pytest.raises(BadFormatError, match=r"keras\.src\.utils\.naming"):
        read_bundle(storage, "models/keras")
