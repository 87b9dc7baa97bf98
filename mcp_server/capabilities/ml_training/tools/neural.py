"""train_neural_network: an MLP for classification or regression, in torch or Keras 3 (TensorFlow)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.data import resolve_seed, supervised_metadata, supervised_metrics
from mcp_server.capabilities.ml_training.schemas import (
    NeuralNetworkHyperparameters,
    TrainNeuralNetworkInput,
)
from mcp_server.capabilities.ml_training.tools.common import publish_bundle
from mcp_server.capabilities.ml_training.tools.supervised import load_supervised, supervised_result
from mcp_server.common.bundles import Family
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import Job
from mcp_server.common.s3_utils import Location, S3Utils

_SHORTCUTS = ("hidden_layers", "epochs", "batch_size", "learning_rate")


def prepare_neural_network(
    storage: S3Utils, params: TrainNeuralNetworkInput, model_loc: Location
) -> tuple[NeuralNetworkHyperparameters]:
    """Before the job: the settings, merged and checked."""
    return (effective_hyperparameters(params),)


def effective_hyperparameters(params: TrainNeuralNetworkInput) -> NeuralNetworkHyperparameters:
    """The top-level shortcuts and `hyperparameters` merged; the same setting given twice must agree."""
    base = params.hyperparameters or NeuralNetworkHyperparameters()
    given = params.hyperparameters.model_fields_set if params.hyperparameters else set()
    updates: dict[str, Any] = {}
    for name in _SHORTCUTS:
        value = getattr(params, name)
        if value is None:
            continue
        if name in given and getattr(base, name) != value:
            raise InvalidInputError(
                f"{name} is given twice with different values ({value!r} and hyperparameters.{name}="
                f"{getattr(base, name)!r})",
                field=name,
                hint="Pass it once.",
            )
        updates[name] = value
    return NeuralNetworkHyperparameters.model_validate({**base.model_dump(), **updates})


def _fitter(framework: str) -> tuple[Any, Family, str]:
    """(fit function, bundle family, library name) of a framework; imported only when used."""
    if framework == "pytorch":
        from mcp_server.capabilities.ml_training.nets.torch_fit import fit_torch_mlp

        return fit_torch_mlp, "torch", "torch"
    from mcp_server.capabilities.ml_training.nets.keras_fit import fit_keras_mlp

    return fit_keras_mlp, "keras", "keras"


def fit_neural_network(
    job: Job, storage: S3Utils, params: TrainNeuralNetworkInput, model_loc: Location, hp: NeuralNetworkHyperparameters
) -> dict[str, Any]:
    seed = resolve_seed(params.random_state)
    total = hp.epochs + 3
    job.report(0, total, "reading data")
    data = load_supervised(storage, params, seed, allow_missing_features=False)
    job.mark("load")
    job.check_cancelled()
    job.report(1, total, f"read {len(data.y_train)} training rows; building the {params.framework} model")
    fit, family, library = _fitter(params.framework)
    classification = data.task_type == "classification"
    y_train = data.encode(data.y_train) if classification else data.y_train.astype(np.float32)
    y_val = None
    if data.y_val is not None:
        y_val = data.encode(data.y_val) if classification else data.y_val.astype(np.float32)
    history: list[dict[str, Any]] = []

    def on_epoch(epoch: int, record: dict[str, Any]) -> None:
        entry = {"epoch": epoch + 1, **{k: v for k, v in record.items() if isinstance(v, int | float)}}
        history.append(entry)
        job.add_history(entry)
        loss = entry.get("val_loss", entry.get("loss"))
        job.report(2 + epoch, total, f"epoch {epoch + 1}/{hp.epochs}" + (f" loss {loss:.4g}" if loss else ""))

    model, _ = fit(
        data.x_train,
        y_train,
        data.task_type,
        x_val=data.x_val,
        y_val=y_val,
        hidden_layers=hp.hidden_layers,
        epochs=hp.epochs,
        batch_size=hp.batch_size,
        learning_rate=hp.learning_rate,
        random_state=seed,
        n_classes=len(data.classes) if data.classes else None,
        early_stopping_patience=hp.early_stopping_patience if data.x_val is not None else None,
        on_epoch=on_epoch,
        check_cancelled=job.begin_publish,
    )
    job.check_cancelled()
    job.mark("fit")
    metrics = supervised_metrics(model, data, label_encoded=classification, seed=seed)
    best_epoch = getattr(model, "best_epoch", None)
    job.mark("score")
    meta = supervised_metadata(
        data,
        algorithm="neural_network",
        hyperparameters=hp.model_dump(),
        metrics=metrics,
        history=history,
        seed=seed,
        label_encoded=classification,
        libraries=(library,),
        job_id=job.job_id,
        extra={"framework": params.framework, "epochs_run": len(history), "best_epoch": best_epoch},
    )
    final = publish_bundle(job, storage, model_loc, model, family, meta, total, preprocessor=data.preprocessor)
    return supervised_result(data, final, framework=params.framework, epochs_run=len(history), best_epoch=best_epoch)
