"""`backend: "ray"` on train_xgboost and train_neural_network, on a real Ray cluster this module
starts (`ray start --head --num-cpus 4`, its own port and temp dir) and joins through RAY_ADDRESS:
the bundle is the one local training writes (evaluation, feature names and metrics agree with a
local fit), the data's preprocessing applies, a data set over MLOPS_MAX_DATASET_MB trains there
while local training refuses it, the workers read S3 (moto over HTTP) as well as the local root,
jobs can be polled and cancelled, and bad calls fail before any
job. Only this module's cluster is stopped (by the pids of its processes), never a bare `ray stop`.

Budget: three Ray Train runs (XGBoost, the network, a cancelled one); the checks that need no run
are quick."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd
import pytest

from mcp_server.common.bundles import read_bundle
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import BUCKET, http_s3_client, make_router, threaded_moto_server
from tests.e2e.test_reinforcement import MARKER, free_port, kill_marked
from tests.helpers import call, call_error, poll_job, router_caller

CLUSTER_CPUS = 4  # two train workers on two CPUs would starve Ray Data's read tasks


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node Ray cluster of this module (auth off on both sides); yields its address."""
    from mcp_server.capabilities.ml_training.rl.ray_runtime import shutdown_ray

    marker, port = secrets.token_hex(8), free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", MARKER: marker}
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
        "--node-ip-address=127.0.0.1", f"--num-cpus={CLUSTER_CPUS}", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        try:
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
            yield f"127.0.0.1:{port}"
        finally:
            shutdown_ray()  # this process joined it through the server's Ray runtime
            kill_marked(marker)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ray-storage")


def router_for(root: Path, address: str | None, **settings: str) -> ToolRouter:
    env = {"MLOPS_STORAGE_ROOT": str(root), "LOG_LEVEL": "WARNING", **settings}
    if address:
        env["RAY_ADDRESS"] = address
    return make_router(Config.from_env(env))


@pytest.fixture(scope="module")
def ray_router(root: Path, cluster: str) -> ToolRouter:
    return router_for(root, cluster)


