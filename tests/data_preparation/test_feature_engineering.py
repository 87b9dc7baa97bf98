from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": [1.0, 2.0, 3.0, 4.0],
            "b": [0.0, 1.0, np.nan, 3.0],
            "city": ["rome", "oslo", None, "rome"],
            "when": ["2024-01-31 10:00", "2023-06-15 23:30", None, "2020-02-29 00:15"],
        }
    )


async def engineer(router: ToolRouter, *operations: dict[str, object], **extra: object) -> tuple[dict, pd.DataFrame]:
    router.storage.write_dataframe(frame(), router.storage.resolve("raw/f.csv"))
    out = await call(router, "feature_engineering", dataset_s3_uri="raw/f.csv", operations=list(operations), **extra)
    return out, router.storage.read_dataframe(router.storage.resolve(out["output_s3_uri"]))


async def test_polynomial_and_interaction_values(router: ToolRouter) -> None:
    out, data = await engineer(
        router,
        {"type": "polynomial", "columns": ["a", "b"], "degree": 2},
        {"type": "interaction", "pairs": [["a", "a^2"]]},  # uses a column the first operation made
    )
    assert out["new_columns"] == ["a^2", "a*b", "b^2", "a*a^2"]
    assert out["output_s3_uri"].endswith("raw/f.features.parquet")
    assert data["a^2"].tolist() == [1.0, 4.0, 9.0, 16.0]
    np.testing.assert_array_equal(data["a*b"], [0.0, 2.0, np.nan, 12.0])
    assert data["a*a^2"].tolist() == [1.0, 8.0, 27.0, 64.0]
    assert list(data.columns[:4]) == ["a", "b", "city", "when"]


async def test_polynomial_degree_three_interaction_only(router: ToolRouter) -> None:
    out, _ = await engineer(
        router, {"type": "polynomial", "columns": ["a", "b"], "degree": 3, "interaction_only": True}
    )
    assert out["new_columns"] == ["a*b"]
    out, data = await engineer(router, {"type": "polynomial", "columns": ["a"], "degree": 3})
    assert out["new_columns"] == ["a^2", "a^3"] and data["a^3"].tolist() == [1.0, 8.0, 27.0, 64.0]


async def test_log_values_and_refuses_negatives(any_router: ToolRouter) -> None:
    out, data = await engineer(any_router, {"type": "log", "columns": ["a", "b"]})
    assert out["new_columns"] == ["log1p_a", "log1p_b"]
    np.testing.assert_allclose(data["log1p_a"], np.log1p([1.0, 2.0, 3.0, 4.0]))
    text = await call_error(
        any_router,
        "feature_engineering",
        dataset_s3_uri="raw/f.csv",
        operations=[{"type": "log", "columns": ["b"], "log1p": False}],
    )
    assert "operations[0].columns" in text and "'b'" in text and "> 0 for log" in text and "[0.0]" in text
    any_router.storage.write_dataframe(pd.DataFrame({"v": [1.0, -2.0]}), any_router.storage.resolve("neg.csv"))
    text = await call_error(
        any_router, "feature_engineering", dataset_s3_uri="neg.csv", operations=[{"type": "log", "columns": ["v"]}]
    )
    assert "1 values not >= 0 for log1p" in text and "[-2.0]" in text


async def test_bin_quantile_uniform_and_labels(router: ToolRouter) -> None:
    _, data = await engineer(router, {"type": "bin", "column": "a", "bins": 2})
    assert data["a_bin"].tolist() == [0, 0, 1, 1]
    _, data = await engineer(
        router, {"type": "bin", "column": "b", "bins": 3, "strategy": "uniform", "labels": ["lo", "mid", "hi"]}
    )
    # Edges 0, 1, 2, 3 (right-inclusive): 0 and 1 fall in the first bin.
    labels = data["b_bin"].tolist()
    assert labels[:2] == ["lo", "lo"] and pd.isna(labels[2]) and labels[3] == "hi"
    text = await call_error(
        router,
        "feature_engineering",
        dataset_s3_uri="raw/f.csv",
        operations=[{"type": "bin", "column": "a", "bins": 3, "labels": ["x"]}],
    )
    assert "operations.0.bin" in text and "labels has 1 entries but bins is 3" in text


