"""Raw test data whose columns have the processed names (scaling keeps them) still goes through
the bundle's preprocessing: only a file the preprocessing tools wrote counts as processed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from mcp_server.common import bundles
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.helpers import call


@pytest.fixture
def iris_root(local_config: Config) -> Path:
    root = Path(local_config.storage_root)
    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    (root / "data").mkdir(exist_ok=True)
    frame.to_parquet(root / "data" / "iris.parquet")
    return root


async def test_raw_test_data_with_the_processed_names_is_preprocessed(
    router: ToolRouter, local_config: Config, iris_root: Path
) -> None:
    split = await call(
        router,
        "split_dataset",
        dataset_s3_uri="data/iris.parquet",
        stratify_column="target",
        train_ratio=0.7,
        validation_ratio=0.0,
        test_ratio=0.3,
        random_state=0,
    )
    pre = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri=split["train_s3_uri"],
        target_column="target",
        task_type="classification",
        output_s3_uri="data/train.processed.parquet",
    )
    raw_names = [c for c in pd.read_parquet(iris_root / "data" / "iris.parquet").columns if c != "target"]
    assert pre["feature_names"] == raw_names  # scaled in place: raw and processed look alike
    await call(
        router,
        "train_random_forest",
        train_data_s3_uri=pre["output_s3_uri"],
        target_column="target",
        model_output_s3_uri="models/iris-rf",
        random_state=0,
    )
    storage = S3Utils(local_config)
    bundle = bundles.read_bundle(storage, "models/iris-rf", "model_s3_uri")
    raw_test = storage.read_dataframe(storage.resolve(split["test_s3_uri"], "test"))
    expected = np.mean(bundle.model.predict(bundle.preprocessor.transform(raw_test[raw_names])) == raw_test["target"])
    assert expected > 0.85  # the model learnt on scaled features; unscaled ones would score ~1/3

    raw_test.to_csv(iris_root / "data" / "test.csv", index=False)
    for uri in (split["test_s3_uri"], "data/test.csv"):  # split lineage without a pipeline; no lineage
        out = await call(router, "evaluate_classifier", model_s3_uri="models/iris-rf", test_data_s3_uri=uri)
        assert out["metrics"]["accuracy"] == pytest.approx(expected), uri

    # The same rows processed by the preprocessing tools are taken as they are, not scaled twice.
    processed = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri="data/test.csv",
        target_column="target",
        task_type="classification",
        output_s3_uri="data/test.processed.parquet",
    )
    frame = pd.read_parquet(iris_root / "data" / "test.processed.parquet")
    out = await call(
        router, "evaluate_classifier", model_s3_uri="models/iris-rf", test_data_s3_uri=processed["output_s3_uri"]
    )
    direct = np.mean(bundle.model.predict(frame[raw_names].to_numpy()) == frame["target"])
    assert out["metrics"]["accuracy"] == pytest.approx(direct)
