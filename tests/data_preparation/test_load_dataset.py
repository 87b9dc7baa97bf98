from __future__ import annotations

import pandas as pd
import pytest

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.json", "data.jsonl"])
async def test_load_dataset_describes_each_format(any_router: ToolRouter, name: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "label": ["a", "b", "a", None]})
    storage = any_router.storage
    storage.write_dataframe(frame, storage.resolve(f"in/{name}"))
    out = await call(any_router, "load_dataset", s3_uri=f"in/{name}", preview_rows=2)
    assert out["rows"] == 4
    assert out["columns"] == 2
    assert out["column_names"] == ["x", "label"]
    assert out["missing_values"] == {"x": 1, "label": 1}
    assert len(out["preview"]) == 2
    assert out["preview"][0]["label"] == "a"


async def test_load_dataset_names_missing_object(router: ToolRouter) -> None:
    text = await call_error(router, "load_dataset", s3_uri="missing/nothing.csv")
    assert "does not exist" in text


async def test_load_dataset_refuses_unknown_field(router: ToolRouter) -> None:
    text = await call_error(router, "load_dataset", s3_uri="a.csv", colour="red")
    assert "colour" in text and "unknown field" in text


async def test_load_dataset_refuses_malformed_parquet(router: ToolRouter) -> None:
    (router.storage.root / "bad.parquet").write_bytes(b"not parquet at all")
    text = await call_error(router, "load_dataset", s3_uri="bad.parquet")
    assert "cannot read" in text and "parquet" in text
