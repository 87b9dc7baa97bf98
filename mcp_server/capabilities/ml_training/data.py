"""Training data for ml_training: reading training data (with its preprocessing lineage), features and
labels, validation splits, train/validation scores and the bundle metadata every trainer writes.

Trainers call these so that every model bundle carries the same metadata keys (see
`mcp_server/common/inference.py` for the ones evaluation relies on) and every dataset is read,
fingerprinted and checked the same way.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.common import bundles
from mcp_server.common.datasets import read_dataset, require_columns
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.inference import feature_matrix, predict, predict_proba, target_vector
from mcp_server.common.logger import get_logger
from mcp_server.common.metrics import classification_metrics, regression_metrics
from mcp_server.common.s3_utils import S3Utils

_log = get_logger(__name__)

TRAIN_SCORE_MAX_ROWS = 50_000  # train metrics are computed on a fixed sample beyond this (±0.5 % at worst)
_CLASSIFICATION_MAX_DISTINCT = 20


def load_preprocessor(storage: S3Utils, lineage: dict[str, Any]) -> Any:
    """The fitted preprocessing pipeline named by the data's lineage (None when there is none)."""
    uri = lineage.get("pipeline_s3_uri")
    if not uri:
        return None
    loc = storage.resolve(str(uri), "train_data_s3_uri")
    if not storage.exists(loc):
        _log.warning("the lineage names pipeline %s, which no longer exists", loc.uri)
        return None
    with storage.local_file(loc) as path:
        return bundles.load_skops(path)


def resolve_seed(random_state: int | None) -> int:
    """The seed to use: the caller's, or a fresh one that is recorded so the run can be repeated."""
    return int(random_state) if random_state is not None else secrets.randbelow(2**31 - 1)


def json_value(value: Any) -> Any:
    """numpy scalars to plain Python (class labels go into JSON metadata)."""
    return value.item() if isinstance(value, np.generic) else value


def infer_task_type(target: pd.Series) -> str:
    """Classification for labels (text, bool, few integer values), regression for quantities."""
    if not pd.api.types.is_numeric_dtype(target) or pd.api.types.is_bool_dtype(target):
        return "classification"
    values = target.dropna().to_numpy()
    integral = bool(np.all(np.mod(values, 1) == 0)) if len(values) else False
    if integral and target.nunique() <= _CLASSIFICATION_MAX_DISTINCT:
        return "classification"
    return "regression"


def _features_meta(features: list[str]) -> dict[str, Any]:
    return {"feature_names": features}


@dataclass
class SupervisedData:
    """Everything a supervised trainer needs, with labels in their original values."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    task_type: str
    target_column: str
    feature_names: list[str]
    feature_dtypes: dict[str, str]
    classes: list[Any] | None
    training_data_uri: str
    data_fingerprint: str
    validation_data_uri: str | None = None
    validation_source: str | None = None  # "data" (explicit file) or "fraction" (held out)
    preprocessor: Any = None
    raw_feature_columns: list[str] | None = None
    warnings: list[str] = field(default_factory=list)

    class_values: np.ndarray | None = None  # np.unique of the training labels: sorted, as `classes`

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Original class labels -> indices 0..k-1 into `classes` (XGBoost and networks train on these)."""
        assert self.class_values is not None
        return np.searchsorted(self.class_values, y).astype(np.int32)


def chosen_columns(frame: pd.DataFrame, columns: list[str], field: str) -> list[str]:
    """The columns a call named, deduplicated in order; any that the data lacks is an error."""
    require_columns(frame, columns, field)
    return list(dict.fromkeys(columns))


def _features_for(
    frame: pd.DataFrame, target: str, feature_columns: list[str] | None, lineage: dict[str, Any]
) -> tuple[list[str], bool]:
    """The feature columns and whether they are exactly the lineage's processed columns."""
    if feature_columns:
        names = chosen_columns(frame, feature_columns, "feature_columns")
        if target in names:
            raise InvalidInputError("the target column cannot also be a feature", field="feature_columns")
        return names, names == list(lineage.get("feature_names") or [])
    lineage_features = [str(c) for c in lineage.get("feature_names") or [] if str(c) != target]
    if lineage_features and all(c in frame.columns for c in lineage_features):
        return lineage_features, True
    return [str(c) for c in frame.columns if str(c) != target], False


