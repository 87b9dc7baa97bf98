from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained


async def test_kmeans_metrics_match_scikit_learn(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    km = trained["kmeans"]
    out = await call(
        eval_router, "evaluate_clustering", model_s3_uri=km.uri, test_data_s3_uri=km.test_uri, label_column="species"
    )
    x = km.x()
    labels = km.model.predict(x)
    truth = km.test["species"].to_numpy()
    got = out["metrics"]
    assert got["silhouette"] == pytest.approx(skm.silhouette_score(x, labels))
    assert got["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, labels))
    assert got["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(x, labels))
    assert got["ari"] == pytest.approx(skm.adjusted_rand_score(truth, labels))
    assert got["nmi"] == pytest.approx(skm.normalized_mutual_info_score(truth, labels))
    assert out["n_clusters"] == 3 and out["n_noise"] == 0
    assert sum(out["cluster_sizes"].values()) == len(x)
    assert out["warnings"] == []  # the label column is not reported as an ignored feature


def _dbscan_assign(model: object, x: np.ndarray) -> np.ndarray:
    """Brute force: the label of the nearest core sample when it is within eps, else -1."""
    core = model.components_  # type: ignore[attr-defined]
    core_labels = model.labels_[model.core_sample_indices_]  # type: ignore[attr-defined]
    distances = np.linalg.norm(x[:, None, :] - core[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    return np.where(distances.min(axis=1) <= model.eps, core_labels[nearest], -1)  # type: ignore[attr-defined]


async def test_dbscan_assigns_nearest_core_sample_and_reports_noise(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    db = trained["dbscan"]
    out = await call(
        eval_router, "evaluate_clustering", model_s3_uri=db.uri, test_data_s3_uri=db.test_uri, label_column="species"
    )
    x = db.x()
    expected = _dbscan_assign(db.model, x)
    assert (expected == -1).sum() > 0, "the fixture should produce some noise"
    assert out["n_noise"] == int((expected == -1).sum())
    assert out["n_clusters"] == len(set(expected.tolist()) - {-1})
    core = expected != -1
    assert out["metrics"]["silhouette"] == pytest.approx(skm.silhouette_score(x[core], expected[core]))
    assert out["metrics"]["ari"] == pytest.approx(skm.adjusted_rand_score(db.test["species"], expected))
    assert out["cluster_sizes"]["-1"] == out["n_noise"]


async def test_label_metric_threshold_needs_label_column(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    km = trained["kmeans"]
    text = await call_error(
        eval_router, "evaluate_clustering", model_s3_uri=km.uri, test_data_s3_uri=km.test_uri, thresholds={"ari": 0.5}
    )
    assert "label_column" in text


async def test_davies_bouldin_threshold_is_a_maximum(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    km = trained["kmeans"]
    out = await call(
        eval_router,
        "evaluate_clustering",
        model_s3_uri=km.uri,
        test_data_s3_uri=km.test_uri,
        thresholds={"davies_bouldin": 0.1, "silhouette": 0.1},
        save_result=False,
    )
    assert out["passed"] is False
    assert [(f["metric"], f["direction"]) for f in out["failed_metrics"]] == [("davies_bouldin", "<=")]


async def test_clustering_tool_refuses_classifier(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    text = await call_error(eval_router, "evaluate_clustering", model_s3_uri=rf.uri, test_data_s3_uri=rf.test_uri)
    assert "classification model" in text and "evaluate_classifier" in text


async def test_unknown_label_column_is_named(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    km = trained["kmeans"]
    text = await call_error(
        eval_router, "evaluate_clustering", model_s3_uri=km.uri, test_data_s3_uri=km.test_uri, label_column="kind"
    )
    assert "label_column" in text and "'kind'" in text
