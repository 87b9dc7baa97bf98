"""train_kmeans, train_dbscan, train_pca and train_tsne: clustering and dimensionality reduction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mcp_server.capabilities.ml_training.data import (
    UnsupervisedData,
    prepare_unsupervised,
    resolve_seed,
    unsupervised_metadata,
)
from mcp_server.capabilities.ml_training.schemas import (
    DBSCANHyperparameters,
    KMeansHyperparameters,
    PCAHyperparameters,
    TrainDBSCANInput,
    TrainKMeansInput,
    TrainPCAInput,
    TrainTSNEInput,
    TSNEHyperparameters,
    UnsupervisedInput,
)
from mcp_server.capabilities.ml_training.tools.common import publish_bundle
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import Job
from mcp_server.common.metrics import clustering_metrics
from mcp_server.common.s3_utils import Location, S3Utils

_SILHOUETTE_SAMPLE = 5000  # choosing k scores each candidate on a fixed sample (silhouette is O(n^2))
DBSCAN_MAX_ROWS = 200_000  # neighbourhood queries grow quadratically on dense data


def _load(storage: S3Utils, params: UnsupervisedInput) -> UnsupervisedData:
    return prepare_unsupervised(
        storage, train_uri=params.train_data_s3_uri, columns=params.columns, label_column=params.label_column
    )


def _result(meta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "model_s3_uri": meta["model_s3_uri"],
        "algorithm": meta["algorithm"],
        "metrics": meta["metrics"],
        "history": meta["history"],
        "random_state": meta["random_state"],
        "n_train_rows": meta["n_train_rows"],
        **extra,
    }


def _cluster_sizes(labels: np.ndarray) -> list[int]:
    clusters = labels[labels >= 0]
    return [int(n) for n in np.bincount(clusters)] if len(clusters) else []


def _default_sibling(storage: S3Utils, model_loc: Location, suffix: str, explicit: str | None, field: str) -> Location:
    loc = (
        storage.resolve(explicit, field)
        if explicit
        else storage.sibling(model_loc, f"{model_loc.name}-{suffix}.parquet")
    )
    storage.check_output(loc, field, "data")
    return loc


# ------------------------------------------------------------------------- k-means
def prepare_kmeans(storage: S3Utils, params: TrainKMeansInput, model_loc: Location) -> tuple[()]:
    if params.n_clusters is None and params.min_clusters > params.max_clusters:
        raise InvalidInputError("min_clusters is above max_clusters", field="min_clusters")
    return ()


def fit_kmeans(job: Job, storage: S3Utils, params: TrainKMeansInput, model_loc: Location) -> dict[str, Any]:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    hp = params.hyperparameters or KMeansHyperparameters()
    seed = resolve_seed(params.random_state)
    candidates = [params.n_clusters] if params.n_clusters else list(range(params.min_clusters, params.max_clusters + 1))
    total = len(candidates) + 2
    job.report(0, total, "reading data")
    data = _load(storage, params)
    job.mark("load")
    n = len(data.x)
    candidates = [k for k in candidates if k < n]
    if not candidates:
        raise InvalidInputError(f"{n} rows are too few for the requested clusters", field="n_clusters")
    job.report(1, total, f"read {n} rows")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, _SILHOUETTE_SAMPLE), replace=False))
    history: list[dict[str, Any]] = []
    best: tuple[float, Any] | None = None
    for step, k in enumerate(candidates, start=1):
        job.check_cancelled()
        model = KMeans(n_clusters=k, random_state=seed, **hp.model_dump()).fit(data.x)
        labels = model.labels_
        distinct = len(np.unique(labels[sample]))
        silhouette = float(silhouette_score(data.x[sample], labels[sample])) if 1 < distinct < len(sample) else -1.0
        history.append({"n_clusters": k, "inertia": float(model.inertia_), "silhouette": silhouette})
        job.add_history(history[-1])
        if best is None or silhouette > best[0]:
            best = (silhouette, model)
        job.report(1 + step, total, f"k={k}: silhouette {silhouette:.3f}")
    assert best is not None
    model = best[1]
    job.check_cancelled()
    labels = model.labels_
    job.mark("fit")
    metrics = {"train": {"inertia": float(model.inertia_), **clustering_metrics(data.x, labels, data.true_labels)}}
    sizes = _cluster_sizes(labels)
    job.mark("score")
    meta = unsupervised_metadata(
        data,
        algorithm="kmeans",
        task_type="clustering",
        hyperparameters={**hp.model_dump(), "n_clusters": int(model.n_clusters)},
        metrics=metrics,
        history=history,
        seed=seed,
        job_id=job.job_id,
        extra={
            "n_clusters": int(model.n_clusters),
            "cluster_sizes": sizes,
            "n_clusters_chosen_by": "given" if params.n_clusters else "silhouette",
            "label_column": params.label_column,
        },
    )
    final = publish_bundle(job, storage, model_loc, model, "sklearn", meta, total, preprocessor=data.preprocessor)
    return _result(final, n_clusters=int(model.n_clusters), cluster_sizes=sizes)


# ------------------------------------------------------------------------- DBSCAN
# DBSCAN holds every point's eps-neighbourhood at once: memory grows with rows x neighbours, so
# eps=1e9 on 200k rows would need hundreds of GB. Estimated from a sample before fitting.
DBSCAN_MAX_NEIGHBOUR_PAIRS = 50_000_000  # about 400 MB of neighbour indices
_DBSCAN_SAMPLE = 200


def _check_neighbourhoods(x: np.ndarray, eps: float, metric: str, min_samples: int) -> None:
    from sklearn.neighbors import KDTree

    n = len(x)
    if n * n <= DBSCAN_MAX_NEIGHBOUR_PAIRS:
        return  # small enough whatever eps is
    points = np.nan_to_num(np.asarray(x, dtype=np.float64))
    radius = eps
    if metric == "cosine":  # unit vectors: euclidean distance = sqrt(2 * cosine distance)
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        points = points / np.where(norms == 0, 1, norms)
        radius, metric = float(np.sqrt(2 * eps)), "euclidean"
    sample = points[np.random.default_rng(0).choice(n, size=_DBSCAN_SAMPLE, replace=False)]
    counts = KDTree(points, metric=metric).query_radius(sample, r=radius, count_only=True)
    estimate = int(float(np.mean(counts)) * n)
    if estimate > DBSCAN_MAX_NEIGHBOUR_PAIRS:
        raise InvalidInputError(
            f"eps={eps:g} gives each point about {int(np.mean(counts))} neighbours among {n} rows "
            f"(~{estimate * 8 // 1024**2} MB of neighbourhoods, limit {DBSCAN_MAX_NEIGHBOUR_PAIRS * 8 // 1024**2} MB)",
            field="eps",
            hint="Lower eps (scale the features first), or sample the data, or use train_kmeans.",
        )


def fit_dbscan(job: Job, storage: S3Utils, params: TrainDBSCANInput, model_loc: Location) -> dict[str, Any]:
    from sklearn.cluster import DBSCAN

    hp = params.hyperparameters or DBSCANHyperparameters()
    job.report(0, 3, "reading data")
    data = _load(storage, params)
    job.mark("load")
    if len(data.x) > DBSCAN_MAX_ROWS:
        raise InvalidInputError(
            f"DBSCAN on {len(data.x)} rows would take too long (limit {DBSCAN_MAX_ROWS})",
            field="train_data_s3_uri",
            hint="Sample the data first, or use train_kmeans.",
        )
    _check_neighbourhoods(data.x, params.eps, hp.metric, params.min_samples)
    job.report(1, 3, f"clustering {len(data.x)} rows")
    job.check_cancelled()
    model = DBSCAN(eps=params.eps, min_samples=params.min_samples, n_jobs=-1, **hp.model_dump()).fit(data.x)
    job.check_cancelled()
    labels = model.labels_
    n_clusters = len(set(labels.tolist()) - {-1})
    n_noise = int((labels == -1).sum())
    sizes = _cluster_sizes(labels)
    job.mark("fit")
    metrics = {"train": clustering_metrics(data.x, labels, data.true_labels)}
    history = [{"n_clusters": n_clusters, "n_noise": n_noise}]
    job.add_history(history[0])
    job.report(2, 3, f"{n_clusters} clusters, {n_noise} noise points")
    job.mark("score")
    meta = unsupervised_metadata(
        data,
        algorithm="dbscan",
        task_type="clustering",
        hyperparameters={**hp.model_dump(), "eps": params.eps, "min_samples": params.min_samples},
        metrics=metrics,
        history=history,
        seed=None,
        job_id=job.job_id,
        extra={
            "n_clusters": n_clusters,
            "n_noise": n_noise,
            "cluster_sizes": sizes,
            "label_column": params.label_column,
        },
    )
    final = publish_bundle(job, storage, model_loc, model, "sklearn", meta, 3, preprocessor=data.preprocessor)
    warnings = ["every point is noise: raise eps or lower min_samples"] if n_clusters == 0 else []
    return _result(final, n_clusters=n_clusters, n_noise=n_noise, cluster_sizes=sizes, warnings=warnings)


# ------------------------------------------------------------------------- PCA
def prepare_pca(storage: S3Utils, params: TrainPCAInput, model_loc: Location) -> tuple[Location]:
    if isinstance(params.n_components, float) and not params.n_components < 1:
        raise InvalidInputError(
            "n_components as a variance ratio must be below 1", field="n_components", hint="Use e.g. 0.95, or a count."
        )
    field = "transformed_output_s3_uri"
    return (_default_sibling(storage, model_loc, "transformed", params.transformed_output_s3_uri, field),)


def fit_pca(
    job: Job, storage: S3Utils, params: TrainPCAInput, model_loc: Location, out_loc: Location
) -> dict[str, Any]:
    from sklearn.decomposition import PCA

    hp = params.hyperparameters or PCAHyperparameters()
    seed = resolve_seed(params.random_state)
    job.report(0, 4, "reading data")
    data = _load(storage, params)
    job.mark("load")
    limit = min(data.x.shape)
    wanted: int | float = params.n_components
    if isinstance(wanted, int) and wanted > limit:
        raise InvalidInputError(f"n_components={wanted} exceeds min(rows, features) = {limit}", field="n_components")
    if isinstance(wanted, float) and hp.svd_solver not in ("auto", "full", "covariance_eigh"):
        raise InvalidInputError(
            "a variance ratio needs svd_solver auto, full or covariance_eigh", field="hyperparameters.svd_solver"
        )
    job.report(1, 4, f"fitting on {len(data.x)} rows x {data.x.shape[1]} features")
    job.check_cancelled()
    model = PCA(n_components=wanted, random_state=seed, **hp.model_dump()).fit(data.x)
    transformed = model.transform(data.x)
    job.check_cancelled()
    ratios = [float(r) for r in model.explained_variance_ratio_]
    cumulative = np.cumsum(ratios)
    history = [
        {"component": i + 1, "explained_variance_ratio": r, "cumulative": float(c)}
        for i, (r, c) in enumerate(zip(ratios, cumulative, strict=True))
    ]
    for record in history:
        job.add_history(record)
    reconstruction = model.inverse_transform(transformed)
    job.mark("fit")
    metrics = {
        "train": {
            "explained_variance": float(cumulative[-1]),
            "reconstruction_mse": float(np.mean((data.x - reconstruction) ** 2)),
        }
    }
    columns = [f"pc{i + 1}" for i in range(transformed.shape[1])]
    frame = pd.concat([pd.DataFrame(transformed, columns=columns), data.passthrough], axis=1)
    job.report(2, 4, "writing the transformed data")
    job.begin_publish()  # the data file is published before the bundle: commit now
    storage.write_dataframe(
        frame, out_loc, "parquet", lineage={"source_s3_uri": data.training_data_uri, "model_s3_uri": model_loc.uri}
    )
    job.mark("write_data")
    meta = unsupervised_metadata(
        data,
        algorithm="pca",
        task_type="dimensionality_reduction",
        hyperparameters={**hp.model_dump(), "n_components": wanted},
        metrics=metrics,
        history=history,
        seed=seed,
        job_id=job.job_id,
        extra={
            "n_components": int(model.n_components_),
            "explained_variance_ratio": ratios,
            "transformed_s3_uri": out_loc.uri,
            "output_columns": columns,
        },
    )
    final = publish_bundle(job, storage, model_loc, model, "sklearn", meta, 4, preprocessor=data.preprocessor)
    return _result(
        final,
        n_components=int(model.n_components_),
        explained_variance_ratio=ratios,
        cumulative_variance_ratio=float(cumulative[-1]),
        transformed_s3_uri=out_loc.uri,
    )


# ------------------------------------------------------------------------- t-SNE
def prepare_tsne(storage: S3Utils, params: TrainTSNEInput, model_loc: Location) -> tuple[Location]:
    field = "embedding_output_s3_uri"
    return (_default_sibling(storage, model_loc, "embedding", params.embedding_output_s3_uri, field),)


def fit_tsne(
    job: Job, storage: S3Utils, params: TrainTSNEInput, model_loc: Location, out_loc: Location
) -> dict[str, Any]:
    from sklearn.manifold import TSNE

    hp = params.hyperparameters or TSNEHyperparameters()
    seed = resolve_seed(params.random_state)
    job.report(0, 4, "reading data")
    data = _load(storage, params)
    job.mark("load")
    n = len(data.x)
    warnings: list[str] = []
    rows = np.arange(n)
    if n > params.max_rows:
        if not params.sample_if_larger:
            raise InvalidInputError(
                f"t-SNE on {n} rows would not finish in reasonable time (max_rows={params.max_rows})",
                field="train_data_s3_uri",
                hint="Set sample_if_larger=true to embed a random sample, raise max_rows, or reduce with train_pca.",
            )
        rows = np.sort(np.random.default_rng(seed).choice(n, size=params.max_rows, replace=False))
        data.take(rows)
        warnings.append(f"embedded a random sample of {params.max_rows} of {n} rows (see row_index)")
    if params.perplexity >= len(data.x):
        raise InvalidInputError(
            f"perplexity {params.perplexity} must be below the number of rows ({len(data.x)})", field="perplexity"
        )
    if hp.init == "pca" and params.n_components > data.x.shape[1]:
        raise InvalidInputError(
            f"n_components={params.n_components} exceeds the {data.x.shape[1]} features", field="n_components"
        )
    job.report(1, 4, f"embedding {len(data.x)} rows (this step reports no progress)")
    job.check_cancelled()
    model = TSNE(
        n_components=params.n_components, perplexity=params.perplexity, random_state=seed, n_jobs=-1, **hp.model_dump()
    )
    embedding = model.fit_transform(data.x)
    job.mark("fit")
    job.check_cancelled()
    kl = float(model.kl_divergence_)
    history = [{"iteration": int(model.n_iter_), "kl_divergence": kl}]
    job.add_history(history[0])
    columns = [f"tsne{i + 1}" for i in range(params.n_components)]
    frame = pd.concat(
        [pd.DataFrame({"row_index": rows}), pd.DataFrame(embedding, columns=columns), data.passthrough], axis=1
    )
    job.report(2, 4, "writing the embedding")
    job.begin_publish()  # the data file is published before the bundle: commit now
    storage.write_dataframe(
        frame, out_loc, "parquet", lineage={"source_s3_uri": data.training_data_uri, "model_s3_uri": model_loc.uri}
    )
    job.mark("write_data")
    meta = unsupervised_metadata(
        data,
        algorithm="tsne",
        task_type="dimensionality_reduction",
        hyperparameters={**hp.model_dump(), "n_components": params.n_components, "perplexity": params.perplexity},
        metrics={"train": {"kl_divergence": kl}},
        history=history,
        seed=seed,
        job_id=job.job_id,
        extra={
            "kl_divergence": kl,
            "embedding_s3_uri": out_loc.uri,
            "n_rows_embedded": len(data.x),
            "sampled": len(rows) < n,
            "output_columns": columns,
        },
    )
    final = publish_bundle(job, storage, model_loc, model, "sklearn", meta, 4, preprocessor=data.preprocessor)
    return _result(
        final, embedding_s3_uri=out_loc.uri, n_rows_embedded=len(data.x), sampled=len(rows) < n, warnings=warnings
    )
