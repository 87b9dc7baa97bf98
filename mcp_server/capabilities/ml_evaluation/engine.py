"""Evaluating a model bundle on test data.

Predictions are taken in the original label space (the bundle's preprocessing applied through
`inference`), metrics come from `metrics`, and the results are plain JSON-ready dicts so the
evaluation tools, comparisons, reports (and the registry or notifications citing a saved
evaluation) all see the same numbers. Also here: thresholds, bootstrap confidence intervals,
McNemar's test, and saving/reading evaluation results next to the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.common import inference
from mcp_server.common import metrics as m
from mcp_server.common.bundles import Bundle, bundle_location, now_iso
from mcp_server.common.datasets import read_dataset
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.s3_utils import S3Utils, json_bytes, parse_json

CLASSIFICATION, REGRESSION, CLUSTERING = "classification", "regression", "clustering"
EVALUATION_TOOLS = {
    CLASSIFICATION: "evaluate_classifier",
    REGRESSION: "evaluate_regressor",
    CLUSTERING: "evaluate_clustering",
}
METRIC_NAMES: dict[str, tuple[str, ...]] = {
    CLASSIFICATION: (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
    ),
    REGRESSION: ("mae", "mse", "rmse", "r2", "mape"),
    CLUSTERING: ("silhouette", "davies_bouldin", "calinski_harabasz", "ari", "nmi"),
}
_AVERAGED = METRIC_NAMES[CLASSIFICATION][6:]  # from metrics.classification_details
LABEL_METRICS = ("ari", "nmi")  # clustering metrics that need `label_column`
DEFAULT_METRIC = {CLASSIFICATION: "accuracy", REGRESSION: "rmse", CLUSTERING: "silhouette"}


@dataclass
class Predictions:
    """A model's predictions on test data, aligned with the truth (when there is one)."""

    bundle: Bundle
    x: np.ndarray
    y_pred: np.ndarray
    y_true: np.ndarray | None = None
    y_score: np.ndarray | None = None  # class probabilities, columns ordered as `classes`
    classes: list[Any] = field(default_factory=list)
    target_column: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def task_type(self) -> str:
        return self.bundle.task_type

    @property
    def correct(self) -> np.ndarray:
        """Per row: did the classifier predict the true label?"""
        assert self.y_true is not None
        return np.asarray(self.y_true == self.y_pred, dtype=bool)


# ---------------------------------------------------------------------------- inputs
def require_task(bundle: Bundle, expected: str, tool: str, field: str = "model_s3_uri") -> None:
    """Refuse a model of another task, pointing at the tool that does evaluate it."""
    if bundle.task_type == expected:
        return
    other = EVALUATION_TOOLS.get(bundle.task_type)
    hint = f"Use {other} for this model." if other else f"{tool} evaluates {expected} models only."
    raise InvalidInputError(
        f"{bundle.uri} is a {bundle.task_type} model ({bundle.metadata.get('algorithm')}), not a {expected} model",
        field=field,
        hint=hint,
    )


def check_metric_names(task: str, names: list[str], field: str, label_column: str | None = None) -> None:
    """Refuse metric names the task's evaluation does not produce, before any work is done."""
    allowed = list(METRIC_NAMES.get(task, ()))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise InvalidInputError(
            f"unknown metric name(s) {unknown} for a {task} model",
            field=field,
            hint=f"Use one of: {', '.join(allowed)}.",
        )
    if task == CLUSTERING and label_column is None:
        needs_labels = [n for n in names if n in LABEL_METRICS]
        if needs_labels:
            raise InvalidInputError(
                f"{needs_labels} need true labels", field=field, hint="Pass label_column, or use silhouette."
            )


def read_test_data(storage: S3Utils, uri: str, field: str = "test_data_s3_uri") -> tuple[str, pd.DataFrame]:
    dataset = read_dataset(storage, uri, field)
    return dataset.uri, dataset.frame