def prepare_supervised(
    storage: S3Utils,
    *,
    train_uri: str,
    target_column: str,
    task_type: str | None,
    validation_uri: str | None,
    validation_fraction: float | None,
    feature_columns: list[str] | None,
    seed: int,
    dtype: type = np.float32,
    allow_missing_features: bool = True,
) -> SupervisedData:
    """Read and check the training (and validation) data of a supervised trainer."""
    if validation_uri and validation_fraction:
        raise InvalidInputError(
            "pass either validation_data_s3_uri or validation_fraction, not both", field="validation_fraction"
        )
    train = read_dataset(storage, train_uri, "train_data_s3_uri")
    frame, lineage, train_uri_resolved, fingerprint = train.frame, train.lineage, train.uri, train.fingerprint
    del train  # the feature matrix is all we keep: a large input should not stay in memory twice
    target = target_vector(frame, {}, target_column, "train_data_s3_uri")
    if target.isna().any():
        raise InvalidInputError(
            f"the target column {target_column!r} has {int(target.isna().sum())} missing values",
            field="target_column",
            hint="Drop those rows first (preprocess_supervised with handle_missing=drop).",
        )
    task = task_type or lineage.get("task_type") or infer_task_type(target)
    if task not in ("classification", "regression"):
        task = infer_task_type(target)
    if task == "regression" and not pd.api.types.is_numeric_dtype(target):
        raise InvalidInputError(
            f"the target column {target_column!r} is not numeric, so it cannot be regressed",
            field="task_type",
            hint="Use task_type=classification, or a numeric target.",
        )
    features, from_lineage = _features_for(frame, target_column, feature_columns, lineage)
    if not features:
        raise InvalidInputError("the data has no feature columns besides the target", field="train_data_s3_uri")
    x = feature_matrix(frame, _features_meta(features), field="train_data_s3_uri", dtype=dtype)
    y = target.to_numpy()
    feature_dtypes = {c: str(frame[c].dtype) for c in features}
    del frame, target
    if not allow_missing_features and np.isnan(x).any():
        raise InvalidInputError(
            "the features contain missing values, which this model cannot take",
            field="train_data_s3_uri",
            hint="Run preprocess_supervised with handle_missing (mean, median, mode or drop) first.",
        )
    preprocessor = load_preprocessor(storage, lineage) if from_lineage else None
    raw_columns = [str(c) for c in lineage.get("raw_feature_columns") or []] if preprocessor is not None else None
    data = SupervisedData(
        x_train=x,
        y_train=y,
        x_val=None,
        y_val=None,
        task_type=task,
        target_column=target_column,
        feature_names=features,
        feature_dtypes=feature_dtypes,
        classes=None,
        training_data_uri=train_uri_resolved,
        data_fingerprint=fingerprint,
        preprocessor=preprocessor,
        raw_feature_columns=raw_columns or None,
    )
    if lineage.get("pipeline_s3_uri") and preprocessor is None:
        data.warnings.append(
            "the data's preprocessing pipeline is not bundled (its columns differ from the features used); "
            "pass processed data to evaluate this model"
        )
    if validation_uri:
        _attach_validation_file(storage, data, validation_uri, dtype)
    elif validation_fraction:
        _hold_out(data, validation_fraction, seed)
    if task == "classification":
        _set_classes(data, storage.config.max_classes)
    return data


def _attach_validation_file(storage: S3Utils, data: SupervisedData, uri: str, dtype: type) -> None:
    val = read_dataset(storage, uri, "validation_data_s3_uri")
    meta = {"feature_names": data.feature_names, "raw_feature_columns": data.raw_feature_columns or []}
    # feature_matrix also accepts raw validation data and runs it through the bundled preprocessor.
    data.x_val = feature_matrix(val.frame, meta, data.preprocessor, field="validation_data_s3_uri", dtype=dtype)
    y_val = target_vector(val.frame, {}, data.target_column, "validation_data_s3_uri")
    if y_val.isna().any():
        raise InvalidInputError(
            f"the validation target {data.target_column!r} has missing values", field="validation_data_s3_uri"
        )
    data.y_val = y_val.to_numpy()
    data.validation_data_uri = val.uri
    data.validation_source = "data"


def _hold_out(data: SupervisedData, fraction: float, seed: int) -> None:
    from sklearn.model_selection import train_test_split

    n = len(data.y_train)
    n_val = round(n * fraction)
    if n_val < 1 or n - n_val < 2:
        raise InvalidInputError(
            f"validation_fraction={fraction} leaves no usable split of {n} rows", field="validation_fraction"
        )
    stratify = None
    if data.task_type == "classification":
        _, counts = np.unique(data.y_train.astype(str), return_counts=True)
        if counts.min() >= 2 and n_val >= len(counts):
            stratify = data.y_train
    train_idx, val_idx = train_test_split(np.arange(n), test_size=n_val, random_state=seed, stratify=stratify)
    train_idx.sort()
    val_idx.sort()
    data.x_val, data.y_val = data.x_train[val_idx], data.y_train[val_idx]
    data.x_train, data.y_train = data.x_train[train_idx], data.y_train[train_idx]
    data.validation_source = "fraction"


