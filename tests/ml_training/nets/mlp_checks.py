"""Data sets, checks and bundle-forging helpers shared by the torch and Keras MLP tests."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def breast_cancer_split() -> Split:
    """Breast cancer, standardised on the training part (the networks get preprocessed input)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va


def diabetes_split() -> Split:
    """Diabetes with its raw targets (~25..346): the networks must cope with the target scale."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_diabetes(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=2)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va


def noise_split(seed: int = 0) -> Split:
    """Random labels: a big network overfits at once, so validation loss soon rises."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(160, 20))
    y = rng.integers(0, 2, size=160)
    return x[:100], x[100:], y[:100], y[100:]


def forge_artifact(bundle_dir: Path, name: str, data: bytes) -> None:
    """Replace a bundle file AND its recorded sha256: an attacker with write access to storage."""
    (bundle_dir / name).write_bytes(data)
    meta_path = bundle_dir / "metadata.json"
    metadata = json.loads(meta_path.read_text())
    metadata["artifacts"][name] = hashlib.sha256(data).hexdigest()
    meta_path.write_text(json.dumps(metadata))


def bundle_files(bundle_dir: Path) -> set[str]:
    return {p.name for p in bundle_dir.iterdir()}


# ---------------------------------------------------------------------------- checks both frameworks pass
def check_breast_cancer_classifier(model: Any, history: list[dict[str, Any]], x_va: np.ndarray, y_va: Any) -> None:
    """>= 90 % accuracy, and the history's validation numbers are the model's real scores."""
    from sklearn.metrics import accuracy_score, log_loss

    accuracy = accuracy_score(y_va, model.predict(x_va))
    assert accuracy >= 0.9
    assert history[-1]["val_accuracy"] == pytest.approx(accuracy)
    proba = model.predict_proba(x_va)
    assert proba.shape == (len(y_va), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert np.array_equal(proba.argmax(axis=1), model.predict(x_va))
    assert history[-1]["val_loss"] == pytest.approx(log_loss(y_va, proba), rel=1e-4)
    assert history[-1]["loss"] < history[0]["loss"]


def check_epoch_calls(calls: list[tuple[int, dict[str, Any]]], history: list[dict[str, Any]], epochs: int) -> None:
    assert [i for i, _ in calls] == list(range(epochs))
    assert [record["epoch"] for _, record in calls] == list(range(1, epochs + 1))
    assert [record for _, record in calls] == history
    assert all({"loss", "val_loss", "val_accuracy"} <= set(record) for _, record in calls)


def check_diabetes_regressor(model: Any, history: list[dict[str, Any]], x_va: np.ndarray, y_va: Any) -> None:
    """Useful predictions in the target's own units; no predict_proba; history = real scores."""
    from sklearn.metrics import mean_squared_error, r2_score

    predictions = model.predict(x_va)
    assert r2_score(y_va, predictions) > 0.3
    assert abs(predictions.mean() - np.mean(y_va)) < 30  # original units, not standardised ones
    assert not hasattr(model, "predict_proba")
    assert model.n_classes is None and model.architecture["output_dim"] == 1
    mse = mean_squared_error(y_va, predictions)
    assert history[-1]["val_loss"] == pytest.approx(mse, rel=1e-4)
    assert history[-1]["val_rmse"] == pytest.approx(math.sqrt(mse), rel=1e-4)


def fit_noise_with_early_stopping(fit: Callable[..., Any], epochs: int, patience: int) -> None:
    """Stops `patience` epochs after the best val_loss, and the returned model IS that best one."""
    from sklearn.metrics import log_loss

    x_tr, x_va, y_tr, y_va = noise_split()
    model, history = fit(
        x_tr,
        y_tr,
        "classification",
        x_val=x_va,
        y_val=y_va,
        n_classes=2,
        hidden_layers=(128, 128),
        learning_rate=1e-2,
        epochs=epochs,
        random_state=0,
        early_stopping_patience=patience,
    )
    losses = [record["val_loss"] for record in history]
    best = int(np.argmin(losses))
    assert len(history) < epochs and model.stopped_early
    assert len(history) == best + 1 + patience
    assert model.best_epoch == best + 1
    restored = log_loss(y_va, model.predict_proba(x_va))
    assert restored == pytest.approx(losses[best], rel=1e-4)
    assert restored != pytest.approx(losses[-1], rel=1e-4)


class Stop(Exception):
    """Raised by a test's check_cancelled."""


def fit_until_cancelled(fit: Callable[..., Any], x: np.ndarray, y: Any, batch_size: int, stop_at: int) -> list[int]:
    """Fit with a check_cancelled that raises on its `stop_at`-th call; the epochs reported before."""
    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] == stop_at:
            raise Stop

    epochs_seen: list[int] = []
    with pytest.raises(Stop):
        fit(
            x,
            y,
            "classification",
            n_classes=2,
            epochs=50,
            batch_size=batch_size,
            check_cancelled=check,
            on_epoch=lambda i, record: epochs_seen.append(record["epoch"]),
        )
    assert calls["n"] == stop_at
    return epochs_seen


def fit_breast_cancer(fit: Callable[..., Any], epochs: int) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """(model, history, on_epoch calls) of a seeded breast-cancer fit with validation data."""
    x_tr, x_va, y_tr, y_va = breast_cancer_split()
    calls: list[tuple[int, dict[str, Any]]] = []
    model, history = fit(
        x_tr,
        y_tr,
        "classification",
        x_val=x_va,
        y_val=y_va,
        n_classes=2,
        epochs=epochs,
        random_state=0,
        on_epoch=lambda i, record: calls.append((i, record)),
    )
    return model, history, calls