# ---------------------------------------------------------------------------- labels
def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _key(value: Any) -> str:
    """A label's identity across int/float/str spellings (1, 1.0, "1" and np.int64(1) agree)."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def known_classes(bundle: Bundle) -> list[Any]:
    classes = bundle.metadata.get("classes")
    if not classes:
        classes = getattr(bundle.model, "classes_", None)
    return [_plain(c) for c in classes] if classes is not None else []


def align_labels(y_true: Any, y_pred: Any, classes: list[Any]) -> tuple[np.ndarray, np.ndarray, list[Any], list[Any]]:
    """Truth and predictions spelled as the model's classes; returns (truth, pred, labels, unknown)
    where `unknown` are labels the model does not know (they extend `labels`)."""
    labels = list(classes) or sorted({_plain(v) for v in [*y_true, *y_pred]}, key=_key)
    lookup = {_key(c): c for c in labels}
    truth = [lookup.get(_key(v), _plain(v)) for v in y_true]
    pred = [lookup.get(_key(v), _plain(v)) for v in y_pred]
    unknown = sorted({v for v in [*truth, *pred] if _key(v) not in lookup}, key=_key)
    labels += unknown
    if len({type(v) for v in labels}) > 1:  # mixed spellings: compare as text rather than fail
        labels, truth, pred, unknown = ([str(v) for v in seq] for seq in (labels, truth, pred, unknown))
    return np.asarray(truth), np.asarray(pred), labels, unknown


def _probabilities(bundle: Bundle, x: np.ndarray, classes: list[Any]) -> np.ndarray | None:
    """predict_proba with columns in the order of `classes`."""
    proba = inference.predict_proba(bundle, x)
    if proba is None or proba.ndim != 2 or proba.shape[1] != len(classes):
        return None
    totals = proba.sum(axis=1, keepdims=True)
    if np.all(totals > 0):  # float32 outputs (XGBoost, networks) sum to 1 only approximately
        proba = proba / totals
    model_classes = getattr(bundle.model, "classes_", None)
    if not bundle.metadata.get("label_encoded") and model_classes is not None:
        position = {_key(c): i for i, c in enumerate(model_classes)}
        if len(position) == len(classes) and all(_key(c) in position for c in classes):
            proba = proba[:, [position[_key(c)] for c in classes]]
    return proba


# ---------------------------------------------------------------------------- predictions
def _guarded(step: str, fn: Callable[[], Any]) -> Any:
    """Run a model/preprocessor call, turning its complaints about the data into a clear error."""
    try:
        return fn()
    except (ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise InvalidInputError(
            f"the model could not {step} this data: {detail}",
            field="test_data_s3_uri",
            hint="Pass data shaped like the training data (same columns and types).",
        ) from None


def predict_on(
    bundle: Bundle,
    frame: pd.DataFrame,
    target_column: str | None = None,
    label_column: str | None = None,
    field: str = "test_data_s3_uri",
) -> Predictions:
    """The bundle's predictions on `frame` (raw or processed columns), with the truth when known."""
    task = bundle.task_type
    warnings: list[str] = []
    truth: pd.Series | None = None
    if task in (CLASSIFICATION, REGRESSION):
        truth = inference.target_vector(frame, bundle.metadata, target_column, field)
    elif label_column is not None:
        if label_column not in frame.columns:
            raise InvalidInputError(
                f"column {label_column!r} is not in the data (columns: {list(frame.columns)[:10]})",
                field="label_column",
                hint="Pass the name of the true-label column, or leave label_column out.",
            )
        truth = frame[label_column]
    if truth is not None and truth.isna().any():
        missing = int(truth.isna().sum())
        warnings.append(f"{missing} row(s) without a {truth.name!r} value were left out")
        frame = frame.loc[truth.notna()]
        truth = truth.loc[truth.notna()]
        if frame.empty:
            raise InvalidInputError(f"every row lacks a {truth.name!r} value", field=field)
    ignored = inference.unused_columns(
        frame, bundle.metadata, bundle.preprocessor, keep=(str(truth.name),) if truth is not None else ()
    )
    if ignored:
        warnings.append(f"ignored {len(ignored)} column(s) the model does not use: {ignored[:10]}")
    x = _guarded("preprocess", lambda: inference.feature_matrix(frame, bundle.metadata, bundle.preprocessor, field))
    out = Predictions(bundle=bundle, x=x, y_pred=np.empty(0), target_column=None if truth is None else str(truth.name))
    out.warnings = warnings
    if task == CLASSIFICATION:
        assert truth is not None
        raw_pred = _guarded("predict on", lambda: inference.predict(bundle, x))
        out.y_true, out.y_pred, out.classes, unknown = align_labels(
            truth.tolist(), raw_pred.tolist(), known_classes(bundle)
        )
        if unknown:
            warnings.append(f"labels the model was not trained on: {unknown[:10]}; roc_auc and log_loss are skipped")
        else:
            out.y_score = _guarded("score", lambda: _probabilities(bundle, x, out.classes))
    elif task == REGRESSION:
        assert truth is not None
        if not pd.api.types.is_numeric_dtype(truth):
            raise InvalidInputError(
                f"target column {truth.name!r} is not numeric ({truth.dtype})",
                field="target_column",
                hint="A regressor is evaluated against a numeric target.",
            )
        out.y_true = truth.to_numpy(dtype=float)
        out.y_pred = np.asarray(_guarded("predict on", lambda: inference.predict(bundle, x)), dtype=float).ravel()
    elif task == CLUSTERING:
        out.y_pred = _guarded("assign clusters for", lambda: inference.assign_clusters(bundle, x))
        out.y_true = None if truth is None else truth.to_numpy()
    else:
        raise InvalidInputError(f"{task} models are not evaluated on test data", field="model_s3_uri")
    return out


