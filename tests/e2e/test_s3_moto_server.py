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
    # An S3 read keeps nothing locally: its download lived in the scratch area, now empty.
    left = [p for p in storage_root.rglob("*") if p.is_file()]
    assert not left, f"an S3 read left {left} in the local root"
    assert {p.name for p in storage_root.iterdir()} <= {".mlops-tmp"}


async def test_s3_errors_are_clear(s3: Any, moto_endpoint: str, storage_root: Path) -> None:
    env = {**server_env(moto_endpoint, storage_root), "MLOPS_ALLOWED_BUCKETS": "*"}  # any bucket may be named
    async with connect(env) as session:
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


async def test_attack_a_bucket_outside_the_allow_list_is_refused_before_any_request(
    s3: Any, moto_endpoint: str, storage_root: Path
) -> None:
    s3.create_bucket(Bucket="hr-payroll")
    s3.put_object(Bucket="hr-payroll", Key="salaries.csv", Body=b"name,salary\na,1\n")
    try:
        async with connect(server_env(moto_endpoint, storage_root)) as session:
            read = await session.call_tool("load_dataset", {"s3_uri": "s3://hr-payroll/salaries.csv"})
            write = await session.call_tool(
                "save_processed_data",
                {"data_s3_uri": "s3://hr-payroll/salaries.csv", "output_s3_uri": "s3://hr-payroll/x.csv"},
            )
        for result in (read, write):
            assert result.is_error and "bucket 'hr-payroll' is not one this server may use" in result_text(result)
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="hr-payroll")["Contents"]] == ["salaries.csv"]
    finally:
        for key in ("salaries.csv", "x.csv"):
            s3.delete_object(Bucket="hr-payroll", Key=key)
        s3.delete_bucket(Bucket="hr-payroll")