def labelled(n: int, seed: int) -> pd.DataFrame:
    """Numbers, a text column and string labels of three classes (low < mid < high)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 6)), columns=[f"f{i}" for i in range(6)])
    frame["colour"] = rng.choice(["red", "green", "blue"], size=n)
    score = frame.f0 + frame.f1 - frame.f2 + frame.colour.map({"red": 1.0, "green": 0.0, "blue": -1.0})
    frame["grade"] = np.where(score + rng.normal(0, 0.3, n) > 0.7, "high", "low")
    frame.loc[(score > -0.7) & (frame.grade == "low"), "grade"] = "mid"
    return frame


def linear(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["y"] = 30 + 3 * frame.a - 2 * frame.b + frame.c + rng.normal(0, 0.3, n)
    return frame


async def _cpus_free() -> bool:
    import ray

    return bool(ray.available_resources().get("CPU", 0.0) == ray.cluster_resources().get("CPU", -1.0))


# ---------------------------------------------------------------------------- runs
@pytest.mark.slow
async def test_xgboost_on_ray_trains_data_over_the_size_cap_into_a_local_like_bundle(
    root: Path, cluster: str, ray_router: ToolRouter
) -> None:
    storage = ray_router.storage
    storage.write_dataframe(labelled(30_000, 0), storage.resolve("raw/train.parquet"))
    storage.write_dataframe(labelled(3_000, 1), storage.resolve("raw/validation.parquet"))
    storage.write_dataframe(labelled(2_000, 2), storage.resolve("raw/test.parquet"))
    prep = await call(
        ray_router,
        "preprocess_supervised",
        dataset_s3_uri="raw/train.parquet",
        target_column="grade",
        task_type="classification",
        output_s3_uri="processed/train.parquet",
    )
    common = {
        "train_data_s3_uri": prep["output_s3_uri"],
        "target_column": "grade",
        "validation_data_s3_uri": "raw/validation.parquet",  # raw: the pipeline runs in the workers
        "hyperparameters": {"n_estimators": 60, "max_depth": 4},
        "random_state": 0,
        "max_wait_seconds": 900,
    }
    capped = router_for(root, cluster, MLOPS_MAX_DATASET_MB="1")
    refused = await call_error(capped, "train_xgboost", model_output_s3_uri="models/local-capped", **common)
    assert "MLOPS_MAX_DATASET_MB" in refused and 'backend: "ray"' in refused, refused

    ray_out = await call(
        capped, "train_xgboost", model_output_s3_uri="models/xgb-ray", backend="ray", num_workers=2, **common
    )
    local_out = await call(ray_router, "train_xgboost", model_output_s3_uri="models/xgb-local", **common)

    assert ray_out["status"] == "succeeded" and ray_out["classes"] == ["high", "low", "mid"]
    assert ray_out["n_train_rows"] == 30_000 and ray_out["n_validation_rows"] == 3_000
    assert set(ray_out["feature_importance"]) == set(prep["feature_names"])
    assert ray_out["history"][0].keys() >= {"iteration", "train_mlogloss", "validation_mlogloss"}
    assert ray_out["best_iteration"] is not None
    ray_bundle = read_bundle(storage, ray_out["model_s3_uri"])
    local_bundle = read_bundle(storage, local_out["model_s3_uri"])
    ray_meta, local_meta = ray_bundle.metadata, local_bundle.metadata
    assert ray_meta["family"] == local_meta["family"] == "xgboost"
    assert set(local_meta) <= set(ray_meta) and ray_meta["backend"] == "ray"
    for key in ("feature_names", "raw_feature_columns", "classes", "label_encoded", "target_column", "task_type"):
        assert ray_meta[key] == local_meta[key], key
    assert ray_bundle.preprocessor is not None and "preprocessor.skops" in ray_meta["artifacts"]
    assert abs(ray_out["metrics"]["validation"]["accuracy"] - local_out["metrics"]["validation"]["accuracy"]) < 0.03

    # Raw test rows go through the bundled pipeline, whichever backend trained the model.
    scores = {}
    for name, out in (("ray", ray_out), ("local", local_out)):
        evaluated = await call(
            capped, "evaluate_classifier", model_s3_uri=out["model_s3_uri"], test_data_s3_uri="raw/test.parquet"
        )
        scores[name] = evaluated["metrics"]["accuracy"]
    assert scores["ray"] > 0.8 and abs(scores["ray"] - scores["local"]) < 0.03, scores
    assert not list((root / ".mlops-tmp" / "ray-train").glob(f"{ray_out['job_id']}*"))  # checkpoints removed


@pytest.mark.slow
async def test_network_on_ray_reads_s3_and_is_a_job_that_evaluates_like_a_local_one(root: Path, cluster: str) -> None:
    # moto over HTTP: the cluster's workers read the Parquet from it themselves (their credentials
    # are their own environment's; the endpoint comes with the filesystem S3Utils hands out).
    with threaded_moto_server() as endpoint:
        s3 = http_s3_client(endpoint)
        s3.create_bucket(Bucket=BUCKET)
        router = router_for(root, cluster, MLOPS_S3_BUCKET=BUCKET, AWS_ENDPOINT_URL=endpoint)
        storage = router.storage
        storage.write_dataframe(linear(4_000, 3), storage.resolve("lin/train.parquet"))
        storage.write_dataframe(linear(1_000, 4), storage.resolve("lin/test.parquet"))
        args = {
            "train_data_s3_uri": "lin/train.parquet",
            "target_column": "y",
            "task_type": "regression",
            "validation_fraction": 0.2,
            "epochs": 8,
            "batch_size": 64,
            "learning_rate": 0.01,
            "random_state": 0,
        }
        started = await call(
            router,
            "train_neural_network",
            model_output_s3_uri="models/nn-ray",
            backend="ray",
            num_workers=2,
            resources_per_worker={"CPU": 0.5},
            wait=False,
            **args,
        )
        assert started["status"] in ("queued", "running") and started["job_id"]
        status = await poll_job(router_caller(router), started["job_id"], timeout=900, interval=0.5)
        assert status["status"] == "succeeded", status
        assert [h["epoch"] for h in status["history"]] == list(range(1, len(status["history"]) + 1))
        assert status["history"][0].keys() >= {"loss", "val_loss", "val_rmse"}
        local = await call(router, "train_neural_network", model_output_s3_uri="models/nn-local", **args)
        r2 = {}
        for name, uri in (("ray", "models/nn-ray"), ("local", local["model_s3_uri"])):
            evaluated = await call(router, "evaluate_regressor", model_s3_uri=uri, test_data_s3_uri="lin/test.parquet")
            r2[name] = evaluated["metrics"]["r2"]
        assert r2["ray"] > 0.9 and abs(r2["ray"] - r2["local"]) < 0.05, r2
        meta = read_bundle(storage, "models/nn-ray").metadata
        assert meta["family"] == "torch" and meta["n_train_rows"] + meta["n_validation_rows"] == 4_000
        assert meta["training_data_uri"] == f"s3://{BUCKET}/lin/train.parquet"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert not [k for k in keys if started["job_id"] in k and k.startswith(".mlops-tmp/")], keys


@pytest.mark.slow
async def test_cancel_stops_the_ray_run_and_frees_the_cluster(root: Path, ray_router: ToolRouter) -> None:
    storage = ray_router.storage
    storage.write_dataframe(labelled(20_000, 5).drop(columns="colour"), storage.resolve("long/train.parquet"))
    out = await call(
        ray_router,
        "train_xgboost",
        train_data_s3_uri="long/train.parquet",
        target_column="grade",
        model_output_s3_uri="models/cancelled",
        backend="ray",
        hyperparameters={"n_estimators": 10_000, "max_depth": 10, "learning_rate": 0.01},
        wait=False,
    )
    deadline = time.monotonic() + 600
    status = await call(ray_router, "get_training_metrics", job_id=out["job_id"])
    while not status["history"]:  # mid-run: boosting rounds are coming back
        assert status["status"] in ("queued", "running"), status
        assert time.monotonic() < deadline
        await anyio.sleep(0.3)
        status = await call(ray_router, "get_training_metrics", job_id=out["job_id"])
    started = time.monotonic()
    cancelled = await call(ray_router, "cancel_training_job", job_id=out["job_id"], wait_seconds=10)
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - started < 3
    assert not (root / "models/cancelled/metadata.json").exists()
    deadline = time.monotonic() + 30
    while not await _cpus_free():  # the controller, train workers and their placement group are gone
        assert time.monotonic() < deadline, "the cancelled run still holds the cluster's CPUs"
        await anyio.sleep(0.3)


# ---------------------------------------------------------------------------- refusals
async def test_local_data_is_refused_for_a_cluster_on_another_machine(root: Path) -> None:
    # 198.51.100.0/24 is a documentation network: never this host; refused before any connection.
    remote = router_for(root, "198.51.100.7:6379")
    remote.storage.write_dataframe(linear(50, 0), remote.storage.resolve("lin/small.parquet"))
    started = time.monotonic()
    text = await call_error(
        remote,
        "train_xgboost",
        train_data_s3_uri="lin/small.parquet",
        target_column="y",
        model_output_s3_uri="models/remote",
        backend="ray",
    )
    assert "train_data_s3_uri" in text and "cannot read" in text and "s3://" in text, text
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"num_workers": 8}, "num_workers=8 x resources_per_worker CPU=1 needs 8 CPU; the Ray cluster has 4"),
        ({"resources_per_worker": {"GPU": 1}}, "needs 2 GPU; the Ray cluster has 0"),
        ({"resources_per_worker": {"CPU": -1}}, "resources_per_worker"),
        ({"resources_per_worker": {"CPU": 0}}, "reserves nothing"),
        ({"backend": "local", "num_workers": 2}, "num_workers applies to backend 'ray' only"),
        ({"train_data_s3_uri": "lin/small.csv"}, "backend ray reads Parquet"),
        ({"target_column": "z"}, "column 'z' is not in the data"),
        (
            {"feature_columns": ["colour"], "train_data_s3_uri": "raw/text.parquet", "target_column": "grade"},
            "non-numeric feature columns",
        ),
    ],
)
async def test_bad_ray_calls_fail_clearly_before_any_job(
    ray_router: ToolRouter, args: dict[str, Any], expected: str
) -> None:
    storage = ray_router.storage
    storage.write_dataframe(linear(50, 0), storage.resolve("lin/small.parquet"))
    storage.write_dataframe(linear(50, 0), storage.resolve("lin/small.csv"))
    storage.write_dataframe(labelled(50, 0), storage.resolve("raw/text.parquet"))
    call_args = {
        "train_data_s3_uri": "lin/small.parquet",
        "target_column": "y",
        "model_output_s3_uri": "models/bad",
        "backend": "ray",
        **args,
    }
    text = await call_error(ray_router, "train_xgboost", **call_args)
    assert expected in text, text


async def test_tensorflow_network_is_refused_on_ray(ray_router: ToolRouter) -> None:
    ray_router.storage.write_dataframe(linear(50, 0), ray_router.storage.resolve("lin/small.parquet"))
    text = await call_error(
        ray_router,
        "train_neural_network",
        train_data_s3_uri="lin/small.parquet",
        target_column="y",
        model_output_s3_uri="models/bad-nn",
        backend="ray",
        framework="tensorflow",
    )
    assert "framework" in text and "pytorch" in text, text


async def test_over_the_size_cap_only_trainers_with_a_ray_backend_suggest_it(root: Path) -> None:
    capped = router_for(root, None, MLOPS_MAX_DATASET_MB="1")
    capped.storage.write_dataframe(linear(60_000, 6), capped.storage.resolve("lin/big.parquet"))
    args = {"train_data_s3_uri": "lin/big.parquet", "target_column": "y", "model_output_s3_uri": "models/capped"}
    network = await call_error(capped, "train_neural_network", **args)
    forest = await call_error(capped, "train_random_forest", **args)
    assert "MLOPS_MAX_DATASET_MB" in network and 'backend: "ray"' in network, network
    assert "MLOPS_MAX_DATASET_MB" in forest and "backend" not in forest, forest


def test_package_is_shipped_unless_the_own_rays_workers_can_import_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from mcp_server.capabilities.ml_training.backends.ray_train import _importable_by_children

    repo = str(Path(__file__).resolve().parents[2])
    monkeypatch.setenv("PYTHONPATH", repo)
    assert _importable_by_children()
    monkeypatch.setenv("PYTHONPATH", "")  # found only through the current directory: ship it
    assert not _importable_by_children()
