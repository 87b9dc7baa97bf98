from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import StandardScaler

from mcp_server.common.bundles import load_skops
from mcp_server.common.transformers import as_number, as_text
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error


def raw_frame() -> pd.DataFrame:
    """Patients: numeric gaps, a categorical with gaps, a missing label."""
    return pd.DataFrame(
        {
            "age": [25.0, 40.0, np.nan, 61.0, 33.0, 52.0, 47.0, 29.0],
            "income": [30, 52, 41, 80, 35, 61, 58, 33],
            "clinic": ["north", "south", "north", None, "east", "south", "north", "east"],
            "label": ["yes", "no", "yes", "no", None, "no", "yes", "yes"],
        }
    )


def put(router: ToolRouter, frame: pd.DataFrame, key: str = "raw/patients.csv") -> str:
    router.storage.write_dataframe(frame, router.storage.resolve(key))
    return key


def load_pipeline(router: ToolRouter, uri: str) -> Any:
    with router.storage.local_file(router.storage.resolve(uri)) as path:
        return load_skops(path)


async def test_supervised_pipeline_reloads_and_reproduces_processed_rows(any_router: ToolRouter) -> None:
    key = put(any_router, raw_frame())
    out = await call(
        any_router, "preprocess_supervised", dataset_s3_uri=key, target_column="label", task_type="classification"
    )
    storage = any_router.storage
    assert out["output_s3_uri"].endswith("raw/patients.processed.parquet")
    assert out["pipeline_s3_uri"].endswith("raw/patients.pipeline.skops")
    assert out["feature_names"] == ["age", "income", "clinic_east", "clinic_north", "clinic_south"]
    assert out["raw_feature_columns"] == ["age", "income", "clinic"]
    assert out["n_rows"] == 7 and out["dropped_by_reason"] == {"missing_target": 1}
    assert out["class_counts"] == {"no": 3, "yes": 4}

    out_loc = storage.resolve(out["output_s3_uri"])
    processed = storage.read_dataframe(out_loc)
    assert list(processed.columns) == [*out["feature_names"], "label"]
    assert processed["label"].tolist() == ["yes", "no", "yes", "no", "no", "yes", "yes"]
    lineage = storage.read_lineage(out_loc)
    assert lineage["pipeline_s3_uri"] == out["pipeline_s3_uri"]
    assert lineage["target_column"] == "label" and lineage["task_type"] == "classification"
    assert lineage["raw_feature_columns"] == ["age", "income", "clinic"]
    assert lineage["feature_names"] == out["feature_names"]
    assert lineage["source_s3_uri"] == storage.resolve(key).uri

    pipeline = load_pipeline(any_router, out["pipeline_s3_uri"])
    kept = raw_frame().dropna(subset=["label"]).reset_index(drop=True)
    again = pipeline.transform(kept[["clinic", "income", "age"]])  # column order does not matter
    np.testing.assert_allclose(again, processed[out["feature_names"]].to_numpy())

    # New rows: an unseen clinic, a missing age and a missing clinic must not crash.
    new = pd.DataFrame({"age": [np.nan, 30.0], "income": [40, 50], "clinic": ["west", None]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the unknown category
        result = pipeline.transform(new)
    assert result.shape == (2, 5) and np.isfinite(result).all()
    assert result[0, 2:].tolist() == [0.0, 0.0, 0.0]  # unseen category: all one-hot columns off
    ages = kept["age"].to_numpy().reshape(-1, 1)
    expected_age = StandardScaler().fit(SimpleImputer(strategy="median").fit_transform(ages))
    median = np.nanmedian(ages)
    assert result[0, 0] == pytest.approx(expected_age.transform([[median]])[0, 0])
    assert result[1, 2:].tolist() == [0.0, 1.0, 0.0]  # missing clinic imputed with the mode, north


async def test_supervised_values_match_sklearn_computed_independently(router: ToolRouter) -> None:
    frame = raw_frame().dropna(subset=["label"])
    key = put(router, frame)
    out = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri=key,
        target_column="label",
        task_type="classification",
        feature_columns=["age", "income"],
        preprocessing_config={"handle_missing": "mean", "normalize": True},
    )
    processed = router.storage.read_dataframe(router.storage.resolve(out["output_s3_uri"]))
    expected = StandardScaler().fit_transform(SimpleImputer(strategy="mean").fit_transform(frame[["age", "income"]]))
    np.testing.assert_allclose(processed[["age", "income"]].to_numpy(), expected)
    assert out["categorical_columns"] == []


async def test_handle_missing_drop_drops_rows_before_fitting_and_still_imputes(router: ToolRouter) -> None:
    key = put(router, raw_frame())
    out = await call(
        router,
        "preprocess_supervised",
        dataset_s3_uri=key,
        target_column="label",
        task_type="classification",
        preprocessing_config={"handle_missing": "drop", "normalize": False},
    )
    # One row lacks the label, then one lacks age and one lacks clinic.
    assert out["dropped_by_reason"] == {"missing_target": 1, "missing_values": 2}
    assert out["n_rows"] == 5 and out["dropped_rows"] == 3
    pipeline = load_pipeline(router, out["pipeline_s3_uri"])
    kept_ages = [25.0, 40.0, 52.0, 47.0, 29.0]
    row = pipeline.transform(pd.DataFrame({"age": [np.nan], "income": [1], "clinic": [None]}))
    assert row[0, 0] == pytest.approx(np.mean(kept_ages))


async def test_encode_categorical_ordinal_and_false(router: ToolRouter) -> None:
    key = put(router, raw_frame())
    ordinal = await call(
        router,
        "preprocess_unsupervised",
        dataset_s3_uri=key,
        columns=["clinic"],
        preprocessing_config={"encode_categorical": "ordinal"},
    )
    assert ordinal["feature_names"] == ["clinic"]
    processed = router.storage.read_dataframe(router.storage.resolve(ordinal["output_s3_uri"]))
    # east=0, north=1, south=2; the gap is imputed with the mode (north).
    assert processed["clinic"].tolist() == [1, 2, 1, 1, 0, 2, 1, 0]
    pipeline = load_pipeline(router, ordinal["pipeline_s3_uri"])
    assert pipeline.transform(pd.DataFrame({"clinic": ["west"]}))[0, 0] == -1

    left_out = await call(
        router,
        "preprocess_unsupervised",
        dataset_s3_uri=key,
        preprocessing_config={"encode_categorical": False},
        output_s3_uri="out/numeric_only.parquet",
    )
    assert left_out["feature_names"] == ["age", "income"]
    assert set(left_out["excluded_columns"]) == {"clinic", "label"}
    assert left_out["pipeline_s3_uri"].endswith("out/numeric_only.pipeline.skops")


async def test_unsupervised_default_output_and_keep_columns(any_router: ToolRouter) -> None:
    key = put(any_router, raw_frame())
    out = await call(
        any_router, "preprocess_unsupervised", dataset_s3_uri=key, columns=["age", "income"], keep_columns=["label"]
    )
    assert out["output_s3_uri"].endswith("raw/patients.unsupervised.parquet")
    assert out["pipeline_s3_uri"].endswith("raw/patients.unsupervised.pipeline.skops")
    assert out["n_rows"] == 8 and out["feature_names"] == ["age", "income"]
    loc = any_router.storage.resolve(out["output_s3_uri"])
    processed = any_router.storage.read_dataframe(loc)
    assert list(processed.columns) == ["age", "income", "label"]
    assert processed["label"].isna().sum() == 1  # kept unchanged, gaps included
    lineage = any_router.storage.read_lineage(loc)
    assert lineage["target_column"] is None and lineage["task_type"] is None
    assert abs(processed["income"].mean()) < 1e-9 and processed["income"].std(ddof=0) == pytest.approx(1.0)


async def test_pipeline_handles_mixed_type_categories_and_text_numbers(router: ToolRouter) -> None:
    frame = pd.DataFrame({"code": [1, "a", None, "a", 2.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    router.storage.write_dataframe(frame, router.storage.resolve("mixed.json"))
    out = await call(
        router, "preprocess_supervised", dataset_s3_uri="mixed.json", target_column="y", task_type="regression"
    )
    assert out["feature_names"] == ["code_1", "code_2", "code_a"]
    pipeline = load_pipeline(router, out["pipeline_s3_uri"])
    row = pipeline.transform(pd.DataFrame({"code": [2]}))  # an int where the file held 2.0
    assert row.tolist() == [[0.0, 1.0, 0.0]]


async def test_feature_names_fall_back_to_prefixes_when_clean_names_collide(router: ToolRouter) -> None:
    frame = pd.DataFrame({"a": ["b", "c", "b"], "a_b": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    key = put(router, frame, "collide.csv")
    out = await call(router, "preprocess_supervised", dataset_s3_uri=key, target_column="y", task_type="classification")
    assert out["feature_names"] == ["num__a_b", "cat__a_b", "cat__a_c"]


async def test_dates_and_empty_columns_are_left_out_with_reasons(router: ToolRouter) -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
            "nothing": [np.nan, np.nan, np.nan],
            "x": [1.0, 2.0, 3.0],
            "y": [0.5, 1.5, 2.5],
        }
    )
    key = put(router, frame, "dated.parquet")
    out = await call(router, "preprocess_supervised", dataset_s3_uri=key, target_column="y", task_type="regression")
    assert out["feature_names"] == ["x"]
    assert "date" in out["excluded_columns"]["when"] and "no values" in out["excluded_columns"]["nothing"]
    assert len(out["warnings"]) == 2


async def test_preprocess_names_missing_target_column(router: ToolRouter) -> None:
    key = put(router, raw_frame())
    text = await call_error(
        router, "preprocess_supervised", dataset_s3_uri=key, target_column="lable", task_type="classification"
    )
    assert "target_column" in text and "'lable'" in text and "Did you mean 'label'" in text and "'income'" in text


async def test_preprocess_names_unknown_feature_and_keep_columns(router: ToolRouter) -> None:
    key = put(router, raw_frame())
    text = await call_error(router, "preprocess_unsupervised", dataset_s3_uri=key, columns=["age", "height"])
    assert "columns" in text and "'height'" in text
    text = await call_error(router, "preprocess_unsupervised", dataset_s3_uri=key, keep_columns=["id"])
    assert "keep_columns" in text and "'id'" in text


async def test_preprocess_refuses_bad_config_and_task(router: ToolRouter) -> None:
    key = put(router, raw_frame())
    base = {"dataset_s3_uri": key, "target_column": "label"}
    text = await call_error(router, "preprocess_supervised", **base, task_type="ranking")
    assert "task_type" in text
    text = await call_error(
        router, "preprocess_supervised", **base, task_type="classification", preprocessing_config={"scale": True}
    )
    assert "preprocessing_config.scale" in text and "unknown field" in text
    text = await call_error(
        router,
        "preprocess_supervised",
        **base,
        task_type="classification",
        preprocessing_config={"handle_missing": "zero"},
    )
    assert "preprocessing_config.handle_missing" in text and "median" in text
    text = await call_error(router, "preprocess_supervised", **base, task_type="regression")
    assert "regression needs a numeric target" in text
    key = put(router, pd.DataFrame({"x": [1, 2, 3], "score": [0.5, 1.25, 2.0]}), "scores.csv")
    text = await call_error(
        router, "preprocess_supervised", dataset_s3_uri=key, target_column="score", task_type="classification"
    )
    assert "fractional" in text and "regression" in text


async def test_preprocess_refuses_single_class_and_target_as_feature(router: ToolRouter) -> None:
    key = put(router, pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "a"]}), "one.csv")
    text = await call_error(
        router, "preprocess_supervised", dataset_s3_uri=key, target_column="y", task_type="classification"
    )
    assert "at least 2 classes" in text
    text = await call_error(
        router,
        "preprocess_supervised",
        dataset_s3_uri=key,
        target_column="y",
        task_type="classification",
        feature_columns=["x", "y"],
    )
    assert "feature_columns" in text and "also listed as a feature" in text


async def test_preprocess_output_must_be_parquet_and_not_the_input(router: ToolRouter) -> None:
    key = put(router, raw_frame(), "raw/p.parquet")
    base = {"dataset_s3_uri": key, "target_column": "label", "task_type": "classification"}
    text = await call_error(router, "preprocess_supervised", **base, output_s3_uri="out/p.csv")
    assert "output_s3_uri" in text and "Parquet" in text
    text = await call_error(router, "preprocess_supervised", **base, output_s3_uri=key)
    assert "output_s3_uri" in text and "input itself" in text
    text = await call_error(router, "preprocess_supervised", **base, pipeline_output_s3_uri="out/p.pkl")
    assert "pipeline_output_s3_uri" in text and ".skops" in text
    assert router.storage.list_objects(router.storage.resolve("out")) == []  # nothing half-written


async def test_drop_everything_is_a_clear_error(router: ToolRouter) -> None:
    frame = pd.DataFrame({"a": [1.0, np.nan], "b": [np.nan, 2.0], "y": [0, 1]})
    key = put(router, frame, "gappy.csv")
    text = await call_error(
        router,
        "preprocess_supervised",
        dataset_s3_uri=key,
        target_column="y",
        task_type="classification",
        preprocessing_config={"handle_missing": "drop"},
    )
    assert "no rows left" in text and "handle_missing" in text


def test_coercions_keep_gaps_and_unify_numbers() -> None:
    frame = pd.DataFrame({"a": np.array([1.0, np.nan, 2.5], dtype=np.float32), "b": ["x", None, 3]})
    text = as_text(frame)
    assert text["a"].iloc[[0, 2]].tolist() == ["1", "2.5"] and pd.isna(text["a"].iloc[1])
    assert text["b"].iloc[[0, 2]].tolist() == ["x", "3"] and pd.isna(text["b"].iloc[1])
    numbers = as_number(pd.DataFrame({"n": ["1.5", "abc", None]}))
    assert numbers["n"].iloc[0] == 1.5 and numbers["n"].iloc[1:].isna().all()
