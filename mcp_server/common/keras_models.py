"""Keras 3 (TensorFlow backend) multilayer perceptron: training, prediction, safe save/load.

Bundles hold `model.keras` (Keras' own zip of JSON config + HDF5 weights), loaded with
`safe_mode=True` and without custom objects, plus `architecture.json` for the wrapper's
metadata (task, classes, target scaling). Before loading, the zip's config is checked to name
only the layer classes this module builds.

Keras/TensorFlow are imported inside functions only (TensorFlow takes seconds to import), so
importing this module, which registers the "keras" bundle family, stays cheap.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.common import bundles
from mcp_server.common.exceptions import BadFormatError, ConfigError, InvalidInputError
from mcp_server.common.mlp_common import (
    CheckCancelled,
    MLPClassifierModel,
    MLPModel,
    OnEpoch,
    check_architecture,
    prepare_fit,
    run_epochs,
    seeds,
)
from mcp_server.common.s3_utils import json_bytes, parse_json

FRAMEWORK = "keras"
ARCHITECTURE_FILE = "architecture.json"
# The only layers an MLP of ours contains; any other class in a .keras config is refused.
_ALLOWED_LAYERS = {"Sequential", "InputLayer", "Dense", "Dropout"}
# Every (module, class) a model this server builds names, exactly: Keras imports the module a
# config names (any `keras.*` submodule), so a prefix check would let a crafted file pick one.
_ALLOWED_OBJECTS = {
    ("keras", "Sequential"),
    ("keras", "DTypePolicy"),
    ("keras.layers", "InputLayer"),
    ("keras.layers", "Dense"),
    ("keras.layers", "Dropout"),
    ("keras.initializers", "GlorotUniform"),
    ("keras.initializers", "Zeros"),
    # the training configuration saved with a fitted model (never compiled on load: compile=False)
    ("keras.optimizers", "Adam"),
    ("keras.losses", "SparseCategoricalCrossentropy"),
    ("keras.losses", "MeanSquaredError"),
}


def _keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"Keras runs on the {keras.backend.backend()!r} backend; the tensorflow backend is required",
            hint="Unset KERAS_BACKEND or set it to 'tensorflow'.",
        )
    return keras


def _build_model(keras: Any, architecture: dict[str, Any], seed: int) -> Any:
    """Sequential Dense(relu)(+Dropout) blocks and a final linear Dense (logits or one value).

    Every initializer and dropout layer gets its own seed, so a fit is reproducible without
    touching the process-wide random state other threads use.
    """
    hidden = architecture["hidden_layers"]
    dropout = float(architecture.get("dropout") or 0.0)
    layer_seeds = iter(seeds(seed, 2 * len(hidden) + 1))
    layers: list[Any] = [keras.Input(shape=(architecture["input_dim"],), name="features")]
    for i, width in enumerate(hidden, start=1):
        init = keras.initializers.GlorotUniform(seed=next(layer_seeds))
        layers.append(keras.layers.Dense(width, activation="relu", kernel_initializer=init, name=f"hidden_{i}"))
        drop_seed = next(layer_seeds)
        if dropout > 0:
            layers.append(keras.layers.Dropout(dropout, seed=drop_seed, name=f"dropout_{i}"))
    init = keras.initializers.GlorotUniform(seed=next(layer_seeds))
    layers.append(keras.layers.Dense(architecture["output_dim"], kernel_initializer=init, name="output"))
    return keras.Sequential(layers, name="mlp")


class KerasMLP(MLPModel):
    """A trained Keras MLP (regression, and base of the classifier)."""

    framework = FRAMEWORK

    def __init__(self, model: Any, architecture: dict[str, Any], **info: Any) -> None:
        super().__init__(architecture, **info)
        self.model = model

    def _forward(self, x: np.ndarray) -> np.ndarray:
        # A direct call, not model.predict(): no per-call setup, and safe from worker threads.
        return np.asarray(self.model(x, training=False))


class KerasMLPClassifier(KerasMLP, MLPClassifierModel):
    """A trained Keras MLP classifier: also `predict_proba`."""


def _wrap(model: Any, architecture: dict[str, Any], **info: Any) -> KerasMLP:
    cls = KerasMLPClassifier if architecture["task_type"] == "classification" else KerasMLP
    return cls(model, architecture, **info)


def fit_keras_mlp(
    x_train: Any,
    y_train: Any,
    task_type: str,
    *,
    x_val: Any = None,
    y_val: Any = None,
    hidden_layers: Sequence[int] = (64, 32),
    epochs: int = 50,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    random_state: int | None = None,
    n_classes: int | None = None,
    early_stopping_patience: int | None = None,
    on_epoch: OnEpoch | None = None,
    check_cancelled: CheckCancelled | None = None,
    dropout: float = 0.0,
) -> tuple[KerasMLP, list[dict[str, Any]]]:
    """Keras twin of `fit_torch_mlp` (same arguments, history records and behaviour)."""
    data = prepare_fit(
        FRAMEWORK,
        x_train,
        y_train,
        task_type,
        x_val=x_val,
        y_val=y_val,
        hidden_layers=hidden_layers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        random_state=random_state,
        n_classes=n_classes,
        early_stopping_patience=early_stopping_patience,
        dropout=dropout,
    )
    keras = _keras()
    arch = data.architecture
    build_seed, shuffle_seed = seeds(data.seed, 2)
    model = _build_model(keras, arch, build_seed)
    classification = task_type == "classification"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if classification
        else keras.losses.MeanSquaredError(),
        jit_compile=False,  # XLA compilation costs more than it saves on networks this small
    )
    rng = np.random.default_rng(shuffle_seed)

    class _Cancel(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if check_cancelled:
                check_cancelled()

    callbacks = [_Cancel()]

    def train_epoch(epoch: int) -> float:
        # We shuffle ourselves: Keras' own shuffling draws from the global TensorFlow seed.
        order = rng.permutation(len(data.x_train))
        result = model.fit(
            data.x_train[order],
            data.y_train[order],
            batch_size=int(batch_size),
            epochs=1,
            shuffle=False,
            verbose=0,
            callbacks=callbacks,
        )
        return float(result.history["loss"][-1])

    def val_outputs(features: np.ndarray) -> np.ndarray:
        return np.asarray(model(features, training=False))

    summary = run_epochs(
        data,
        epochs,
        train_epoch=train_epoch,
        val_outputs=val_outputs,
        get_weights=model.get_weights,
        set_weights=model.set_weights,
        early_stopping_patience=early_stopping_patience,
        on_epoch=on_epoch,
        check_cancelled=check_cancelled,
    )
    wrapped = _wrap(
        model, arch, best_epoch=summary.best_epoch, stopped_early=summary.stopped_early, random_state=data.seed
    )
    return wrapped, summary.history


# ---------------------------------------------------------------------------- bundle family
def save_keras_model(model: Any, path: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    """`model.save` to `path` (a .keras file); return `architecture.json` for the bundle."""
    if not isinstance(model, KerasMLP):
        raise InvalidInputError(f"expected a KerasMLP from fit_keras_mlp, got {type(model).__name__}")
    model.model.save(str(path))
    return {ARCHITECTURE_FILE: json_bytes(model.architecture)}


def _named_objects(config: Any) -> list[tuple[str, str]]:
    """(module, class_name) of every serialised object in a Keras config, however nested."""
    found: list[tuple[str, str]] = []
    if isinstance(config, dict):
        if "class_name" in config:
            found.append((str(config.get("module")), str(config["class_name"])))
        for value in config.values():
            found += _named_objects(value)
    elif isinstance(config, list):
        for item in config:
            found += _named_objects(item)
    return found


def _check_keras_file(path: Path) -> None:
    """Refuse an archive that names anything but Keras' own classes, or layers we never build.

    safe_mode already blocks lambdas; this also keeps out custom or third-party classes.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise BadFormatError(f"model.keras is not a Keras model archive ({exc})", field="model_s3_uri") from exc
    layers = config.get("config", {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(config, dict) or config.get("class_name") != "Sequential" or not isinstance(layers, list):
        raise BadFormatError("model.keras is not a Sequential model", field="model_s3_uri")
    foreign = {f"{m}.{c}" for m, c in _named_objects(config) if (m, c) not in _ALLOWED_OBJECTS}
    layer_names = {str(layer.get("class_name")) if isinstance(layer, dict) else "?" for layer in layers}
    if foreign or layer_names - _ALLOWED_LAYERS:
        refused = sorted(foreign | (layer_names - _ALLOWED_LAYERS))
        raise BadFormatError(f"model.keras contains classes this server does not load: {refused}", field="model_s3_uri")


def load_keras_model(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> KerasMLP:
    """Load `model.keras` in safe mode and wrap it with the metadata from architecture.json."""
    if ARCHITECTURE_FILE not in extra_files:
        raise BadFormatError(f"the keras bundle has no {ARCHITECTURE_FILE}", field="model_s3_uri")
    arch = check_architecture(parse_json(extra_files[ARCHITECTURE_FILE], ARCHITECTURE_FILE), FRAMEWORK)
    _check_keras_file(path)
    keras = _keras()
    try:
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a malformed archive
        raise BadFormatError(f"cannot load model.keras: {exc}", field="model_s3_uri") from exc
    shapes = (tuple(model.input_shape), tuple(model.output_shape))
    if shapes != ((None, arch["input_dim"]), (None, arch["output_dim"])):
        raise BadFormatError(
            "model.keras does not match architecture.json (input or output size)", field="model_s3_uri"
        )
    return _wrap(model, arch)


bundles.register_family(FRAMEWORK, save_keras_model, load_keras_model)
