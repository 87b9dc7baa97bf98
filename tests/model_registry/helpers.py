"""Test model bundles for the registry tests: tiny scikit-learn classifiers written as real bundles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp_server.common.bundles import write_bundle
from mcp_server.common.s3_utils import S3Utils

MakeBundle = Callable[..., str]


def train_tiny_models() -> dict[str, Any]:
    """Two small fitted classifiers (trained once per session) and their held-out accuracies."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    out: dict[str, Any] = {}
    for name, model in (
        ("logreg", LogisticRegression(max_iter=300)),
        ("tree", DecisionTreeClassifier(max_depth=1, random_state=0)),
    ):
        model.fit(x_train, y_train)
        out[name] = (model, float(model.score(x_train, y_train)), float(model.score(x_val, y_val)))
    return out


def bundle_writer(storage: S3Utils, models: dict[str, Any]) -> MakeBundle:
    def make(uri: str, kind: str = "logreg", **extra_metadata: Any) -> str:
        model, train_accuracy, val_accuracy = models[kind]
        metadata = {
            "algorithm": kind,
            "task_type": "classification",
            "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "metrics": {
                "train": {"accuracy": train_accuracy, "f1": train_accuracy},
                "validation": {"accuracy": val_accuracy},
            },
            "training_data_uri": "data/iris_train.parquet",
            "data_fingerprint": "sha256:feedbeef",
            **extra_metadata,
        }
        return str(write_bundle(storage, storage.resolve(uri), model, "sklearn", metadata)["model_s3_uri"])

    return make
