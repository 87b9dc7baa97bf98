"""train_kmeans, train_dbscan, train_pca and train_tsne against scikit-learn computed independently."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_training.conftest import frames

IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


async def test_kmeans_on_iris_recovers_the_species(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_kmeans",
        train_data_s3_uri=data["iris"],
        model_output_s3_uri="models/km",
        n_clusters=3,
        label_column="target",
        random_state=0,
    )
    train = out["metrics"]["train"]
    assert train["ari"] > 0.6
    assert out["n_clusters"] == 3
    assert sum(out["cluster_sizes"]) == 150 and len(out["cluster_sizes"]) == 3
    bundle = read_bundle(router.storage, out["model_s3_uri"])
    meta = bundle.metadata
    assert meta["task_type"] == "clustering" and meta["algorithm"] == "kmeans"
    assert meta["feature_names"] == IRIS_FEATURES  # the label column is not a feature
    assert meta["cluster_sizes"] == out["cluster_sizes"] and meta["n_clusters"] == 3
    from sklearn.cluster import KMeans

    x = frames()["iris"][IRIS_FEATURES].to_numpy()
    reference = KMeans(n_clusters=3, random_state=0, n_init=10).fit(x)
    assert train["inertia"] == pytest.approx(reference.inertia_)
    assert np.array_equal(bundle.model.predict(x), reference.labels_)


async def test_kmeans_chooses_k_by_silhouette(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_kmeans",
        train_data_s3_uri=data["blobs"],
        model_output_s3_uri="models/km-auto",
        label_column="label",
        max_clusters=6,
        random_state=0,
    )
    scores = {h["n_clusters"]: h["silhouette"] for h in out["history"]}
    assert sorted(scores) == [2, 3, 4, 5, 6]
    assert out["n_clusters"] == max(scores, key=lambda k: scores[k]) == 3
    assert out["metrics"]["train"]["ari"] == pytest.approx(1.0)


async def test_dbscan_finds_the_blobs_and_counts_noise(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_dbscan",
        train_data_s3_uri=data["blobs"],
        model_output_s3_uri="models/db",
        columns=["a", "b"],
        eps=0.6,
        min_samples=5,
    )
    from sklearn.cluster import DBSCAN

    frame = frames()["blobs"]
    labels = DBSCAN(eps=0.6, min_samples=5).fit_predict(frame[["a", "b"]])
    assert out["n_clusters"] == len(set(labels) - {-1}) == 3
    assert out["n_noise"] == int((labels == -1).sum())
    assert sum(out["cluster_sizes"]) + out["n_noise"] == len(frame)
    assert out["metrics"]["train"]["silhouette"] > 0.7


async def test_dbscan_warns_when_everything_is_noise(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router, "train_dbscan", train_data_s3_uri=data["blobs"], model_output_s3_uri="models/db0", eps=1e-6
    )
    assert out["n_clusters"] == 0 and out["n_noise"] == 300
    assert any("noise" in w for w in out["warnings"])


async def test_pca_variance_ratio_picks_sklearns_count(router: ToolRouter, data: dict[str, str]) -> None:
    from sklearn.decomposition import PCA

    out = await call(
        router,
        "train_pca",
        train_data_s3_uri=data["digits"],
        model_output_s3_uri="models/pca",
        label_column="target",
        n_components=0.95,
    )
    frame = frames()["digits"]
    x = frame.drop(columns="target").to_numpy(dtype=float)
    reference = PCA(n_components=0.95).fit(x)
    assert out["n_components"] == reference.n_components_
    assert out["explained_variance_ratio"] == pytest.approx(reference.explained_variance_ratio_.tolist(), rel=1e-6)
    assert out["cumulative_variance_ratio"] >= 0.95
    storage = router.storage
    transformed = storage.read_dataframe(storage.resolve(out["transformed_s3_uri"]))
    pcs = [f"pc{i + 1}" for i in range(out["n_components"])]
    assert list(transformed.columns) == [*pcs, "target"]  # the label column is carried along
    assert np.allclose(np.abs(transformed[pcs].to_numpy()), np.abs(reference.transform(x)), atol=1e-6)
    meta = read_bundle(storage, out["model_s3_uri"]).metadata
    assert meta["task_type"] == "dimensionality_reduction"
    assert meta["explained_variance_ratio"] == out["explained_variance_ratio"]
    assert out["transformed_s3_uri"].endswith("models/pca-transformed.parquet")


async def test_pca_component_count(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_pca",
        train_data_s3_uri=data["iris"],
        model_output_s3_uri="models/pca2",
        columns=IRIS_FEATURES,
        n_components=2,
        transformed_output_s3_uri="out/iris-2d.csv",
    )
    assert out["n_components"] == 2 and len(out["explained_variance_ratio"]) == 2
    assert out["transformed_s3_uri"].endswith("out/iris-2d.csv")
    text = await call_error(
        router, "train_pca", train_data_s3_uri=data["iris"], model_output_s3_uri="models/pca9", n_components=9
    )
    assert "n_components=9" in text


async def test_tsne_writes_an_embedding(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_tsne",
        train_data_s3_uri=data["iris"],
        model_output_s3_uri="models/tsne",
        label_column="target",
        perplexity=20,
        random_state=0,
        hyperparameters={"max_iter": 300},
    )
    kl = out["metrics"]["train"]["kl_divergence"]
    assert 0 < kl < 5
    assert out["sampled"] is False and out["n_rows_embedded"] == 150
    storage = router.storage
    embedding = storage.read_dataframe(storage.resolve(out["embedding_s3_uri"]))
    assert list(embedding.columns) == ["row_index", "tsne1", "tsne2", "target"]
    assert len(embedding) == 150 and np.isfinite(embedding[["tsne1", "tsne2"]].to_numpy()).all()
    meta = read_bundle(storage, out["model_s3_uri"], load=False).metadata
    assert meta["kl_divergence"] == kl and meta["embedding_s3_uri"] == out["embedding_s3_uri"]


async def test_tsne_samples_or_refuses_large_inputs(router: ToolRouter, data: dict[str, str]) -> None:
    args = {
        "train_data_s3_uri": data["digits"],
        "model_output_s3_uri": "models/tsne-big",
        "label_column": "target",
        "max_rows": 100,
        "perplexity": 10,
        "random_state": 0,
        "hyperparameters": {"max_iter": 300},
    }
    text = await call_error(router, "train_tsne", **args, sample_if_larger=False)
    assert "600 rows" in text and "max_rows=100" in text
    out = await call(router, "train_tsne", **args)
    assert out["sampled"] is True and out["n_rows_embedded"] == 100
    assert any("sample of 100 of 600" in w for w in out["warnings"])
    embedding = router.storage.read_dataframe(router.storage.resolve(out["embedding_s3_uri"]))
    rows = embedding["row_index"].to_numpy()
    assert len(set(rows)) == 100
    # the carried label matches the original row it came from
    assert np.array_equal(embedding["target"].to_numpy(), frames()["digits"]["target"].to_numpy()[rows])


async def test_tsne_perplexity_must_be_below_the_rows(router: ToolRouter, data: dict[str, str]) -> None:
    text = await call_error(
        router,
        "train_tsne",
        train_data_s3_uri=data["digits"],
        model_output_s3_uri="m",
        max_rows=20,
        perplexity=30,
    )
    assert "perplexity" in text


async def test_unsupervised_refuses_text_columns(router: ToolRouter) -> None:
    frame = frames()["iris"].assign(name="flower")
    router.storage.write_dataframe(frame, router.storage.resolve("data/iris-text.parquet"))
    text = await call_error(router, "train_kmeans", train_data_s3_uri="data/iris-text.parquet", model_output_s3_uri="m")
    assert "name" in text and "preprocess_unsupervised" in text


async def test_kmeans_refuses_unknown_hyperparameter(router: ToolRouter, data: dict[str, str]) -> None:
    text = await call_error(
        router,
        "train_kmeans",
        train_data_s3_uri=data["iris"],
        model_output_s3_uri="m",
        hyperparameters={"n_clusters": 3},
    )
    assert "hyperparameters.n_clusters: unknown field" in text


# ----------------------------------------------------------------------------- attacks: unbounded work
async def test_attack_dbscan_huge_eps_is_refused_before_fitting(router: ToolRouter) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(10_000, 3)), columns=["a", "b", "c"])
    router.storage.write_dataframe(frame, router.storage.resolve("data/ten_k.parquet"))
    started = time.perf_counter()
    text = await call_error(
        router, "train_dbscan", train_data_s3_uri="data/ten_k.parquet", model_output_s3_uri="models/db", eps=1e9
    )
    assert "eps:" in text and "neighbours" in text and "Lower eps" in text
    assert time.perf_counter() - started < 20
    assert not (router.storage.root / "models" / "db").exists()


async def test_attack_dbscan_infinite_eps_is_refused_by_the_schema(router: ToolRouter, data: dict[str, str]) -> None:
    for eps in (float("inf"), "Infinity"):
        text = await call_error(
            router, "train_dbscan", train_data_s3_uri=data["blobs"], model_output_s3_uri="models/db", eps=eps
        )
        assert "eps: must be a finite number" in text
