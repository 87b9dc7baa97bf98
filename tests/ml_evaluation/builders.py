"""Small trained models written as real bundles (with `bundles.write_bundle`) plus their test data.

The fitted estimators and test frames stay available in memory, so tests can compute expected
metrics with scikit-learn directly and compare them with what the tools report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.common import bundles
from mcp_server.common.s3_utils import S3Utils


@dataclass
class Trained:
    uri: str  # bundle folder
    model: Any
    test_uri: str
    test: pd.DataFrame  # the test data as written (raw columns where a preprocessor exists)
    features: list[str]
    target: str | None = None
    preprocessor: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def x(self) -> np.ndarray:
        frame = self.test
        if self.preprocessor is not None:
            return np.asarray(self.preprocessor.transform(frame[self.extra["raw"]]), dtype=float)
        return frame[self.features].to_numpy(dtype=float)


def _meta(algorithm: str, task: str, features: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "algorithm": algorithm,
        "task_type": task,
        "hyperparameters": extra.pop("hyperparameters", {}),
        "feature_names": features,
        "metrics": extra.pop("metrics", {"train": {}, "validation": {}}),
        "training_data_uri": extra.pop("training_data_uri", "data/train.parquet"),
        "data_fingerprint": "sha256:" + "ab" * 32,
        **extra,
    }


def _write(storage: S3Utils, uri: str, model: Any, family: Any, meta: dict[str, Any], pre: Any = None) -> str:
    loc = storage.resolve(uri)
    bundles.write_bundle(storage, loc, model, family, meta, preprocessor=pre)
    return loc.uri


def _data(storage: S3Utils, frame: pd.DataFrame, uri: str) -> str:
    loc = storage.resolve(uri)
    storage.write_dataframe(frame, loc)
    return loc.uri


def breast_cancer(storage: S3Utils) -> dict[str, Trained]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])
    test = test.reset_index(drop=True)
    test_uri = _data(storage, test, "data/bc_test.parquet")
    out = {}
    rf = RandomForestClassifier(n_estimators=15, max_depth=4, random_state=0).fit(
        train[features].to_numpy(), train["target"]
    )
    meta = _meta(
        "random_forest",
        "classification",
        features,
        target_column="target",
        classes=[0, 1],
        hyperparameters={"n_estimators": 15, "max_depth": 4},
        metrics={"train": {"accuracy": 0.99}, "validation": {"accuracy": 0.95}},
    )
    out["rf"] = Trained(_write(storage, "models/rf", rf, "sklearn", meta), rf, test_uri, test, features, "target")
    logreg = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(
        train[features].to_numpy(), train["target"]
    )
    meta = _meta("logistic_regression", "classification", features, target_column="target", classes=[0, 1])
    out["logreg"] = Trained(
        _write(storage, "models/logreg", logreg, "sklearn", meta), logreg, test_uri, test, features, "target"
    )
    return out


def wine_xgboost(storage: S3Utils) -> Trained:
    """Multiclass XGBoost trained on indices 0..2 (label_encoded) with string class names."""
    import xgboost as xgb
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine(as_frame=True)
    frame = data.frame.copy()
    names = [f"class_{i}" for i in range(3)]
    frame["cultivar"] = [names[i] for i in frame.pop("target")]
    features = [c for c in frame.columns if c != "cultivar"]
    train, test = train_test_split(frame, test_size=0.35, random_state=1, stratify=frame["cultivar"])
    test = test.reset_index(drop=True)
    y_train = np.searchsorted(names, train["cultivar"])
    y_test = np.searchsorted(names, test["cultivar"])
    model = xgb.XGBClassifier(n_estimators=12, max_depth=2, learning_rate=0.3, n_jobs=1, random_state=0)
    model.fit(
        train[features].to_numpy(),
        y_train,
        eval_set=[(train[features].to_numpy(), y_train), (test[features].to_numpy(), y_test)],
        verbose=False,
    )
    evals = model.evals_result()
    history = [
        {
            "iteration": i,
            "train_loss": evals["validation_0"]["mlogloss"][i],
            "val_loss": evals["validation_1"]["mlogloss"][i],
        }
        for i in range(len(evals["validation_0"]["mlogloss"]))
    ]
    importance = dict(zip(features, model.feature_importances_.astype(float).tolist(), strict=True))
    meta = _meta(
        "xgboost",
        "classification",
        features,
        target_column="cultivar",
        classes=names,
        label_encoded=True,
        history=history,
        feature_importance=importance,
    )
    test_uri = _data(storage, test, "data/wine_test.csv")
    return Trained(_write(storage, "models/xgb", model, "xgboost", meta), model, test_uri, test, features, "cultivar")


def diabetes(storage: S3Utils) -> Trained:
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import train_test_split

    frame = load_diabetes(as_frame=True).frame
    features = [c for c in frame.columns if c != "target"]
    train, test = train_test_split(frame, test_size=0.3, random_state=0)
    test = test.reset_index(drop=True)
    model = RandomForestRegressor(n_estimators=15, max_depth=5, random_state=0).fit(
        train[features].to_numpy(), train["target"]
    )
    meta = _meta("random_forest", "regression", features, target_column="target")
    test_uri = _data(storage, test, "data/diabetes_test.parquet")
    return Trained(_write(storage, "models/rf_reg", model, "sklearn", meta), model, test_uri, test, features, "target")


def linear_regressor(storage: S3Utils, other: Trained) -> Trained:
    """A second regressor on the same data, for comparisons (Ridge: only coef_, no importances)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    frame = load_diabetes(as_frame=True).frame
    features = other.features
    model = Ridge(alpha=1.0).fit(frame[features].to_numpy(), frame["target"])
    meta = _meta("ridge", "regression", features, target_column="target")
    uri = _write(storage, "models/ridge", model, "sklearn", meta)
    return Trained(uri, model, other.test_uri, other.test, features, "target")


