"""The torch MLP: it learns, reports, stops, reproduces, and survives a bundle round trip safely."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_server.capabilities.ml_training.nets.torch_fit import fit_torch_mlp
from mcp_server.common.bundles import read_bundle, write_bundle
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.torch_models import TorchMLP, TorchMLPClassifier
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


@pytest.fixture(scope="module")
def cancer() -> tuple[Any, ...]:
    return breast_cancer_split()


@pytest.fixture(scope="module")
def cancer_fit() -> tuple[TorchMLP, list[dict[str, Any]], list[tuple[int, dict[str, Any]]]]:
    return fit_breast_cancer(fit_torch_mlp, epochs=20)


def test_classifier_reaches_90_percent_on_breast_cancer(cancer: tuple[Any, ...], cancer_fit: Any) -> None:
    _, x_va, _, y_va = cancer
    model, history, _ = cancer_fit
    assert isinstance(model, TorchMLPClassifier)
    check_breast_cancer_classifier(model, history, x_va, y_va)


def test_architecture_describes_the_network(cancer_fit: Any) -> None:
    model, _, _ = cancer_fit
    arch = model.architecture
    assert json.loads(json.dumps(arch)) == arch
    assert arch["type"] == "mlp" and arch["framework"] == "torch"
    assert (arch["input_dim"], arch["hidden_layers"], arch["output_dim"]) == (30, [64, 32], 2)
    assert arch["activation"] == "relu" and arch["task_type"] == "classification"
    linear = [m for m in model.module if type(m).__name__ == "Linear"]
    assert [(m.in_features, m.out_features) for m in linear] == [(30, 64), (64, 32), (32, 2)]
    assert model.task_type == "classification" and model.n_classes == 2


def test_on_epoch_is_called_once_per_epoch_in_order(cancer_fit: Any) -> None:
    _, history, calls = cancer_fit
    check_epoch_calls(calls, history, 20)


def test_regressor_predicts_diabetes_in_target_units() -> None:
    x_tr, x_va, y_tr, y_va = diabetes_split()
    model, history = fit_torch_mlp(x_tr, y_tr, "regression", x_val=x_va, y_val=y_va, epochs=10, random_state=0)
    assert type(model) is TorchMLP
    check_diabetes_regressor(model, history, x_va, y_va)


def test_same_seed_gives_identical_weights_and_history(cancer: tuple[Any, ...]) -> None:
    x_tr, x_va, y_tr, y_va = cancer
    kwargs: dict[str, Any] = {"x_val": x_va, "y_val": y_va, "n_classes": 2, "epochs": 3, "batch_size": 16}
    first, h1 = fit_torch_mlp(x_tr, y_tr, "classification", random_state=7, **kwargs)
    second, h2 = fit_torch_mlp(x_tr, y_tr, "classification", random_state=7, **kwargs)
    other, h3 = fit_torch_mlp(x_tr, y_tr, "classification", random_state=8, **kwargs)
    assert h1 == h2
    for name, tensor in first.module.state_dict().items():
        assert np.array_equal(tensor.numpy(), second.module.state_dict()[name].numpy()), name
    assert np.array_equal(first.predict_proba(x_va), second.predict_proba(x_va))
    assert not np.array_equal(first.predict_proba(x_va), other.predict_proba(x_va))
    assert h1 != h3


def test_dropout_fit_is_reproducible_and_leaves_the_global_rng_alone(cancer: tuple[Any, ...]) -> None:
    import torch

    x_tr, x_va, y_tr, _ = cancer
    before = torch.get_rng_state()
    kwargs: dict[str, Any] = {"n_classes": 2, "epochs": 2, "dropout": 0.5, "random_state": 3}
    first, _ = fit_torch_mlp(x_tr, y_tr, "classification", **kwargs)
    assert torch.equal(torch.get_rng_state(), before)
    second, _ = fit_torch_mlp(x_tr, y_tr, "classification", **kwargs)
    assert np.array_equal(first.predict_proba(x_va), second.predict_proba(x_va))
    assert sum(type(m).__name__ == "Dropout" for m in first.module) == 2


def test_early_stopping_stops_and_restores_best_weights() -> None:
    fit_noise_with_early_stopping(fit_torch_mlp, epochs=200, patience=3)


def test_check_cancelled_stops_training(cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    # 15 checks per epoch (one before it, one per batch of 32 of 426 rows): the 40th is in epoch 3.
    assert fit_until_cancelled(fit_torch_mlp, x_tr, y_tr, batch_size=32, stop_at=40) == [1, 2]


def test_nan_features_are_refused_naming_the_data(cancer: tuple[Any, ...]) -> None:
    x_tr, x_va, y_tr, y_va = cancer
    bad = x_tr.copy()
    bad[3, 5] = np.nan
    with pytest.raises(InvalidInputError) as err:
        fit_torch_mlp(bad, y_tr, "classification", n_classes=2, epochs=1)
    assert err.value.field == "train_data_s3_uri" and "missing" in str(err.value)
    bad_val = x_va.copy()
    bad_val[0, 0] = np.inf
    with pytest.raises(InvalidInputError) as err:
        fit_torch_mlp(x_tr, y_tr, "classification", x_val=bad_val, y_val=y_va, n_classes=2, epochs=1)
    assert err.value.field == "validation_data_s3_uri"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_classes": 1}, "target_column"),
        ({"n_classes": 2, "task_type": "clustering"}, "task_type"),
        ({"n_classes": 2, "learning_rate": 0.0}, "learning_rate"),
        ({"n_classes": 2, "hidden_layers": (8, 0)}, "hidden_layers"),
        ({"n_classes": 2, "epochs": 0}, "epochs"),
    ],
)
def test_bad_arguments_are_refused_naming_the_input(
    cancer: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    x_tr, _, y_tr, _ = cancer
    task = kwargs.pop("task_type", "classification")
    with pytest.raises(InvalidInputError) as err:
        fit_torch_mlp(x_tr, y_tr, task, **kwargs)
    assert err.value.field == field


def test_labels_outside_the_classes_are_refused(cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    with pytest.raises(InvalidInputError) as err:
        fit_torch_mlp(x_tr, y_tr + 1, "classification", n_classes=2, epochs=1)
    assert err.value.field == "target_column" and "0..1" in str(err.value)


# ---------------------------------------------------------------------------- bundles
@pytest.fixture
def storage(tmp_path: Path) -> S3Utils:
    return S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(tmp_path)}))


def _write(storage: S3Utils, model: TorchMLP, key: str = "models/nn") -> Path:
    meta = {"algorithm": "neural_network", "task_type": model.task_type}
    write_bundle(storage, storage.resolve(key), model, "torch", meta)
    return storage.root / key


def test_bundle_round_trip_gives_identical_predictions(storage: S3Utils, cancer: tuple[Any, ...]) -> None:
    x_tr, x_va, y_tr, _ = cancer
    model, _ = fit_torch_mlp(x_tr, y_tr, "classification", n_classes=2, epochs=2, random_state=1)
    folder = _write(storage, model)
    assert bundle_files(folder) == {"model.safetensors", "architecture.json", "metadata.json"}
    # safetensors starts with a little-endian header length and a JSON header, never a pickle.
    raw = (folder / "model.safetensors").read_bytes()
    assert raw[8:9] == b"{" and not raw.startswith(b"\x80")
    loaded = read_bundle(storage, "models/nn").model
    assert isinstance(loaded, TorchMLPClassifier)
    assert loaded.architecture == model.architecture
    assert np.array_equal(loaded.predict(x_va), model.predict(x_va))
    assert np.array_equal(loaded.predict_proba(x_va), model.predict_proba(x_va))


def test_regression_bundle_keeps_target_scaling(storage: S3Utils) -> None:
    x_tr, x_va, y_tr, _ = diabetes_split()
    model, _ = fit_torch_mlp(x_tr, y_tr, "regression", epochs=2, random_state=1)
    _write(storage, model, "models/reg")
    loaded = read_bundle(storage, "models/reg").model
    assert type(loaded) is TorchMLP and not hasattr(loaded, "predict_proba")
    assert loaded.architecture["target_mean"] == pytest.approx(float(np.mean(y_tr)))
    assert np.array_equal(loaded.predict(x_va), model.predict(x_va))


def test_tampered_weights_are_refused(storage: S3Utils, cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    model, _ = fit_torch_mlp(x_tr, y_tr, "classification", n_classes=2, epochs=1, random_state=1)
    folder = _write(storage, model)
    weights = bytearray((folder / "model.safetensors").read_bytes())
    weights[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(BadFormatError, match="sha256"):
        read_bundle(storage, "models/nn")


def test_forged_architecture_that_disagrees_with_weights_is_refused(storage: S3Utils, cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    model, _ = fit_torch_mlp(x_tr, y_tr, "classification", n_classes=2, epochs=1, random_state=1)
    folder = _write(storage, model)
    forged = {**model.architecture, "hidden_layers": [100_000, 100_000]}
    forge_artifact(folder, "architecture.json", json.dumps(forged).encode())
    with pytest.raises(BadFormatError, match="do not match"):
        read_bundle(storage, "models/nn")


class _Payload:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickled_weights_are_never_unpickled(storage: S3Utils, tmp_path: Path, cancer: tuple[Any, ...]) -> None:
    x_tr, _, y_tr, _ = cancer
    model, _ = fit_torch_mlp(x_tr, y_tr, "classification", n_classes=2, epochs=1, random_state=1)
    folder = _write(storage, model)
    marker = tmp_path / "pwned"
    forge_artifact(folder, "model.safetensors", pickle.dumps(_Payload(marker)))
    with pytest.raises(BadFormatError, match="cannot read the torch weights"):
        read_bundle(storage, "models/nn")
    assert not marker.exists()


def test_server_import_loads_no_deep_learning_framework() -> None:
    code = (
        "import sys, json\n"
        "import mcp_server.server, mcp_server.common.torch_models, mcp_server.common.keras_models\n"
        "print(json.dumps(sorted(m for m in ('torch', 'tensorflow', 'keras', 'safetensors') if m in sys.modules)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=root
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
