"""Registry test fixtures: real model bundles of tiny scikit-learn models, and a moto S3 server
on 127.0.0.1 that several threads and processes share like a real bucket."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_server.common.bundles import write_bundle
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config

MakeBundle = Callable[..., str]


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Any]:
    """Two small fitted classifiers (trained once per session) and their held-out accuracies."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    out: dict[str, Any] = {}
    for name, model in (
        ("logreg", LogisticRegression(max_iter=300)),
        ("tree", DecisionTreeClassifier(max_depth=1, random_state=0)),
    ):
        model.fit(x_train, y_train)
        out[name] = (model, float(model.score(x_train, y_train)), float(model.score(x_val, y_val)))
    return out


def bundle_writer(storage: S3Utils, models: dict[str, Any]) -> MakeBundle:
    def make(uri: str, kind: str = "logreg", **extra_metadata: Any) -> str:
        model, train_accuracy, val_accuracy = models[kind]
        metadata = {
            "algorithm": kind,
            "task_type": "classification",
            "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "metrics": {
                "train": {"accuracy": train_accuracy, "f1": train_accuracy},
                "validation": {"accuracy": val_accuracy},
            },
            "training_data_uri": "data/iris_train.parquet",
            "data_fingerprint": "sha256:feedbeef",
            **extra_metadata,
        }
        return str(write_bundle(storage, storage.resolve(uri), model, "sklearn", metadata)["model_s3_uri"])

    return make


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
def moto_s3(atomic_conditional_puts: None) -> Iterator[MotoS3]:
    """A real HTTP S3 endpoint (moto's threaded server) with one bucket."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLOPS_S3_BUCKET": "registry-race-bucket",
        }
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=env["MLOPS_S3_BUCKET"])
        yield MotoS3(endpoint, env["MLOPS_S3_BUCKET"], env)
    finally:
        server.stop()
