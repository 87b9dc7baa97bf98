"""Registry test fixtures: real model bundles of tiny scikit-learn models, and a moto S3 server
on 127.0.0.1 that several threads and processes share like a real bucket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_server.config import Config
from tests.conftest import http_s3_client, threaded_moto_server
from tests.model_registry.helpers import MakeBundle, bundle_writer, train_tiny_models


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Any]:
    return train_tiny_models()


@pytest.fixture
def make_bundle(any_router: Any, tiny_models: dict[str, Any]) -> MakeBundle:
    return bundle_writer(any_router.storage, tiny_models)


@pytest.fixture
def make_local_bundle(router: Any, tiny_models: dict[str, Any]) -> MakeBundle:
    return bundle_writer(router.storage, tiny_models)


@pytest.fixture
def atomic_conditional_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional PUT check-and-store one step, as S3 documents it to be.

    moto checks If-None-Match / If-Match and then stores the object in two steps of a threaded
    server; real S3 does both atomically. Without this, a race inside moto (not in our code) could
    let two create-only writes both succeed.
    """
    import moto.s3.responses as moto_s3

    lock = threading.Lock()
    original = moto_s3.S3Response.put_object

    def put_object(self: Any) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(moto_s3.S3Response, "put_object", put_object)


@dataclass
class MotoS3:
    endpoint: str
    bucket: str
    env: dict[str, str]

    def config(self, storage_root: Path) -> Config:
        return Config.from_env({**self.env, "MLOPS_STORAGE_ROOT": str(storage_root)})


@pytest.fixture
def moto_s3() -> Iterator[MotoS3]:
    """A real HTTP S3 endpoint (moto's threaded server) with one bucket."""
    with threaded_moto_server() as endpoint:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLOPS_S3_BUCKET": "registry-race-bucket",
        }
        http_s3_client(endpoint).create_bucket(Bucket=env["MLOPS_S3_BUCKET"])
        yield MotoS3(endpoint, env["MLOPS_S3_BUCKET"], env)