def iris_clustering(storage: S3Utils) -> dict[str, Trained]:
    from sklearn.cluster import DBSCAN, KMeans
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["species"] = frame.pop("target")
    features = [c for c in frame.columns if c != "species"]
    train, test = train_test_split(frame, test_size=0.4, random_state=0, stratify=frame["species"])
    test = test.reset_index(drop=True)
    test_uri = _data(storage, test, "data/iris_test.parquet")
    kmeans = KMeans(n_clusters=3, n_init=3, random_state=0).fit(train[features].to_numpy())
    meta = _meta("kmeans", "clustering", features, n_clusters=3, hyperparameters={"n_clusters": 3})
    dbscan = DBSCAN(eps=0.5, min_samples=5).fit(train[features].to_numpy())
    meta_db = _meta("dbscan", "clustering", features, hyperparameters={"eps": 0.5, "min_samples": 5})
    return {
        "kmeans": Trained(_write(storage, "models/kmeans", kmeans, "sklearn", meta), kmeans, test_uri, test, features),
        "dbscan": Trained(
            _write(storage, "models/dbscan", dbscan, "sklearn", meta_db), dbscan, test_uri, test, features
        ),
    }


def with_preprocessor(storage: S3Utils) -> Trained:
    """A classifier behind a ColumnTransformer (impute + scale numbers, impute + one-hot a category)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_breast_cancer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    numeric = ["mean_radius", "mean_texture", "mean_smoothness", "worst_area", "worst_concavity"]
    rng = np.random.default_rng(0)
    frame = frame[[*numeric, "target"]].copy()
    frame["clinic"] = rng.choice(["north", "south", "east"], size=len(frame))
    train, test = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["target"])
    test = test.reset_index(drop=True)
    test.loc[[0, 5, 9], "mean_radius"] = np.nan  # gaps the imputer fills
    test.loc[[1, 2], "clinic"] = "west"  # a category never seen in training
    test["patient_id"] = np.arange(len(test))  # an extra column the model ignores
    raw = [*numeric, "clinic"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                ["clinic"],
            ),
        ]
    ).fit(train[raw])
    model = LogisticRegression(max_iter=300).fit(pre.transform(train[raw]), train["target"])
    processed = [str(c) for c in pre.get_feature_names_out()]
    meta = _meta(
        "logistic_regression",
        "classification",
        processed,
        target_column="target",
        classes=[0, 1],
        raw_feature_columns=raw,
    )
    uri = _write(storage, "models/pre_logreg", model, "sklearn", meta, pre=pre)
    test_uri = _data(storage, test, "data/raw_test.parquet")
    return Trained(uri, model, test_uri, test, processed, "target", preprocessor=pre, extra={"raw": raw})


def rl_like(storage: S3Utils) -> Trained:
    """A bundle with an RL-style history (episode returns per iteration) for reward curves."""
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor().fit([[0.0], [1.0]], [0.0, 1.0])
    history = [
        {
            "iteration": i,
            "episode_return_mean": 10.0 + 9 * i,
            "episode_return_min": 5.0 + 8 * i,
            "episode_return_max": 20.0 + 10 * i,
        }
        for i in range(1, 9)
    ]
    meta = _meta("ppo", "reinforcement_learning", ["obs_0"], history=history)
    uri = _write(storage, "models/ppo", model, "sklearn", meta)
    return Trained(uri, model, "", pd.DataFrame(), ["obs_0"])


def build_all(storage: S3Utils) -> dict[str, Trained]:
    out = breast_cancer(storage)
    out["xgb"] = wine_xgboost(storage)
    out["rf_reg"] = diabetes(storage)
    out["ridge"] = linear_regressor(storage, out["rf_reg"])
    out.update(iris_clustering(storage))
    out["pre"] = with_preprocessor(storage)
    out["ppo"] = rl_like(storage)
    return out
