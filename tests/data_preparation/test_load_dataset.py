from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from mcp_server.common.exceptions import BadFormatError
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
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


# ----------------------------------------------------------------------------- attacks: what data expands to
@pytest.fixture
def one_mb_router(storage_root: Path) -> ToolRouter:
    return make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_MAX_DATASET_MB": "1"}))


def test_attack_gzip_csv_bomb_is_refused_while_streaming(one_mb_router: ToolRouter, storage_root: Path) -> None:
    import gzip

    (storage_root / "bomb.csv.gz").write_bytes(gzip.compress(b"a\n" + b"0\n" * 2_000_000, 9))
    assert (storage_root / "bomb.csv.gz").stat().st_size < 64 * 1024
    with pytest.raises(BadFormatError, match=r"expands to about .* over the MLOPS_MAX_DATASET_MB limit of 1.0 MB"):
        one_mb_router.storage.read_dataframe(one_mb_router.storage.resolve("bomb.csv.gz"), field="s3_uri")


async def test_attack_zstd_parquet_bomb_is_refused_from_its_footer(
    one_mb_router: ToolRouter, storage_root: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"a": pa.array([7] * 3_000_000, pa.int64())}), storage_root / "bomb.parquet", compression="zstd"
    )
    assert (storage_root / "bomb.parquet").stat().st_size < 256 * 1024
    text = await call_error(one_mb_router, "load_dataset", s3_uri="bomb.parquet")
    assert "s3_uri" in text and "3000000 rows x 1 columns" in text and "MLOPS_MAX_DATASET_MB" in text


async def test_attack_json_bomb_is_refused(one_mb_router: ToolRouter, storage_root: Path) -> None:
    import gzip

    (storage_root / "bomb.json.gz").write_bytes(gzip.compress(b"[" + b'{"a":1},' * 300_000 + b'{"a":1}]', 9))
    (storage_root / "bomb.jsonl.gz").write_bytes(gzip.compress(b'{"a":1}\n' * 300_000, 9))
    for name in ("bomb.json.gz", "bomb.jsonl.gz"):
        text = await call_error(one_mb_router, "load_dataset", s3_uri=name)
        assert "MLOPS_MAX_DATASET_MB" in text


async def test_small_compressed_data_still_loads_under_a_small_cap(
    one_mb_router: ToolRouter, storage_root: Path
) -> None:
    import gzip

    (storage_root / "ok.csv.gz").write_bytes(gzip.compress(b"a,b\n" + b"1,x\n" * 50_000))
    out = await call(one_mb_router, "load_dataset", s3_uri="ok.csv.gz")
    assert (out["rows"], out["column_names"]) == (50_000, ["a", "b"])


async def test_attack_ten_thousand_columns_give_a_short_listing(router: ToolRouter, storage_root: Path) -> None:
    header = ",".join(f"c{i}" for i in range(10_001))
    (storage_root / "wide.csv").write_text(header + "\n" + ",".join("1" for _ in range(10_001)) + "\n")
    result = await router.call("load_dataset", {"s3_uri": "wide.csv"})
    assert not result.is_error
    out = result.structured_content
    assert out is not None and out["columns"] == 10_001 and out["columns_truncated"] is True
    assert len(out["column_names"]) == 200 and len(out["preview"][0]) == 200
    assert len(result.content[0].text) < 100_000  # type: ignore[union-attr]
