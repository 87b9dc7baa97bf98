"""train_random_forest and train_xgboost: tree ensembles for classification and regression."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.data import (
    SupervisedData,
    importance_dict,
    prepare_supervised,
    resolve_seed,
    sample_rows,
    score,
    supervised_metadata,
    supervised_metrics,
)
from mcp_server.capabilities.ml_training.schemas import (
    RandomForestHyperparameters,
    SupervisedInput,
    TrainRandomForestInput,
    TrainXGBoostInput,
    XGBoostHyperparameters,
)
from mcp_server.capabilities.ml_training.tools.common import publish_bundle
from mcp_server.common.exceptions import DatasetTooLargeError, InvalidInputError
from mcp_server.common.jobs import Job
from mcp_server.common.s3_utils import Location, S3Utils

_CLASSIFICATION_CRITERIA = ("gini", "entropy", "log_loss")
_REGRESSION_CRITERIA = ("squared_error", "absolute_error", "friedman_mse", "poisson")
_HISTORY_SCORE_ROWS = 5000  # per-batch validation scores use at most this many rows
_RF_PROGRESS_BATCHES = 10
_TRAIN_CURVE_ROWS = 10_000  # XGBoost's per-round train metric is computed on at most this many rows


def load_supervised(storage: S3Utils, params: SupervisedInput, seed: int, **kwargs: Any) -> SupervisedData:
    try:
        return prepare_supervised(
            storage,
            train_uri=params.train_data_s3_uri,
            target_column=params.target_column,
            task_type=params.task_type,
            validation_uri=params.validation_data_s3_uri,
            validation_fraction=params.validation_fraction,
            feature_columns=params.feature_columns,
            seed=seed,
            **kwargs,
        )
    except DatasetTooLargeError as exc:
        if getattr(params, "backend", None) != "local":
            raise
        # This trainer can also train where the data is streamed, never loaded here: say so.
        raise DatasetTooLargeError(
            exc.message,
            field=exc.field,
            hint='Train it with backend: "ray" (Ray Train streams Parquet on a cluster; no size limit here), '
            "or use a smaller dataset, or raise MLOPS_MAX_DATASET_MB.",
        ) from None


def supervised_result(data: SupervisedData, meta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The fields every supervised trainer returns (the rest of its output model is `extra`)."""
    return {
        "model_s3_uri": meta["model_s3_uri"],
        "algorithm": meta["algorithm"],
        "task_type": data.task_type,
        "classes": data.classes,
        "metrics": meta["metrics"],
        "history": meta["history"],
        "feature_importance": meta.get("feature_importance"),
        "random_state": meta["random_state"],
        "n_train_rows": meta["n_train_rows"],
        "n_validation_rows": meta["n_validation_rows"],
        "warnings": data.warnings,
        **extra,
    }


