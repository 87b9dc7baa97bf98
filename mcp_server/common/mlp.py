"""The multilayer perceptrons' loading side, shared by the torch and Keras bundle codecs: the
architecture check and the sklearn-like prediction wrapper. Training lives in
`capabilities/ml_training/nets/`. Nothing here imports torch or TensorFlow.

The `architecture` dict (JSON, stored as `architecture.json` in a bundle) is everything needed to
rebuild a network and turn its raw outputs into predictions:

    type "mlp", framework "torch" | "keras", input_dim, hidden_layers, output_dim,
    activation "relu", dropout, task_type, n_classes, output "logits" | "linear",
    target_mean / target_std (regression: the network predicts standardised targets)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mcp_server.common.exceptions import BadFormatError, InvalidInputError

TASK_TYPES = ("classification", "regression")
ARCHITECTURE_TYPE = "mlp"
# Rows per forward pass at prediction time, so predicting on a large table needs bounded memory.
PREDICT_CHUNK = 8192


def check_architecture(raw: Any, framework: str) -> dict[str, Any]:
    """Validate a stored architecture.json before anything is built from it."""
    if not isinstance(raw, dict) or raw.get("type") != ARCHITECTURE_TYPE or raw.get("framework") != framework:
        raise BadFormatError(f"architecture.json does not describe a {framework} MLP")
    hidden = raw.get("hidden_layers")
    ints = [raw.get("input_dim"), raw.get("output_dim"), *(hidden if isinstance(hidden, list) else [None])]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in ints):
        raise BadFormatError("architecture.json has invalid layer sizes")
    task = raw.get("task_type")
    if task not in TASK_TYPES:
        raise BadFormatError(f"architecture.json has an unknown task_type {task!r}")
    if task == "classification" and (raw.get("n_classes") != raw["output_dim"] or raw["output_dim"] < 2):
        raise BadFormatError("architecture.json: n_classes does not match the output layer")
    if task == "regression":
        mean, std = raw.get("target_mean"), raw.get("target_std")
        if raw["output_dim"] != 1 or not all(isinstance(v, int | float) and math.isfinite(v) for v in (mean, std)):
            raise BadFormatError("architecture.json: regression needs one output and a finite target_mean/std")
    dropout = raw.get("dropout", 0.0)
    if not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise BadFormatError("architecture.json has an invalid dropout")
    return raw


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


# ---------------------------------------------------------------------------- prediction wrapper
class MLPModel:
    """sklearn-like face of a trained network: `predict(x)`, `architecture`, `task_type`.

    Subclasses implement `_forward(x)`: raw outputs (logits, or standardised regression values)
    for a float32 batch.
    """

    framework = ""

    def __init__(
        self,
        architecture: dict[str, Any],
        *,
        best_epoch: int | None = None,
        stopped_early: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.architecture = architecture
        self.task_type: str = architecture["task_type"]
        self.n_classes: int | None = architecture.get("n_classes")
        self.input_dim: int = architecture["input_dim"]
        self.best_epoch = best_epoch
        self.stopped_early = stopped_early
        self.random_state = random_state

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def raw_outputs(self, x: Any) -> np.ndarray:
        array = np.asarray(x, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.input_dim:
            raise InvalidInputError(
                f"the model takes {self.input_dim} feature columns, got data of shape {array.shape}",
                field="test_data_s3_uri",
            )
        if not np.isfinite(array).all():
            raise InvalidInputError(
                "the features contain missing or infinite values",
                field="test_data_s3_uri",
                hint="Apply the same missing-value handling as for training.",
            )
        if array.shape[0] == 0:
            return np.zeros((0, self.architecture["output_dim"]), dtype=np.float64)
        chunks = [self._forward(array[i : i + PREDICT_CHUNK]) for i in range(0, array.shape[0], PREDICT_CHUNK)]
        return np.concatenate(chunks).astype(np.float64)

    def predict(self, x: Any) -> np.ndarray:
        """Class indices 0..k-1 (classification) or values in the target's units (regression)."""
        outputs = self.raw_outputs(x)
        if self.task_type == "classification":
            return outputs.argmax(axis=1).astype(np.int64)
        return outputs[:, 0] * self.architecture["target_std"] + self.architecture["target_mean"]

    def __repr__(self) -> str:
        arch = self.architecture
        return f"{type(self).__name__}({arch['input_dim']} -> {arch['hidden_layers']} -> {arch['output_dim']})"


class MLPClassifierModel(MLPModel):
    """Adds `predict_proba`; only classifiers have it (evaluation checks with hasattr)."""

    def predict_proba(self, x: Any) -> np.ndarray:
        """(n, k) class probabilities, columns in class-index order."""
        return np.exp(log_softmax(self.raw_outputs(x)))
