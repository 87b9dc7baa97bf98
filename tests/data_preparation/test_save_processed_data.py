from __future__ import annotations

import hashlib
import io

import pandas as pd
import pytest

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error

LINEAGE = {"pipeline_s3_uri": "file:///p.skops", "target_column": "y", "feature_names": ["x"]}


def stored(router: ToolRouter) -> pd.DataFrame:
    frame = pd.DataFrame({"x": [0.5, -1.0, 2.25], "y": ["a", "b", "a"]})
    router.storage.write_dataframe(frame, router.storage.resolve("proc/train.parquet"), lineage=LINEAGE)
    return frame


@pytest.mark.parametrize(("name", "fmt"), [("export/train.csv", "csv"), ("export/train.json", "json")])
async def test_save_converts_and_hashes_the_written_file(any_router: ToolRouter, name: str, fmt: str) -> None:
    frame = stored(any_router)
    out = await call(any_router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri=name)
    written = any_router.storage.read_bytes(any_router.storage.resolve(out["output_s3_uri"]))
    assert out["sha256"] == hashlib.sha256(written).hexdigest()
    assert out["rows"] == 3 and out["file_format"] == fmt and out["lineage_preserved"] is False
    back = pd.read_csv(io.BytesIO(written)) if fmt == "csv" else pd.read_json(io.BytesIO(written))
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)


async def test_save_parquet_keeps_lineage(any_router: ToolRouter) -> None:
    stored(any_router)
    out = await call(
        any_router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="final/t.parquet"
    )
    assert out["lineage_preserved"] is True
    assert any_router.storage.read_lineage(any_router.storage.resolve("final/t.parquet")) == LINEAGE


async def test_save_explicit_format_overrides_the_extension(router: ToolRouter) -> None:
    stored(router)
    out = await call(
        router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="final/t.dat", file_format="csv"
    )
    assert out["file_format"] == "csv"
    assert router.storage.read_text(router.storage.resolve("final/t.dat")).splitlines()[0] == "x,y"


async def test_save_refuses_overwriting_its_input(router: ToolRouter) -> None:
    stored(router)
    text = await call_error(
        router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="proc/train.parquet"
    )
    assert "output_s3_uri" in text and "input itself" in text
    assert router.storage.read_lineage(router.storage.resolve("proc/train.parquet")) == LINEAGE


async def test_save_names_bad_format_and_missing_input(router: ToolRouter) -> None:
    text = await call_error(router, "save_processed_data", data_s3_uri="proc/none.parquet", output_s3_uri="o.csv")
    assert "does not exist" in text
    stored(router)
    text = await call_error(router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="o.xlsx")
    assert "output_s3_uri" in text and "format" in text
    text = await call_error(
        router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="o.csv", file_format="xml"
    )
    assert "file_format" in text


# ----------------------------------------------------------------------------- attacks: server-owned storage
@pytest.mark.parametrize(
    "target",
    [
        "registry/m/index.json",
        "jobs/job-1.json",
        "pipelines/run-1.json",
        "github/deliveries/abc.json",
        ".mlops-tmp/x.parquet",
        "registry/m/versions/1.json",
    ],
)
async def test_attack_save_refuses_server_owned_prefixes(any_router: ToolRouter, target: str) -> None:
    stored(any_router)
    text = await call_error(any_router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri=target)
    assert "output_s3_uri" in text and ("only the server itself writes" in text or "reserved" in text)
    if not target.startswith(".mlops-tmp"):
        assert not any_router.storage.exists(any_router.storage.resolve(target))


async def test_attack_save_into_a_model_bundle_is_refused_and_the_bundle_survives(any_router: ToolRouter) -> None:
    from tests.model_registry.helpers import bundle_writer, train_tiny_models

    storage = any_router.storage
    bundle_writer(storage, train_tiny_models())("models/rf")
    before = storage.read_bytes(storage.resolve("models/rf/metadata.json"))
    stored(any_router)
    for target in ("models/rf/metadata.json", "models/rf/model.skops.parquet", "models/rf/sub/data.csv"):
        text = await call_error(
            any_router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri=target, file_format="csv"
        )
        assert "output_s3_uri" in text and ("model bundle" in text), text
    text = await call_error(
        any_router, "save_processed_data", data_s3_uri="proc/train.parquet", output_s3_uri="data/metadata.json"
    )
    assert "only a trainer writes" in text
    assert storage.read_bytes(storage.resolve("models/rf/metadata.json")) == before
    assert await call(any_router, "load_model", model_s3_uri="models/rf")