def _set_classes(data: SupervisedData, max_classes: int) -> None:
    data.class_values = np.unique(data.y_train)
    classes = [json_value(c) for c in data.class_values]
    if len(classes) > max_classes:
        # Model size grows with the classes (a forest stores a probability per class per leaf).
        raise InvalidInputError(
            f"the target {data.target_column!r} has {len(classes)} classes, over the MLOPS_MAX_CLASSES limit "
            f"of {max_classes}",
            field="target_column",
            hint="Group rare labels, use task_type=regression for a quantity, or raise MLOPS_MAX_CLASSES.",
        )
    if len(classes) < 2:
        raise InvalidInputError(
            f"the target {data.target_column!r} has a single class ({classes[0]!r}) in the training data",
            field="target_column",
            hint="Classification needs at least two classes.",
        )
    if data.y_val is not None:
        unseen = sorted({json_value(v) for v in np.unique(data.y_val)} - set(classes), key=str)
        if unseen:
            raise InvalidInputError(
                f"the validation data has classes the training data lacks: {unseen[:10]}",
                field="validation_data_s3_uri",
                hint="Split the data stratified (split_dataset with stratify_column) so every class is trained on.",
            )
    data.classes = classes


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray | None:
    """Sorted indices of a fixed random sample of `max_rows` of `n` rows (None when n is small)."""
    if n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def score(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    task_type: str,
    classes: list[Any] | None,
    label_encoded: bool,
    max_rows: int | None = TRAIN_SCORE_MAX_ROWS,
    seed: int = 0,
) -> dict[str, float | None]:
    """Metrics of `model` on (x, y), in the original label space (a fixed sample beyond `max_rows`)."""
    rows = sample_rows(len(y), max_rows, seed) if max_rows is not None else None
    if rows is not None:
        x, y = x[rows], y[rows]
    holder = bundles.Bundle(uri="", metadata={"label_encoded": label_encoded, "classes": classes}, model=model)
    if task_type == "classification":
        proba = predict_proba(holder, x)
        if proba is None:
            return classification_metrics(y, predict(holder, x), None, classes)
        proba = proba / proba.sum(axis=1, keepdims=True)  # float32 outputs (XGBoost, nets) sum to 1 only roughly
        return classification_metrics(y, _most_probable(model, proba, classes, label_encoded), proba, classes)
    return regression_metrics(y, predict(holder, x))


def _most_probable(model: Any, proba: np.ndarray, classes: list[Any] | None, label_encoded: bool) -> np.ndarray:
    """The predicted labels from the probabilities: this capability's classifiers (forests, XGBoost,
    networks) predict the most probable class, so the second pass of `predict` is not needed."""
    index = proba.argmax(axis=1)
    if label_encoded:
        return np.asarray(list(classes or []))[index]  # as `inference.predict` decodes them
    return np.asarray(model.classes_)[index]


def supervised_metrics(
    model: Any, data: SupervisedData, label_encoded: bool, seed: int
) -> dict[str, dict[str, float | None]]:
    """{"train": ..., "validation": ...} as every supervised bundle records them."""
    metrics = {
        "train": score(model, data.x_train, data.y_train, data.task_type, data.classes, label_encoded, seed=seed)
    }
    if data.x_val is not None and data.y_val is not None:
        metrics["validation"] = score(
            model, data.x_val, data.y_val, data.task_type, data.classes, label_encoded, max_rows=None
        )
    return metrics


