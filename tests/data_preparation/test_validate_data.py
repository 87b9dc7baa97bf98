from __future__ import annotations

import numpy as np
import pandas as pd

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error

SCHEMA = {
    "id": {"dtype": "int", "nullable": False, "unique": True},
    "age": {"dtype": "int", "min": 0, "max": 120},
    "score": {"dtype": "float", "min": 0.0, "max": 1.0},
    "name": {"dtype": "string", "nullable": False},
    "active": {"dtype": "bool"},
    "joined": {"dtype": "datetime", "min": "2020-01-01"},
    "plan": {"dtype": "category", "allowed_values": ["free", "pro"]},
    "email": {"dtype": "string"},
}


def crafted() -> pd.DataFrame:
    """Every rule of SCHEMA broken a known number of times."""
    return pd.DataFrame(
        {
            "id": [1, 2, 2, 4, 5, 6],  # one repeat
            "age": [30, -1, 45.5, 200, np.nan, 50],  # one fractional, one below min, one above max
            "score": [0.5, 1.5, "high", 0.2, 0.3, 0.1],  # one non-number, one above max
            "name": ["a", "b", None, "d", "e", 7],  # one missing (not nullable), one non-text
            "active": [True, False, "maybe", True, 1, 0],  # one non-boolean
            "joined": ["2021-05-01", "2019-12-31", "not a date", "2022-01-01", None, "2023-03-03"],
            "plan": ["free", "pro", "gold", "free", "vip", None],  # two outside the allowed values
            "extra": [1, 1, 1, 1, 1, 1],  # constant and not in the schema
        }
    )


async def test_validate_reports_every_violation_of_a_crafted_frame(router: ToolRouter) -> None:
    router.storage.write_dataframe(crafted(), router.storage.resolve("data/crafted.json"))
    out = await call(
        router,
        "validate_data",
        data_s3_uri="data/crafted.json",
        schema=SCHEMA,
        required_columns=["id", "country"],
        max_missing_ratio=0.1,
    )
    found = {(e["column"], e["check"]): e for e in out["errors"]}
    expected_counts = {
        ("country", "required_column"): 1,
        ("email", "missing_column"): 1,
        ("id", "unique"): 1,
        ("age", "dtype"): 1,
        ("age", "min"): 1,
        ("age", "max"): 1,
        ("score", "dtype"): 1,
        ("score", "max"): 1,
        ("name", "nullable"): 1,
        ("name", "dtype"): 1,
        ("active", "dtype"): 1,
        ("joined", "dtype"): 1,
        ("joined", "min"): 1,
        ("plan", "allowed_values"): 2,
        ("age", "max_missing_ratio"): 1,
        ("name", "max_missing_ratio"): 1,
        ("joined", "max_missing_ratio"): 1,
        ("plan", "max_missing_ratio"): 1,
    }
    assert {k: v["count"] for k, v in found.items()} == expected_counts
    assert out["is_valid"] is False
    assert found[("age", "dtype")]["examples"] == [45.5]
    assert found[("age", "min")]["examples"] == [-1]
    assert found[("age", "max")]["examples"] == [200]
    assert found[("score", "dtype")]["examples"] == ["high"]
    assert found[("name", "nullable")]["examples"] == [2]  # row numbers for missing values
    assert found[("name", "dtype")]["examples"] == [7]
    assert found[("active", "dtype")]["examples"] == ["maybe"]
    assert found[("joined", "dtype")]["examples"] == ["not a date"]
    assert found[("joined", "min")]["examples"] == ["2019-12-31"]
    assert found[("plan", "allowed_values")]["examples"] == ["gold", "vip"]
    assert found[("id", "unique")]["examples"] == [2]
    assert out["checks"]["failed"] == len(expected_counts)
    assert out["checks"]["total"] == out["checks"]["passed"] + out["checks"]["failed"]
    warnings = {(w["column"], w["check"]) for w in out["warnings"]}
    assert (None, "unknown_columns") in warnings and ("extra", "constant") in warnings


async def test_validate_passes_clean_data(any_router: ToolRouter) -> None:
    frame = pd.DataFrame({"id": [1, 2, 3], "age": [20.0, np.nan, 40.0], "plan": ["free", "pro", "free"]})
    any_router.storage.write_dataframe(frame, any_router.storage.resolve("clean.csv"))
    out = await call(
        any_router,
        "validate_data",
        data_s3_uri="clean.csv",
        schema={
            "id": {"dtype": "int", "nullable": False, "unique": True, "min": 1},
            "age": {"dtype": "int", "max": 120},  # a gap makes the column float; whole numbers still pass
            "plan": {"dtype": "string", "allowed_values": ["free", "pro"]},
        },
        required_columns=["id"],
        max_missing_ratio=0.5,
    )
    assert out["is_valid"] is True and out["errors"] == []
    # id: nullable, dtype, min, unique; age: dtype, max; plan: dtype, allowed; required id; 3 missing ratios
    assert out["checks"] == {"total": 12, "passed": 12, "failed": 0}
    assert out["rows"] == 3 and out["columns"] == 3


async def test_validate_without_rules_only_warns(router: ToolRouter) -> None:
    frame = pd.DataFrame({"a": [1, 1, 1], "b": [np.nan, np.nan, np.nan]})
    router.storage.write_dataframe(frame, router.storage.resolve("w.parquet"))
    out = await call(router, "validate_data", data_s3_uri="w.parquet")
    assert out["is_valid"] is True
    checks = {(w["column"], w["check"]) for w in out["warnings"]}
    assert checks == {("a", "constant"), ("b", "all_missing"), ("b", "missing_ratio"), (None, "duplicate_rows")}


async def test_validate_refuses_malformed_schema(router: ToolRouter) -> None:
    router.storage.write_dataframe(crafted(), router.storage.resolve("c.json"))
    text = await call_error(router, "validate_data", data_s3_uri="c.json", schema={"age": {"dtype": "integer"}})
    assert "schema.age.dtype" in text
    text = await call_error(router, "validate_data", data_s3_uri="c.json", schema={"age": {"minimum": 3}})
    assert "schema.age.minimum" in text and "unknown field" in text
    text = await call_error(router, "validate_data", data_s3_uri="c.json", schema={"age": {"min": 5, "max": 1}})
    assert "min (5.0) is greater than max (1.0)" in text
    text = await call_error(
        router, "validate_data", data_s3_uri="c.json", schema={"joined": {"dtype": "datetime", "min": "someday"}}
    )
    assert "schema.joined.min" in text and "not a date" in text
    text = await call_error(router, "validate_data", data_s3_uri="c.json", max_missing_ratio=1.5)
    assert "max_missing_ratio" in text


async def test_validate_names_missing_file(router: ToolRouter) -> None:
    text = await call_error(router, "validate_data", data_s3_uri="nope.csv")
    assert "does not exist" in text
