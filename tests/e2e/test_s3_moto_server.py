"""The real server against S3 over HTTP: moto's ThreadedMotoServer on 127.0.0.1 stands in for AWS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mcp_server.client import connect, result_text, structured
from tests.conftest import http_s3_client, threaded_moto_server

pytestmark = pytest.mark.e2e
BUCKET = "e2e-mlops-bucket"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with threaded_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3(moto_endpoint: str) -> Iterator[Any]:
    client = http_s3_client(moto_endpoint, key="e2e")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def server_env(endpoint: str, storage_root: Path, bucket: str = BUCKET) -> dict[str, str]:
    # stdio_client forwards only a whitelist of variables: everything AWS needs is passed explicitly.
    return {
        "MLOPS_S3_BUCKET": bucket,
        "MLOPS_STORAGE_ROOT": str(storage_root),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "e2e",
        "AWS_SECRET_ACCESS_KEY": "e2e",
        "AWS_REGION": "us-east-1",
    }


async def test_load_dataset_from_s3_by_key_and_uri(s3: Any, moto_endpoint: str, storage_root: Path) -> None:
    frame = pd.DataFrame({"sepal": [5.1, 4.9, 4.7, 4.6], "species": ["setosa", "setosa", None, "virginica"]})
    s3.put_object(Bucket=BUCKET, Key="datasets/iris.csv", Body=frame.to_csv(index=False).encode())
    async with connect(server_env(moto_endpoint, storage_root)) as session:
        by_key = await session.call_tool("load_dataset", {"s3_uri": "datasets/iris.csv"})
        assert not by_key.is_error, result_text(by_key)
        by_uri = await session.call_tool("load_dataset", {"s3_uri": f"s3://{BUCKET}/datasets/iris.csv"})
        assert not by_uri.is_error, result_text(by_uri)
        for out in (structured(by_key), structured(by_uri)):
            assert out["s3_uri"] == f"s3://{BUCKET}/datasets/iris.csv"
            assert (out["rows"], out["columns"]) == (4, 2)
            assert out["missing_values"] == {"sepal": 0, "species": 1}
    assert not any(storage_root.iterdir()), "an S3 read must not touch the local root"


async def test_s3_errors_are_clear(s3: Any, moto_endpoint: str, storage_root: Path) -> None:
    async with connect(server_env(moto_endpoint, storage_root)) as session:
        missing = await session.call_tool("load_dataset", {"s3_uri": "datasets/absent.csv"})
        assert missing.is_error
        assert f"s3://{BUCKET}/datasets/absent.csv does not exist" in result_text(missing)
        other_bucket = await session.call_tool("load_dataset", {"s3_uri": "s3://no-such-bucket-e2e/x.csv"})
        assert other_bucket.is_error
        assert "bucket 'no-such-bucket-e2e' does not exist" in result_text(other_bucket)
        assert "Traceback" not in result_text(missing) + result_text(other_bucket)


async def test_missing_configured_bucket_names_the_bucket(moto_endpoint: str, storage_root: Path) -> None:
    async with connect(server_env(moto_endpoint, storage_root, bucket="never-created-bucket")) as session:
        result = await session.call_tool("load_dataset", {"s3_uri": "data.csv"})
    assert result.is_error
    assert "bucket 'never-created-bucket' does not exist" in result_text(result)
    assert "MLOPS_S3_BUCKET" in result_text(result)