# ---------------------------------------------------------------------------- metrics
def classification_result(p: Predictions) -> dict[str, Any]:
    binary = len(p.classes) == 2
    scores = m.classification_metrics(p.y_true, p.y_pred, p.y_score, p.classes)
    details = m.classification_details(p.y_true, p.y_pred, p.classes)
    return {
        "metrics": {**scores, **details["averages"]},
        "average": "binary" if binary else "weighted",
        "positive_label": p.classes[1] if binary else None,
        "labels": p.classes,
        "confusion_matrix": details["confusion_matrix"],
        "per_class": details["per_class"],
    }


def regression_result(p: Predictions) -> dict[str, Any]:
    assert p.y_true is not None
    residual = p.y_true - p.y_pred
    return {
        "metrics": m.regression_metrics(p.y_true, p.y_pred),
        "residuals": {
            "mean": float(residual.mean()),
            "std": float(residual.std()),
            "max_abs": float(np.abs(residual).max()),
        },
    }


def clustering_result(p: Predictions) -> dict[str, Any]:
    labels = p.y_pred
    sizes = pd.Series(labels).value_counts().sort_index()
    return {
        "metrics": m.clustering_metrics(p.x, labels, p.y_true),
        "n_clusters": len(set(labels.tolist()) - {-1}),
        "n_noise": int((labels == -1).sum()),
        "cluster_sizes": {str(k): int(v) for k, v in sizes.items()},
    }


_RESULT_BUILDERS: dict[str, Callable[[Predictions], dict[str, Any]]] = {
    CLASSIFICATION: classification_result,
    REGRESSION: regression_result,
    CLUSTERING: clustering_result,
}


def evaluate(p: Predictions) -> dict[str, Any]:
    """The task's metrics and details for these predictions, plus n_samples and warnings."""
    result = _RESULT_BUILDERS[p.task_type](p)
    result["n_samples"] = len(p.y_pred)
    result["warnings"] = list(p.warnings)
    return result


def check_thresholds(
    metrics: dict[str, float | None], thresholds: dict[str, float] | None
) -> tuple[bool | None, list[dict[str, Any]]]:
    """(passed, failed) for thresholds such as {"accuracy": 0.9, "rmse": 3}: a higher-is-better
    metric must reach its threshold, a lower-is-better one (`HIGHER_IS_BETTER`) stay at or below
    it. A metric that could not be computed fails. `passed` is None without thresholds."""
    if not thresholds:
        return None, []
    failed = []
    for name, limit in thresholds.items():
        value = metrics.get(name)
        higher = m.HIGHER_IS_BETTER.get(name, True)
        ok = value is not None and (value >= limit if higher else value <= limit)
        if not ok:
            failed.append({"metric": name, "value": value, "threshold": limit, "direction": ">=" if higher else "<="})
    return not failed, failed


# ---------------------------------------------------------------------------- statistics
def _resample_scorer(p: Predictions, metric: str) -> Callable[[np.ndarray], float | None]:
    """metric(indices) on a resample of the test rows; simple means are computed directly."""
    task = p.task_type
    if task == CLASSIFICATION:
        y_true, y_pred = p.y_true, p.y_pred
        assert y_true is not None
        if metric == "accuracy":
            correct = p.correct
            return lambda idx: float(correct[idx].mean())
        if metric not in _AVERAGED:
            score = p.y_score if metric in ("roc_auc", "log_loss") else None
            return lambda idx: m.classification_metrics(
                y_true[idx], y_pred[idx], None if score is None else score[idx], p.classes
            )[metric]
        return lambda idx: m.classification_details(y_true[idx], y_pred[idx], p.classes)["averages"][metric]
    if task == REGRESSION:
        assert p.y_true is not None
        error = p.y_true - p.y_pred
        simple: dict[str, Callable[[np.ndarray], float]] = {
            "mae": lambda idx: float(np.abs(error[idx]).mean()),
            "mse": lambda idx: float((error[idx] ** 2).mean()),
            "rmse": lambda idx: math.sqrt(float((error[idx] ** 2).mean())),
        }
        if metric in simple:
            return simple[metric]
        truth, pred = p.y_true, p.y_pred
        return lambda idx: m.regression_metrics(truth[idx], pred[idx])[metric]
    labels, given, x = p.y_pred, p.y_true, p.x
    if metric == "silhouette":
        per_point = _silhouette_samples(x, labels)
        return lambda idx: None if per_point is None else _nanmean(per_point[idx])
    from sklearn import metrics as skm

    if metric in LABEL_METRICS:
        assert given is not None
        agreement = skm.adjusted_rand_score if metric == "ari" else skm.normalized_mutual_info_score
        return lambda idx: float(agreement(given[idx], labels[idx]))
    spread = skm.davies_bouldin_score if metric == "davies_bouldin" else skm.calinski_harabasz_score

    def on_clusters(idx: np.ndarray) -> float | None:
        core = idx[labels[idx] != -1]  # noise is no cluster, as in metrics.clustering_metrics
        if not 2 <= len(set(labels[core].tolist())) < len(core):
            return None
        return float(spread(x[core], labels[core]))

    return on_clusters


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else None


