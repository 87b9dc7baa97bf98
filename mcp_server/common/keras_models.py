"""Keras 3 (TensorFlow backend) multilayer perceptron: prediction and safe save/load (building and
training are in `capabilities/ml_training/nets/keras_fit.py`).

Bundles hold `model.keras` (Keras' own zip of JSON config + HDF5 weights), loaded with
`safe_mode=True` and without custom objects, plus `architecture.json` for the wrapper's
metadata (task, classes, target scaling). Before loading, the zip's config is checked to name
only the layer classes this module builds.

Keras/TensorFlow are imported inside functions only (TensorFlow takes seconds to import), so
importing this module (the "keras" codec of `bundles.CODECS` calls it) stays cheap.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.common.exceptions import BadFormatError, ConfigError, InvalidInputError
from mcp_server.common.mlp import MLPClassifierModel, MLPModel, check_architecture
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


def import_keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ConfigError(
            f"Keras runs on the {keras.backend.backend()!r} backend; the tensorflow backend is required",
            hint="Unset KERAS_BACKEND or set it to 'tensorflow'.",
        )
    return keras


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


def wrap(model: Any, architecture: dict[str, Any], **info: Any) -> KerasMLP:
    cls = KerasMLPClassifier if architecture["task_type"] == "classification" else KerasMLP
    return cls(model, architecture, **info)


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
    keras = import_keras()
    try:
        model = keras.saving.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:  # Keras raises many types for a malformed archive
        raise BadFormatError(f"cannot load model.keras: {exc}", field="model_s3_uri") from exc
    shapes = (tuple(model.input_shape), tuple(model.output_shape))
    if shapes != ((None, arch["input_dim"]), (None, arch["output_dim"])):
        raise BadFormatError(
            "model.keras does not match architecture.json (input or output size)", field="model_s3_uri"
        )
    return wrap(model, arch)
