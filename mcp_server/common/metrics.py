"""ML metrics shared by the trainers (train/validation scores) and the evaluation tools.

One implementation of each metric family, built on scikit-learn, returning plain floats (JSON
safe: NaN/inf become None) so every tool reports the same numbers for the same predictions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _clean(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) or math.isinf(number) else number


def classification_metrics(
    y_true: Any, y_pred: Any, y_score: Any = None, classes: list[Any] | None = None
) -> dict[str, float | None]:
    """accuracy, precision, recall, f1 (binary, or weighted for multiclass), roc_auc and log_loss.

    `y_score` is the probability matrix (n_samples x n_classes, columns ordered as `classes`);
    without it roc_auc and log_loss are None.
    """
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(classes) if classes is not None else sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    binary = len(labels) == 2
    average = "binary" if binary else "weighted"
    pos_label = labels[1] if binary else 1
    # One pass for the three (each of precision_score, recall_score, f1_score would count again).
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, average=average, pos_label=pos_label, labels=labels, zero_division=0
    )
    out: dict[str, float | None] = {
        "accuracy": _clean(skm.accuracy_score(y_true, y_pred)),
        "precision": _clean(precision),
        "recall": _clean(recall),
        "f1": _clean(f1),
        "roc_auc": None,
        "log_loss": None,
    }
    if y_score is not None and len(set(y_true.tolist())) > 1:
        scores = np.asarray(y_score, dtype=float)
        if binary:
            out["roc_auc"] = _clean(skm.roc_auc_score(y_true == labels[1], scores[:, 1]))
        else:
            present = [i for i, c in enumerate(labels) if c in set(y_true.tolist())]
            if len(present) == len(labels):
                out["roc_auc"] = _clean(
                    skm.roc_auc_score(y_true, scores, multi_class="ovr", average="weighted", labels=labels)
                )
        out["log_loss"] = _clean(skm.log_loss(y_true, np.clip(scores, 1e-15, 1.0), labels=labels))
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    """mae, mse, rmse, r2 and mape. MAPE skips rows whose target is 0 (it is undefined there)."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    mse = skm.mean_squared_error(y_true, y_pred)
    nonzero = y_true != 0
    mape = float(np.mean(np.abs((y_true[nonzero] - y_pred[nonzero]) / y_true[nonzero]))) if nonzero.any() else None
    return {
        "mae": _clean(skm.mean_absolute_error(y_true, y_pred)),
        "mse": _clean(mse),
        "rmse": _clean(math.sqrt(mse)),
        "r2": _clean(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
        "mape": _clean(mape) if mape is not None else None,
    }


def clustering_metrics(x: Any, labels: Any, true_labels: Any = None) -> dict[str, float | None]:
    """silhouette, davies_bouldin, calinski_harabasz on non-noise points (DBSCAN noise is -1);
    ari and nmi against `true_labels` when given. Metrics that need 2+ clusters are None otherwise."""
    from sklearn import metrics as skm

    x = np.asarray(x, dtype=float)
    labels = np.asarray(labels)
    core = labels != -1
    n_clusters = len(set(labels[core].tolist()))
    out: dict[str, float | None] = {"silhouette": None, "davies_bouldin": None, "calinski_harabasz": None}
    if 2 <= n_clusters < core.sum():
        sample = min(int(core.sum()), 10_000)  # silhouette is O(n^2): a fixed sample keeps it bounded
        out["silhouette"] = _clean(skm.silhouette_score(x[core], labels[core], sample_size=sample, random_state=0))
        out["davies_bouldin"] = _clean(skm.davies_bouldin_score(x[core], labels[core]))
        out["calinski_harabasz"] = _clean(skm.calinski_harabasz_score(x[core], labels[core]))
    if true_labels is not None:
        truth = np.asarray(true_labels)
        out["ari"] = _clean(skm.adjusted_rand_score(truth, labels))
        out["nmi"] = _clean(skm.normalized_mutual_info_score(truth, labels))
    return out


def classification_details(y_true: Any, y_pred: Any, classes: list[Any]) -> dict[str, Any]:
    """Macro and weighted precision/recall/f1, a per-class report and the confusion matrix, all in
    the order of `classes` (the rows and columns of `confusion_matrix`)."""
    from sklearn import metrics as skm

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    averages: dict[str, float | None] = {}
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=classes, average=average, zero_division=0
        )
        averages[f"precision_{average}"] = _clean(precision)
        averages[f"recall_{average}"] = _clean(recall)
        averages[f"f1_{average}"] = _clean(f1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=classes, average=None, zero_division=0
    )
    per_class = [
        {"label": label, "precision": _clean(p), "recall": _clean(r), "f1": _clean(f), "support": int(s)}
        for label, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
    ]
    matrix = skm.confusion_matrix(y_true, y_pred, labels=classes)
    return {"averages": averages, "per_class": per_class, "confusion_matrix": matrix.astype(int).tolist()}


# Whether a higher value is better, for thresholds and rankings.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    "mae": False,
    "mse": False,
    "rmse": False,
    "r2": True,
    "mape": False,
    "silhouette": True,
    "davies_bouldin": False,
    "calinski_harabasz": True,
    "ari": True,
    "nmi": True,
    "episode_return_mean": True,
    "success_rate": True,
    "precision_macro": True,
    "recall_macro": True,
    "f1_macro": True,
    "precision_weighted": True,
    "recall_weighted": True,
    "f1_weighted": True,
}