def _silhouette_samples(x: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Per-point silhouette (NaN for noise): bootstrapping their mean avoids an O(n^2) pass per resample."""
    from sklearn.metrics import silhouette_samples

    core = labels != -1
    if not 2 <= len(set(labels[core].tolist())) < core.sum():
        return None
    out = np.full(len(labels), np.nan)
    out[core] = silhouette_samples(x[core], labels[core])
    return out


def bootstrap_ci(
    p: Predictions,
    metric: str,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    check_cancelled: Callable[[], None] | None = None,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `metric` over resampled test rows. The same seed gives the
    same resamples for every model, so intervals of compared models are paired."""
    n = len(p.y_pred)
    if n_bootstrap <= 0 or n == 0:
        return None, None
    scorer = _resample_scorer(p, metric)
    rng = np.random.default_rng(seed)
    values: list[float] = []
    for i in range(n_bootstrap):
        if check_cancelled is not None and i % 100 == 0:
            check_cancelled()
        value = scorer(rng.integers(0, n, n))
        if value is not None and not math.isnan(value):
            values.append(value)
    if not values:
        return None, None
    tail = (1 - confidence) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """McNemar's test on paired correctness: exact binomial below 25 discordant pairs, else
    chi-square with continuity correction. `b`: only A right; `c`: only B right."""
    a = np.asarray(correct_a, dtype=bool)
    b_ = np.asarray(correct_b, dtype=bool)
    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    discordant = b + c
    if discordant == 0:
        return {"b": 0, "c": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact binomial"}
    if discordant < 25:
        from scipy.stats import binomtest

        p_value = float(binomtest(min(b, c), discordant, 0.5).pvalue)
        return {"b": b, "c": c, "statistic": float(min(b, c)), "p_value": min(1.0, p_value), "method": "exact binomial"}
    from scipy.stats import chi2

    statistic = (abs(b - c) - 1) ** 2 / discordant
    return {
        "b": b,
        "c": c,
        "statistic": float(statistic),
        "p_value": float(chi2.sf(statistic, 1)),
        "method": "chi-square with continuity correction",
    }


# ---------------------------------------------------------------------------- saved results
def save_evaluation(storage: S3Utils, model_uri: str, tool: str, result: dict[str, Any]) -> str:
    """Write `result` to `<model>/evaluations/<timestamp>-<tool>.json`; returns its URI."""
    folder = bundle_location(storage, model_uri)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    dest = storage.join(folder, "evaluations", f"{stamp}-{tool}.json")
    storage.check_output(dest, "model_s3_uri", "evaluation")
    record = {**result, "tool": tool, "created_at": now_iso(), "evaluation_s3_uri": dest.uri}
    storage.write_bytes(dest, json_bytes(record), "application/json")
    return dest.uri


def read_evaluation(storage: S3Utils, uri: str, field: str = "evaluation_s3_uri") -> dict[str, Any]:
    loc = storage.resolve(uri, field)
    try:
        record = parse_json(storage.read_bytes(loc, max_bytes=64 * 1024**2), loc.uri)
    except BadFormatError:
        record = None
    if isinstance(record, dict) and not record.get("model_s3_uri") and record.get("best_model_s3_uri"):
        record = _best_of_comparison(record)
    if not isinstance(record, dict) or not record.get("model_s3_uri") or "metrics" not in record:
        raise BadFormatError(
            f"{loc.uri} is not a saved evaluation result",
            field=field,
            hint="Pass the evaluation_s3_uri an evaluate_* tool returned.",
        )
    return record


def _best_of_comparison(record: dict[str, Any]) -> dict[str, Any] | None:
    """A saved compare_models result read as the evaluation of its best model (its table row)."""
    best = record["best_model_s3_uri"]
    row = next((r for r in record.get("table") or [] if isinstance(r, dict) and r.get("model") == best), None)
    if row is None:
        return None
    metrics = {k: v for k, v in row.items() if k not in ("model", "algorithm")}
    return {**record, "model_s3_uri": best, "algorithm": row.get("algorithm"), "metrics": metrics}