def supervised_metadata(
    data: SupervisedData,
    *,
    algorithm: str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    seed: int,
    label_encoded: bool,
    libraries: tuple[str, ...] = (),
    feature_importance: dict[str, float] | None = None,
    job_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The bundle metadata of a supervised model (the keys evaluation and the registry rely on)."""
    meta: dict[str, Any] = {
        "algorithm": algorithm,
        "task_type": data.task_type,
        "hyperparameters": hyperparameters,
        "feature_names": data.feature_names,
        "feature_dtypes": data.feature_dtypes,
        "target_column": data.target_column,
        "classes": data.classes,
        "label_encoded": bool(label_encoded and data.task_type == "classification"),
        "metrics": metrics,
        "training_data_uri": data.training_data_uri,
        "validation_data_uri": data.validation_data_uri,
        "validation_source": data.validation_source,
        "data_fingerprint": data.data_fingerprint,
        "n_train_rows": len(data.y_train),
        "n_validation_rows": 0 if data.y_val is None else len(data.y_val),
        "train_metrics_rows": min(len(data.y_train), TRAIN_SCORE_MAX_ROWS),
        "history": history,
        "random_state": seed,
        "feature_importance": feature_importance,
        "library_versions": bundles.library_versions(*libraries),
        "job_id": job_id,
    }
    if data.raw_feature_columns:
        meta["raw_feature_columns"] = data.raw_feature_columns
    meta.update(extra or {})
    return meta


def importance_dict(names: list[str], values: Any) -> dict[str, float]:
    """Feature importance as {feature: value}, largest first."""
    pairs = sorted(zip(names, (float(v) for v in np.asarray(values).ravel()), strict=False), key=lambda p: -p[1])
    return dict(pairs)


# ------------------------------------------------------------------------ unsupervised
@dataclass
class UnsupervisedData:
    """The feature matrix of a clustering / decomposition trainer, plus the columns it did not use."""

    x: np.ndarray
    feature_names: list[str]
    feature_dtypes: dict[str, str]
    training_data_uri: str
    data_fingerprint: str
    passthrough: pd.DataFrame  # columns not used as features (ids, labels), row-aligned with x
    true_labels: np.ndarray | None = None
    preprocessor: Any = None
    raw_feature_columns: list[str] | None = None

    def take(self, rows: np.ndarray) -> None:
        """Keep only `rows` (a sample), everywhere."""
        self.x = self.x[rows]
        self.passthrough = self.passthrough.iloc[rows].reset_index(drop=True)
        if self.true_labels is not None:
            self.true_labels = self.true_labels[rows]


def prepare_unsupervised(
    storage: S3Utils, *, train_uri: str, columns: list[str] | None, label_column: str | None, dtype: type = np.float64
) -> UnsupervisedData:
    """Read the data of an unsupervised trainer: numeric features without gaps, labels kept aside."""
    data = read_dataset(storage, train_uri, "train_data_s3_uri")
    frame, lineage = data.frame, data.lineage
    if label_column and label_column not in frame.columns:
        raise InvalidInputError(
            f"label column {label_column!r} is not in the data", field="label_column", hint="Pass an existing column."
        )
    excluded = {c for c in (label_column, lineage.get("target_column")) if c}
    lineage_features = [str(c) for c in lineage.get("feature_names") or []]
    from_lineage = False
    if columns:
        features = chosen_columns(frame, columns, "columns")
        from_lineage = features == lineage_features
    elif lineage_features and all(c in frame.columns for c in lineage_features):
        features, from_lineage = lineage_features, True
    else:
        features = [str(c) for c in frame.columns if c not in excluded]
    if not features:
        raise InvalidInputError("no feature columns to train on", field="columns")
    non_numeric = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise InvalidInputError(
            f"non-numeric columns {non_numeric[:10]}",
            field="columns",
            hint="Pass `columns` with numeric columns only, or run preprocess_unsupervised first.",
        )
    x = feature_matrix(frame, _features_meta(features), field="train_data_s3_uri", dtype=dtype)
    if np.isnan(x).any():
        raise InvalidInputError(
            "the features contain missing values",
            field="train_data_s3_uri",
            hint="Run preprocess_unsupervised with handle_missing (mean, median, mode or drop) first.",
        )
    preprocessor = load_preprocessor(storage, lineage) if from_lineage else None
    raw = [str(c) for c in lineage.get("raw_feature_columns") or []] if preprocessor is not None else None
    return UnsupervisedData(
        x=x,
        feature_names=features,
        feature_dtypes={c: str(frame[c].dtype) for c in features},
        training_data_uri=data.uri,
        data_fingerprint=data.fingerprint,
        passthrough=frame.drop(columns=features).reset_index(drop=True),
        true_labels=frame[label_column].to_numpy() if label_column else None,
        preprocessor=preprocessor,
        raw_feature_columns=raw or None,
    )


def unsupervised_metadata(
    data: UnsupervisedData,
    *,
    algorithm: str,
    task_type: str,
    hyperparameters: dict[str, Any],
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    seed: int | None,
    job_id: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "algorithm": algorithm,
        "task_type": task_type,
        "hyperparameters": hyperparameters,
        "feature_names": data.feature_names,
        "feature_dtypes": data.feature_dtypes,
        "target_column": None,
        "classes": None,
        "label_encoded": False,
        "metrics": metrics,
        "training_data_uri": data.training_data_uri,
        "data_fingerprint": data.data_fingerprint,
        "n_train_rows": len(data.x),
        "history": history,
        "random_state": seed,
        "feature_importance": None,
        "library_versions": bundles.library_versions(),
        "job_id": job_id,
    }
    if data.raw_feature_columns:
        meta["raw_feature_columns"] = data.raw_feature_columns
    meta.update(extra or {})
    return meta
