"""Training through the real server over stdio: progress notifications, wait=false polling,
cancellation by the client, ONNX export, and a job that outlives its server."""

from __future__ import annotations

from pathlib import Path

import anyio
import numpy as np
import pandas as pd
import pytest

from mcp_server.client import connect
from tests.e2e.client_helpers import call_ok, poll

pytestmark = pytest.mark.e2e


def write_data(root: Path) -> None:
    from sklearn.datasets import load_breast_cancer

    (root / "data").mkdir(exist_ok=True)
    load_breast_cancer(as_frame=True).frame.to_parquet(root / "data" / "bc.parquet")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 8))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)]).assign(target=(x[:, 0] + x[:, 1] > 0).astype(int))
    frame.to_parquet(root / "data" / "big.parquet")


def env(root: Path, **extra: str) -> dict[str, str]:
    return {"MLOPS_STORAGE_ROOT": str(root), "LOG_LEVEL": "WARNING", **extra}


LONG_XGBOOST = {
    "train_data_s3_uri": "data/big.parquet",
    "target_column": "target",
    "random_state": 0,
    "hyperparameters": {"n_estimators": 5000, "max_depth": 8, "learning_rate": 0.01, "n_jobs": 1},
}


async def test_training_reports_progress_and_exports(storage_root: Path) -> None:
    write_data(storage_root)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with connect(env(storage_root)) as session:
        out = await call_ok(
            session,
            "train_random_forest",
            {
                "train_data_s3_uri": "data/bc.parquet",
                "target_column": "target",
                "model_output_s3_uri": "models/rf",
                "validation_fraction": 0.25,
                "random_state": 0,
                "hyperparameters": {"n_estimators": 60},
            },
            progress_callback=on_progress,
        )
        assert out["status"] == "succeeded"
        assert out["metrics"]["validation"]["accuracy"] >= 0.93
        values = [v for v, _, _ in progress]
        assert len(values) >= 2 and values == sorted(values)
        assert progress[-1][0] == progress[-1][1]
        assert all((m or "").startswith(out["job_id"]) for _, _, m in progress)

        exported = await call_ok(
            session,
            "save_model",
            {"model_s3_uri": out["model_s3_uri"], "output_s3_uri": "export/rf.onnx", "format": "onnx"},
        )
        import onnxruntime as ort

        session_onnx = ort.InferenceSession(str(storage_root / "export/rf.onnx"), providers=["CPUExecutionProvider"])
        frame = pd.read_parquet(storage_root / "data/bc.parquet").drop(columns="target").head(20)
        labels = session_onnx.run(None, {exported["input_name"]: frame.to_numpy(np.float32)})[0]
        assert set(labels.tolist()) <= {0, 1}

        recorded = await call_ok(session, "get_training_metrics", {"model_s3_uri": out["model_s3_uri"]})
        assert recorded["metrics"] == out["metrics"] and recorded["job_id"] == out["job_id"]


async def test_wait_false_then_poll_until_succeeded(storage_root: Path) -> None:
    write_data(storage_root)
    async with connect(env(storage_root)) as session:
        started = await call_ok(
            session,
            "train_xgboost",
            {
                **LONG_XGBOOST,
                "hyperparameters": {"n_estimators": 100},
                "model_output_s3_uri": "models/x",
                "wait": False,
            },
        )
        assert started["status"] in ("queued", "running")
        done = await poll(session, started["job_id"], {"succeeded", "failed", "cancelled"})
        assert done["status"] == "succeeded", done
        assert done["history_total"] == 100 and len(done["history"]) <= 50  # the full series: history_s3_uri
        assert (storage_root / "models/x/metadata.json").exists()


async def test_client_cancel_stops_the_job_and_writes_no_bundle(storage_root: Path) -> None:
    write_data(storage_root)
    job_ids: list[str] = []
    running = anyio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if message and "round" in message:
            job_ids.append(message.split(":")[0])
            running.set()

    async with connect(env(storage_root)) as session:
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: session.call_tool(
                    "train_xgboost", {**LONG_XGBOOST, "model_output_s3_uri": "models/c"}, progress_callback=on_progress
                )
            )
            with anyio.fail_after(60):
                await running.wait()
            group.cancel_scope.cancel()  # the client abandons the call: notifications/cancelled
        status = await poll(session, job_ids[0], {"cancelled", "succeeded", "failed"}, timeout=30)
        assert status["status"] == "cancelled", status
        assert status["progress"]["done"] < 5000
        assert not (storage_root / "models/c/metadata.json").exists()
        # the server is still healthy after the cancel
        assert (await session.list_tools()).tools


async def test_job_of_a_stopped_server_reads_as_failed(storage_root: Path) -> None:
    write_data(storage_root)
    async with connect(env(storage_root)) as session:
        started = await call_ok(session, "train_xgboost", {**LONG_XGBOOST, "model_output_s3_uri": "m/l", "wait": False})
        await poll(session, started["job_id"], {"running"})
    # the first server is gone (its process ended with the session); a new one reads the record
    async with connect(env(storage_root)) as session:
        status = await call_ok(session, "get_training_metrics", {"job_id": started["job_id"]})
        assert status["status"] == "failed"
        assert "lost: server restarted" in status["error"]
    assert not (storage_root / "m/l/metadata.json").exists()
