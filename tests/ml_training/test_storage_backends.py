"""The same training flow on local storage and on an S3 bucket: data, bundle, job record,
polling and export all go through S3Utils.

Fits run in worker processes, which in-process moto cannot reach: the bucket is moto's server
on 127.0.0.1, as for a spawned server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import BUCKET, http_s3_client, make_router, threaded_moto_server
from tests.helpers import call, poll_job, router_caller
from tests.ml_training.conftest import frames


@pytest.fixture(params=["local", "s3"])
def backend_router(request: pytest.FixtureRequest, storage_root: Path) -> Iterator[ToolRouter]:
    if request.param == "local":
        yield make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
        return
    with threaded_moto_server() as endpoint:
        http_s3_client(endpoint).create_bucket(Bucket=BUCKET)
        env = {"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root), "AWS_ENDPOINT_URL": endpoint}
        yield make_router(Config.from_env(env))


async def test_train_poll_and_export_on_each_backend(backend_router: ToolRouter) -> None:
    any_router = backend_router
    storage = any_router.storage
    storage.write_dataframe(frames()["wine"], storage.resolve("data/wine.parquet"))
    started = await call(
        any_router,
        "train_xgboost",
        train_data_s3_uri="data/wine.parquet",
        target_column="target",
        model_output_s3_uri="models/xgb",
        validation_fraction=0.3,
        random_state=0,
        hyperparameters={"n_estimators": 20},
        wait=False,
    )
    polled = await poll_job(router_caller(any_router), started["job_id"], interval=0.05)
    assert polled["status"] == "succeeded", polled
    assert polled["metrics"]["validation"]["accuracy"] > 0.85
    # the job record lives under the default location: the bucket, or the local root
    record = storage.resolve(f"jobs/{started['job_id']}.json")
    assert storage.exists(record)
    assert polled["model_s3_uri"].startswith("s3://" if storage.config.s3_bucket else "file://")
    bundle = read_bundle(storage, polled["model_s3_uri"])
    assert bundle.metadata["family"] == "xgboost" and bundle.model is not None
    copy = await call(any_router, "save_model", model_s3_uri=polled["model_s3_uri"], output_s3_uri="archive/xgb")
    assert read_bundle(storage, copy["output_s3_uri"]).metadata["artifacts"] == bundle.metadata["artifacts"]
    onnx = await call(
        any_router, "save_model", model_s3_uri=polled["model_s3_uri"], output_s3_uri="archive/xgb.onnx", format="onnx"
    )
    assert storage.exists(storage.resolve(onnx["output_s3_uri"]))