# ------------------------------------------------------------------------- random forest
def _forest(task: str, hp: RandomForestHyperparameters, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    criterion = hp.criterion
    if criterion is not None and (criterion in _CLASSIFICATION_CRITERIA) != (task == "classification"):
        allowed = (
            _CLASSIFICATION_CRITERIA
            if task == "classification"
            else ("squared_error", "absolute_error", "friedman_mse", "poisson")
        )
        raise InvalidInputError(
            f"criterion {criterion!r} does not fit {task}",
            field="hyperparameters.criterion",
            hint=f"Use one of {', '.join(allowed)}.",
        )
    if hp.class_weight is not None and task != "classification":
        raise InvalidInputError("class_weight applies to classification only", field="hyperparameters.class_weight")
    common: dict[str, Any] = {
        "max_depth": hp.max_depth,
        "min_samples_split": hp.min_samples_split,
        "min_samples_leaf": hp.min_samples_leaf,
        "max_features": hp.max_features,
        "bootstrap": hp.bootstrap,
        "max_samples": hp.max_samples if hp.bootstrap else None,
        "n_jobs": hp.n_jobs,
        "random_state": seed,
        "warm_start": True,  # trees are added in batches so progress and cancel work mid-fit
    }
    if task == "classification":
        return RandomForestClassifier(criterion=criterion or "gini", class_weight=hp.class_weight, **common)
    return RandomForestRegressor(criterion=criterion or "squared_error", **common)


def fit_random_forest(
    job: Job, storage: S3Utils, params: TrainRandomForestInput, model_loc: Location
) -> dict[str, Any]:
    import os

    hp = params.hyperparameters or RandomForestHyperparameters()
    seed = resolve_seed(params.random_state)
    total = hp.n_estimators + 2
    job.report(0, total, "reading data")
    data = load_supervised(storage, params, seed)
    job.mark("load")
    job.check_cancelled()
    job.report(1, total, f"read {len(data.y_train)} training rows")
    forest = _forest(data.task_type, hp, seed)
    cpus = (os.cpu_count() or 1) if hp.n_jobs == -1 else hp.n_jobs
    # Each batch waits for its slowest tree, so batches of a few trees per core keep the cores busy.
    batch = max(2 * cpus, math.ceil(hp.n_estimators / _RF_PROGRESS_BATCHES))
    history: list[dict[str, Any]] = []
    grown = 0
    while grown < hp.n_estimators:
        grown = min(hp.n_estimators, grown + batch)
        forest.n_estimators = grown
        forest.fit(data.x_train, data.y_train)
        job.check_cancelled()
        record: dict[str, Any] = {"n_estimators": grown}
        if data.x_val is not None and data.y_val is not None:
            scores = score(
                forest, data.x_val, data.y_val, data.task_type, data.classes, False, max_rows=_HISTORY_SCORE_ROWS
            )
            key = "accuracy" if data.task_type == "classification" else "r2"
            record[f"validation_{key}"] = scores[key]
        history.append(record)
        job.add_history(record)
        job.report(1 + grown, total, f"{grown}/{hp.n_estimators} trees")
    forest.warm_start = False  # the saved model should refit from scratch if anyone refits it
    job.mark("fit")
    metrics = supervised_metrics(forest, data, label_encoded=False, seed=seed)
    job.mark("score")
    meta = supervised_metadata(
        data,
        algorithm="random_forest",
        hyperparameters=hp.model_dump(),
        metrics=metrics,
        history=history,
        seed=seed,
        label_encoded=False,
        feature_importance=importance_dict(data.feature_names, forest.feature_importances_),
        job_id=job.job_id,
    )
    final = publish_bundle(job, storage, model_loc, forest, "sklearn", meta, total, preprocessor=data.preprocessor)
    return supervised_result(data, final)


# ------------------------------------------------------------------------- XGBoost
def _round_callback(job: Job, total: int) -> Any:
    import xgboost as xgb

    class RoundProgress(xgb.callback.TrainingCallback):
        """Progress per boosting round; a cancelled job stops between rounds."""

        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            job.check_cancelled()
            job.report(2 + epoch, total, f"round {epoch + 1}/{total - 3}")
            return False

    return RoundProgress()


def _xgb_history(evals: dict[str, dict[str, list[float]]]) -> list[dict[str, Any]]:
    """evals_result() -> one record per round: {"iteration", "train_<metric>", "validation_<metric>"}."""
    names = {"validation_0": "train", "validation_1": "validation"}
    rounds = max((len(v) for metrics in evals.values() for v in metrics.values()), default=0)
    history: list[dict[str, Any]] = [{"iteration": i} for i in range(rounds)]
    for set_name, metrics in evals.items():
        for metric, values in metrics.items():
            for i, value in enumerate(values):
                history[i][f"{names.get(set_name, set_name)}_{metric}"] = float(value)
    return history


def fit_xgboost(job: Job, storage: S3Utils, params: TrainXGBoostInput, model_loc: Location) -> dict[str, Any]:
    import xgboost as xgb

    hp = params.hyperparameters or XGBoostHyperparameters()
    seed = resolve_seed(params.random_state)
    total = hp.n_estimators + 3
    job.report(0, total, "reading data")
    data = load_supervised(storage, params, seed)
    job.mark("load")
    job.check_cancelled()
    job.report(1, total, f"read {len(data.y_train)} training rows")
    classification = data.task_type == "classification"
    y_train = data.encode(data.y_train) if classification else data.y_train.astype(np.float32)
    # The train curve: the training matrix itself (the same object, so XGBoost reuses its prediction
    # cache), or a fixed sample of a large one, whose per-round metric would otherwise cost more
    # than the boosting round itself.
    rows = sample_rows(len(y_train), _TRAIN_CURVE_ROWS, seed)
    eval_set = [(data.x_train, y_train) if rows is None else (data.x_train[rows], y_train[rows])]
    early_stopping = None
    if data.x_val is not None and data.y_val is not None:
        y_val = data.encode(data.y_val) if classification else data.y_val.astype(np.float32)
        eval_set.append((data.x_val, y_val))
        early_stopping = hp.early_stopping_rounds
    settings = hp.model_dump(exclude={"early_stopping_rounds"})
    if not classification or len(data.classes or []) != 2:
        settings.pop("scale_pos_weight")
    estimator: Any = xgb.XGBClassifier if classification else xgb.XGBRegressor
    model = estimator(
        **settings,
        random_state=seed,
        early_stopping_rounds=early_stopping,
        callbacks=[_round_callback(job, total)],
    )
    try:
        model.fit(data.x_train, y_train, eval_set=eval_set, verbose=False)
    except xgb.core.XGBoostError as exc:
        # XGBoost checks its parameters itself (in float32: 1e308 is out of range): say which.
        detail = str(exc).strip().splitlines()[0].split(": ", 1)[-1][:200]
        raise InvalidInputError(
            f"XGBoost refused the settings: {detail}",
            field="hyperparameters",
            hint="Use values in XGBoost's ranges (floats must fit in float32, below 3.4e38).",
        ) from None
    job.check_cancelled()
    model.set_params(callbacks=None)
    history = _xgb_history(model.evals_result())
    for record in history:
        job.add_history(record)
    best = int(model.best_iteration) if early_stopping is not None and hasattr(model, "best_iteration") else None
    job.mark("fit")
    metrics = supervised_metrics(model, data, label_encoded=classification, seed=seed)
    job.mark("score")
    meta = supervised_metadata(
        data,
        algorithm="xgboost",
        hyperparameters=hp.model_dump(),
        metrics=metrics,
        history=history,
        seed=seed,
        label_encoded=classification,
        libraries=("xgboost",),
        feature_importance=importance_dict(data.feature_names, model.feature_importances_),
        job_id=job.job_id,
        extra={"best_iteration": best},
    )
    final = publish_bundle(job, storage, model_loc, model, "xgboost", meta, total, preprocessor=data.preprocessor)
    return supervised_result(data, final, best_iteration=best)
