"""What the torch and Keras multilayer perceptrons share when training: argument checks, target
scaling, validation scores and the epoch loop (early stopping, progress and cancellation
callbacks). Building, training one epoch and saving are framework specific (`torch_fit.py`,
`keras_fit.py`; the networks and their bundle codecs are in `common/torch_models.py`,
`common/keras_models.py`). Nothing here imports torch or TensorFlow.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.mlp import ARCHITECTURE_TYPE, TASK_TYPES, log_softmax

OnEpoch = Callable[[int, dict[str, Any]], None]
CheckCancelled = Callable[[], None]


@dataclass
class FitData:
    """Checked training inputs, in the dtypes the frameworks want."""

    x_train: np.ndarray  # float32 (n, d)
    y_train: np.ndarray  # int64 class indices, or float32 targets standardised with target_mean/std
    x_val: np.ndarray | None  # float32
    y_val: np.ndarray | None  # int64 class indices, or float64 targets in original units
    architecture: dict[str, Any]
    seed: int


@dataclass
class FitSummary:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based; set when early stopping watched val_loss
    stopped_early: bool = False


def _features(x: Any, name: str, field_name: str) -> np.ndarray:
    try:
        array = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the {name} features are not numeric ({exc})",
            field=field_name,
            hint="Encode categorical columns first (preprocess_supervised).",
        ) from exc
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidInputError(
            f"the {name} features must be a non-empty table (rows x columns), got shape {array.shape}",
            field=field_name,
        )
    bad = ~np.isfinite(array)
    if bad.any():
        columns = sorted(set(np.nonzero(bad)[1].tolist()))
        raise InvalidInputError(
            f"the {name} features contain {int(bad.sum())} missing or infinite value(s) "
            f"(column positions {columns[:10]})",
            field=field_name,
            hint="Impute or drop them first (preprocess_supervised with handle_missing).",
        )
    return array


def _class_indices(y: Any, n_classes: int, name: str) -> np.ndarray:
    array = np.asarray(y).ravel()
    try:
        numeric = array.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"the {name} labels must be class indices 0..{n_classes - 1}", field="target_column"
        ) from exc
    if not np.isfinite(numeric).all() or (numeric != np.round(numeric)).any():
        raise InvalidInputError(f"the {name} labels must be whole class indices", field="target_column")
    if numeric.size and (numeric.min() < 0 or numeric.max() >= n_classes):
        raise InvalidInputError(
            f"the {name} labels must lie in 0..{n_classes - 1}, got {numeric.min():g}..{numeric.max():g}",
            field="target_column",
        )
    return numeric.astype(np.int64)


def _targets(y: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(y, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"the {name} target is not numeric", field="target_column") from exc
    if not np.isfinite(array).all():
        raise InvalidInputError(
            f"the {name} target contains missing or infinite values",
            field="target_column",
            hint="Drop those rows first.",
        )
    return array


def _check_hyperparameters(
    hidden_layers: Sequence[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    early_stopping_patience: int | None,
    dropout: float,
) -> list[int]:
    try:
        widths = [int(w) for w in hidden_layers]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("hidden_layers must be a list of layer widths", field="hidden_layers") from exc
    if any(w < 1 or w != float(v) for w, v in zip(widths, hidden_layers, strict=True)):
        raise InvalidInputError(
            f"hidden_layers must hold positive whole numbers, got {list(hidden_layers)}", field="hidden_layers"
        )
    if int(epochs) < 1:
        raise InvalidInputError(f"epochs must be at least 1, got {epochs}", field="epochs")
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}", field="batch_size")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        raise InvalidInputError(f"learning_rate must be positive, got {learning_rate}", field="learning_rate")
    if early_stopping_patience is not None and int(early_stopping_patience) < 1:
        raise InvalidInputError(
            f"early_stopping_patience must be at least 1, got {early_stopping_patience}",
            field="early_stopping_patience",
        )
    if not 0.0 <= dropout < 1.0:
        raise InvalidInputError(f"dropout must be in [0, 1), got {dropout}", field="dropout")
    return widths


def mlp_architecture(
    framework: str,
    input_dim: int,
    widths: list[int],
    task_type: str,
    n_classes: int | None,
    dropout: float,
    target_mean: float | None,
    target_std: float | None,
) -> dict[str, Any]:
    """The network description saved as architecture.json (also built by the Ray backend)."""
    classification = task_type == "classification"
    return {
        "type": ARCHITECTURE_TYPE,
        "framework": framework,
        "input_dim": input_dim,
        "hidden_layers": widths,
        "output_dim": n_classes if classification else 1,
        "activation": "relu",
        "dropout": dropout,
        "task_type": task_type,
        "n_classes": n_classes if classification else None,
        "output": "logits" if classification else "linear",
        "target_mean": target_mean,
        "target_std": target_std,
    }


def prepare_fit(
    framework: str,
    x_train: Any,
    y_train: Any,
    task_type: str,
    *,
    x_val: Any,
    y_val: Any,
    hidden_layers: Sequence[int],
    epochs: int,
    batch_size: int,
    learning_rate: float,
    random_state: int | None,
    n_classes: int | None,
    early_stopping_patience: int | None,
    dropout: float,
) -> FitData:
    """Check every argument of `fit_*_mlp` and return the data ready to train on.

    Raises InvalidInputError naming the input at fault (data URIs for bad feature values).
    """
    if task_type not in TASK_TYPES:
        raise InvalidInputError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}", field="task_type")
    widths = _check_hyperparameters(hidden_layers, epochs, batch_size, learning_rate, early_stopping_patience, dropout)
    x_tr = _features(x_train, "training", "train_data_s3_uri")
    if len(np.asarray(y_train).ravel()) != x_tr.shape[0]:
        raise InvalidInputError(
            f"the training data has {x_tr.shape[0]} feature rows but {len(np.asarray(y_train).ravel())} targets",
            field="train_data_s3_uri",
        )
    x_va = None
    if (x_val is None) != (y_val is None):
        raise InvalidInputError(
            "validation features and targets must be given together", field="validation_data_s3_uri"
        )
    if x_val is not None:
        x_va = _features(x_val, "validation", "validation_data_s3_uri")
        if x_va.shape[1] != x_tr.shape[1]:
            raise InvalidInputError(
                f"the validation data has {x_va.shape[1]} feature columns, the training data {x_tr.shape[1]}",
                field="validation_data_s3_uri",
                hint="Preprocess both with the same pipeline.",
            )
        if len(np.asarray(y_val).ravel()) != x_va.shape[0]:
            raise InvalidInputError(
                "the validation data has a different number of feature rows and targets",
                field="validation_data_s3_uri",
            )

    target_mean: float | None = None
    target_std: float | None = None
    if task_type == "classification":
        if n_classes is None:
            # Without an explicit count, the largest index seen decides (trainers pass it).
            seen = [np.asarray(y_train).ravel(), *([np.asarray(y_val).ravel()] if y_val is not None else [])]
            n_classes = int(max(np.nanmax(part.astype(np.float64)) for part in seen if part.size)) + 1
        if int(n_classes) < 2:
            raise InvalidInputError(
                f"classification needs at least 2 classes, got {n_classes}",
                field="target_column",
                hint="Check the target column, or use task_type 'regression'.",
            )
        n_classes = int(n_classes)
        y_tr: np.ndarray = _class_indices(y_train, n_classes, "training")
        y_va = _class_indices(y_val, n_classes, "validation") if y_val is not None else None
    else:
        n_classes = None
        raw = _targets(y_train, "training")
        # Networks train badly on targets in the hundreds (diabetes): fit standardised targets and
        # undo the scaling at prediction time.
        target_mean = float(raw.mean())
        std = float(raw.std())
        target_std = std if std > 1e-12 else 1.0
        y_tr = ((raw - target_mean) / target_std).astype(np.float32)
        y_va = _targets(y_val, "validation") if y_val is not None else None

    architecture = mlp_architecture(
        framework, int(x_tr.shape[1]), widths, task_type, n_classes, float(dropout), target_mean, target_std
    )
    seed = int(random_state) if random_state is not None else secrets.randbelow(2**31)
    return FitData(
        x_train=x_tr.astype(np.float32),
        y_train=y_tr,
        x_val=x_va.astype(np.float32) if x_va is not None else None,
        y_val=y_va,
        architecture=architecture,
        seed=seed,
    )


def seeds(seed: int, count: int) -> list[int]:
    """`count` independent non-negative int32 seeds derived from one seed."""
    return [int(s) & 0x7FFFFFFF for s in np.random.SeedSequence(seed).generate_state(count)]


# ---------------------------------------------------------------------------- outputs -> scores
def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def validation_scores(architecture: dict[str, Any], outputs: np.ndarray, y_val: np.ndarray) -> dict[str, float | None]:
    """val_loss (cross-entropy, or MSE in target units) plus val_accuracy or val_rmse."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if architecture["task_type"] == "classification":
        log_p = log_softmax(outputs)
        loss = float(-log_p[np.arange(len(y_val)), y_val].mean())
        accuracy = float((outputs.argmax(axis=1) == y_val).mean())
        return {"val_loss": _finite_or_none(loss), "val_accuracy": accuracy}
    predictions = outputs[:, 0] * architecture["target_std"] + architecture["target_mean"]
    mse = float(np.mean((predictions - y_val) ** 2))
    return {"val_loss": _finite_or_none(mse), "val_rmse": _finite_or_none(math.sqrt(mse))}


