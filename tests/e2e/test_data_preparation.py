"""Data preparation through the real server over stdio: load -> validate -> preprocess -> split -> save."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mcp_types as types
import numpy as np
import pandas as pd
import pytest

from mcp_server.client import connect
from mcp_server.common.bundles import load_skops
from tests.e2e.client_helpers import call_result

pytestmark = pytest.mark.e2e


def raw_dataset(root: Path) -> str:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    rng = np.random.default_rng(1)
    frame["site"] = rng.choice(["a", "b"], size=len(frame))
    frame.loc[[3, 40, 90], "petal_length"] = np.nan
    frame.loc[[7], "target"] = np.nan
    (root / "raw").mkdir()
    frame.to_csv(root / "raw" / "iris.csv", index=False)
    return "raw/iris.csv"


async def test_data_preparation_workflow_through_the_real_client(storage_root: Path) -> None:
    raw = raw_dataset(storage_root)
    async with connect({"MLOPS_STORAGE_ROOT": str(storage_root), "LOG_LEVEL": "WARNING"}) as session:
        loaded, _ = await call_result(session, "load_dataset", s3_uri=raw)
        assert loaded["rows"] == 150 and loaded["missing_values"]["petal_length"] == 3

        checked, _ = await call_result(
            session,
            "validate_data",
            data_s3_uri=raw,
            schema={"target": {"dtype": "int", "nullable": False}, "sepal_length": {"min": 4, "max": 8}},
        )
        assert checked["is_valid"] is False
        assert [(e["column"], e["check"], e["count"]) for e in checked["errors"]] == [("target", "nullable", 1)]

        processed, result = await call_result(
            session, "preprocess_supervised", dataset_s3_uri=raw, target_column="target", task_type="classification"
        )
        assert processed["n_rows"] == 149 and processed["dropped_by_reason"] == {"missing_target": 1}
        assert processed["feature_names"][-2:] == ["site_a", "site_b"]
        links = {c.uri for c in result.content if isinstance(c, types.ResourceLink)}
        assert links == {processed["output_s3_uri"], processed["pipeline_s3_uri"]}

        split, _ = await call_result(
            session, "split_dataset", dataset_s3_uri=processed["output_s3_uri"], stratify_column="target"
        )
        assert split["train_rows"] + split["validation_rows"] + split["test_rows"] == 149
        for part in ("train", "validation", "test"):
            counts = split["class_counts"][part]
            assert max(counts.values()) - min(counts.values()) <= 1  # iris classes are balanced (50/50/49)

        saved, _ = await call_result(
            session, "save_processed_data", data_s3_uri=split["test_s3_uri"], output_s3_uri="exports/iris_test.csv"
        )

    written = (storage_root / "exports" / "iris_test.csv").read_bytes()
    assert saved["sha256"] == hashlib.sha256(written).hexdigest() and saved["rows"] == split["test_rows"]
    train = pd.read_parquet(Path(split["train_s3_uri"].removeprefix("file://")))
    assert list(train.columns) == [*processed["feature_names"], "target"]
    pipeline = load_skops(Path(processed["pipeline_s3_uri"].removeprefix("file://")))
    raw_rows = pd.read_csv(storage_root / raw).dropna(subset=["target"])
    expected = pipeline.transform(raw_rows[processed["raw_feature_columns"]])
    full = pd.read_parquet(Path(processed["output_s3_uri"].removeprefix("file://")))
    np.testing.assert_allclose(expected, full[processed["feature_names"]].to_numpy())
