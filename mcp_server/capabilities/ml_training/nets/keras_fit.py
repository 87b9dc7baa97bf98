"""Building and training the Keras multilayer perceptron (prediction and its bundle codec are in
`common/keras_models.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.nets.fitting import CheckCancelled, OnEpoch, prepare_fit, run_epochs, seeds
from mcp_server.common.keras_models import FRAMEWORK, KerasMLP, import_keras, wrap


def build_model(keras: Any, architecture: dict[str, Any], seed: int) -> Any:
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
    keras = import_keras()
    arch = data.architecture
    build_seed, shuffle_seed = seeds(data.seed, 2)
    model = build_model(keras, arch, build_seed)
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
    wrapped = wrap(
        model, arch, best_epoch=summary.best_epoch, stopped_early=summary.stopped_early, random_state=data.seed
    )
    return wrapped, summary.history
