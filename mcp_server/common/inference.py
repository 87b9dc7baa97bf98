"""Turning a DataFrame into a model's input, and a model's output into predictions.

Shared by trainers (validation data), evaluation and anything that predicts with a bundle, so
the preprocessing recorded in a bundle is applied the same way everywhere.

Bundle metadata keys used here (written by the trainers):
- `feature_names`: the columns the model consumes, in order (processed names when a
  preprocessor exists);
- `raw_feature_columns`: the raw columns the bundle's preprocessor takes (when it has one);
- `target_column`, `classes` (original labels) and `label_encoded` (the model predicts indices
  0..k-1 into `classes`, as XGBoost and the neural networks do).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mcp_server.common.bundles import Bundle
from mcp_server.common.datasets import LINEAGE_ATTR
from mcp_server.common.exceptions import InvalidInputError


def feature_matrix(
    frame: pd.DataFrame,
    metadata: dict[str, Any],
    preprocessor: Any = None,
    field: str = "test_data_s3_uri",
    dtype: Any = float,
) -> np.ndarray:
    """The model's input matrix from `frame`: processed columns as they are, or raw columns run
    through the preprocessor. Missing columns are a clear error naming them; extra columns
    (the target, ids) are ignored. `dtype` float32 halves the memory of large training sets."""
    features: list[str] = list(metadata.get("feature_names") or [])
    raw: list[str] = list(metadata.get("raw_feature_columns") or [])
    if _reads_raw(frame, features, raw, preprocessor):
        return _finite(np.asarray(preprocessor.transform(frame[raw]), dtype=dtype), features, field)
    if features and all(c in frame.columns for c in features):
        return _finite(_numeric(frame[features], field, dtype), features, field)
    expected = raw if preprocessor is not None and raw else features
    missing = [c for c in expected if c not in frame.columns]
    raise InvalidInputError(
        f"the data lacks {len(missing)} feature column(s) the model needs: {missing[:10]}",
        field=field,
        hint="Pass data with the model's feature columns (see load_model's feature_names).",
    )


def _reads_raw(frame: pd.DataFrame, features: list[str], raw: list[str], preprocessor: Any) -> bool:
    """Whether `frame` goes through the preprocessor rather than into the model as it is.

    A frame may have both the raw and the processed column names (scaling keeps the names): then
    a file written by the preprocessing tools says in its lineage that it is processed, and any
    other file is raw. A frame not read from storage (no lineage at all) is taken as processed."""
    if preprocessor is None or not raw or not all(c in frame.columns for c in raw):
        return False
    if not features or not all(c in frame.columns for c in features):
        return True
    lineage = frame.attrs.get(LINEAGE_ATTR)
    return lineage is not None and not lineage.get("pipeline_s3_uri")


def _finite(x: np.ndarray, names: list[str], field: str) -> np.ndarray:
    """Infinite values (or values too large for the model's float type) are refused by name:
    the estimators would fail with their own obscure messages."""
    if x.dtype.kind == "f" and np.isinf(x).any():
        columns = np.isinf(x).any(axis=0)
        bad = [names[i] if i < len(names) else f"#{i}" for i in np.flatnonzero(columns)]
        raise InvalidInputError(
            f"feature columns {bad[:10]} hold infinite values (or values too large for {x.dtype})",
            field=field,
            hint="Replace or drop them first (e.g. clip the column, or treat them as missing).",
        )
    return x


def _numeric(frame: pd.DataFrame, field: str, dtype: Any = float) -> np.ndarray:
    bad = [
        str(c)
        for c, t in frame.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t))
    ]
    if bad:
        raise InvalidInputError(
            f"non-numeric feature columns {bad[:10]}",
            field=field,
            hint="Run preprocess_supervised (encode_categorical) first, or drop these columns.",
        )
    return frame.to_numpy(dtype=dtype, na_value=np.nan)


def target_vector(frame: pd.DataFrame, metadata: dict[str, Any], target_column: str | None, field: str) -> pd.Series:
    """The target column named by the call or recorded in the bundle."""
    target = target_column or metadata.get("target_column")
    if not target:
        raise InvalidInputError("no target column known", field="target_column", hint="Pass target_column.")
    if target not in frame.columns:
        raise InvalidInputError(
            f"column {target!r} is not in the data (columns: {list(frame.columns)[:10]})",
            field="target_column" if target_column else field,
            hint="Pass the name of the label column.",
        )
    return frame[target]


def predict(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    """Predictions in the original label space."""
    raw = np.asarray(bundle.model.predict(x))
    if bundle.metadata.get("label_encoded"):
        # np.asarray infers the labels' own dtype (int, str): an object array would make
        # scikit-learn's metrics refuse the predictions as an "unknown" target type.
        classes = np.asarray(list(bundle.metadata["classes"]))
        raw = classes[raw.astype(int).ravel()]
    return raw


def predict_proba(bundle: Bundle, x: np.ndarray) -> np.ndarray | None:
    """Class probabilities, columns ordered as `metadata["classes"]` (None if the model has none)."""
    if not hasattr(bundle.model, "predict_proba"):
        return None
    return np.asarray(bundle.model.predict_proba(x), dtype=float)


def unused_columns(
    frame: pd.DataFrame, metadata: dict[str, Any], preprocessor: Any = None, keep: tuple[str | None, ...] = ()
) -> list[str]:
    """Columns of `frame` that `feature_matrix` does not use (other than `keep`, e.g. the target):
    callers report them, since a column the user expected to matter is being ignored."""
    features: list[str] = list(metadata.get("feature_names") or [])
    raw: list[str] = list(metadata.get("raw_feature_columns") or [])
    if _reads_raw(frame, features, raw, preprocessor):
        used = set(raw)
    elif features and all(c in frame.columns for c in features):
        used = set(features)
    else:
        used = set(raw if preprocessor is not None and raw else features)
    return [str(c) for c in frame.columns if c not in used and c not in keep]


def assign_clusters(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    """Cluster labels for new points (-1 is noise).

    Models with `predict` (KMeans, GaussianMixture, ...) use it. DBSCAN has none: a point joins
    the cluster of its nearest core sample when that sample is within `eps`, else it is noise,
    which is how DBSCAN itself labels border points.
    """
    model = bundle.model
    if hasattr(model, "predict"):
        return np.asarray(model.predict(x)).astype(int)
    core = getattr(model, "components_", None)
    if core is None or not hasattr(model, "core_sample_indices_"):
        raise InvalidInputError(
            f"{type(model).__name__} cannot assign new points to clusters",
            field="model_s3_uri",
            hint="Use a KMeans or DBSCAN bundle.",
        )
    labels = np.full(len(x), -1, dtype=int)
    if len(core) == 0 or len(x) == 0:
        return labels
    from sklearn.neighbors import NearestNeighbors

    eps = float(getattr(model, "eps", None) or (bundle.metadata.get("hyperparameters") or {}).get("eps", 0.5))
    # The same neighbour search DBSCAN ran (exact distances, its metric), so a point at exactly
    # eps is inside here as it was during training.
    search = NearestNeighbors(
        n_neighbors=1,
        algorithm=getattr(model, "algorithm", "auto"),
        metric=getattr(model, "metric", "euclidean"),
        metric_params=getattr(model, "metric_params", None),
        p=getattr(model, "p", None) or 2,
    ).fit(core)
    distance, nearest = search.kneighbors(x)
    core_labels = np.asarray(model.labels_)[np.asarray(model.core_sample_indices_)]
    within = distance[:, 0] <= eps
    labels[within] = core_labels[nearest[within, 0]]
    return labels