async def test_datetime_parts(router: ToolRouter) -> None:
    out, data = await engineer(router, {"type": "datetime", "column": "when"})
    assert out["new_columns"] == ["when_year", "when_month", "when_day", "when_dayofweek", "when_hour"]
    assert data["when_year"].tolist()[:2] == [2024, 2023] and pd.isna(data["when_year"][2])
    assert data.loc[3, ["when_month", "when_day", "when_dayofweek", "when_hour"]].tolist() == [2, 29, 5, 0]
    assert data.loc[0, "when_dayofweek"] == 2  # 2024-01-31 was a Wednesday


async def test_datetime_refuses_values_that_are_not_dates(router: ToolRouter) -> None:
    router.storage.write_dataframe(pd.DataFrame({"d": ["2024-01-01", "soon"]}), router.storage.resolve("d.csv"))
    text = await call_error(
        router, "feature_engineering", dataset_s3_uri="d.csv", operations=[{"type": "datetime", "column": "d"}]
    )
    assert "operations[0].column" in text and "'soon'" in text


async def test_one_hot_replaces_the_column(router: ToolRouter) -> None:
    out, data = await engineer(router, {"type": "one_hot", "columns": ["city"]}, output_s3_uri="out/f.csv")
    assert out["new_columns"] == ["city_oslo", "city_rome"] and out["removed_columns"] == ["city"]
    assert out["output_s3_uri"].endswith("out/f.csv")
    assert data["city_rome"].tolist() == [1, 0, 0, 1] and data["city_oslo"].tolist() == [0, 1, 0, 0]
    assert "city" not in data.columns


async def test_unknown_column_is_named_with_the_available_ones(router: ToolRouter) -> None:
    router.storage.write_dataframe(frame(), router.storage.resolve("raw/f.csv"))
    text = await call_error(
        router,
        "feature_engineering",
        dataset_s3_uri="raw/f.csv",
        operations=[{"type": "log", "columns": ["a"]}, {"type": "polynomial", "columns": ["a", "bb"]}],
    )
    assert "operations[1].columns" in text and "'bb'" in text and "['a', 'b', 'city', 'when', 'log1p_a']" in text
    assert not router.storage.exists(router.storage.resolve("raw/f.features.parquet"))


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ({"type": "log", "columns": ["a"], "base": 10}, "operations.0.log.base: unknown field"),
        ({"type": "square", "columns": ["a"]}, "operations.0"),
        ({"type": "polynomial", "columns": ["a"], "degree": 9}, "operations.0.polynomial.degree"),
        ({"type": "datetime", "column": "when", "parts": ["week"]}, "operations.0.datetime.parts.0"),
    ],
)
async def test_bad_operations_are_refused(router: ToolRouter, operation: dict[str, object], expected: str) -> None:
    text = await call_error(router, "feature_engineering", dataset_s3_uri="raw/f.csv", operations=[operation])
    assert expected in text


async def test_text_column_in_numeric_operation_and_name_clash(router: ToolRouter) -> None:
    router.storage.write_dataframe(frame(), router.storage.resolve("raw/f.csv"))
    text = await call_error(
        router, "feature_engineering", dataset_s3_uri="raw/f.csv", operations=[{"type": "log", "columns": ["city"]}]
    )
    assert "'city' is not numeric" in text
    text = await call_error(
        router,
        "feature_engineering",
        dataset_s3_uri="raw/f.csv",
        operations=[{"type": "log", "columns": ["a"]}, {"type": "log", "columns": ["a"]}],
    )
    assert "operations[1]" in text and "'log1p_a', which already exists" in text