# ---------------------------------------------------------------------------- the epoch loop
def run_epochs(
    data: FitData,
    epochs: int,
    *,
    train_epoch: Callable[[int], float],
    val_outputs: Callable[[np.ndarray], np.ndarray],
    get_weights: Callable[[], Any],
    set_weights: Callable[[Any], None],
    early_stopping_patience: int | None,
    on_epoch: OnEpoch | None,
    check_cancelled: CheckCancelled | None,
) -> FitSummary:
    """Train epoch by epoch, scoring validation data, reporting, and stopping early.

    `train_epoch(i)` runs one shuffled pass and returns its mean batch loss in the units the
    network trains in; `val_outputs(x)` gives raw network outputs. With validation data and a
    patience, training stops once val_loss has not improved for that many epochs and the best
    weights are put back.
    """
    summary = FitSummary()
    arch = data.architecture
    # Regression trains on standardised targets; report its loss in the target's own units.
    loss_scale = arch["target_std"] ** 2 if arch["task_type"] == "regression" else 1.0
    watch = data.x_val is not None and early_stopping_patience is not None
    best_loss = math.inf
    best_weights: Any = None
    for epoch in range(int(epochs)):
        if check_cancelled:
            check_cancelled()
        loss = train_epoch(epoch) * loss_scale
        if not math.isfinite(loss):
            raise InvalidInputError(
                f"training diverged (the loss became {loss} at epoch {epoch + 1})",
                field="learning_rate",
                hint="Lower learning_rate, or check that the features are scaled.",
            )
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": loss}
        if data.x_val is not None and data.y_val is not None:
            record.update(validation_scores(arch, val_outputs(data.x_val), data.y_val))
        summary.history.append(record)
        if on_epoch:
            on_epoch(epoch, dict(record))
        if not watch:
            continue
        val_loss = record.get("val_loss")
        if val_loss is not None and val_loss < best_loss:
            best_loss = val_loss
            best_weights = get_weights()
            summary.best_epoch = epoch + 1
        elif epoch + 1 - (summary.best_epoch or 0) >= int(early_stopping_patience or 0):
            summary.stopped_early = epoch + 1 < int(epochs)
            break
    if watch and best_weights is not None and summary.best_epoch != len(summary.history):
        set_weights(best_weights)
    return summary
