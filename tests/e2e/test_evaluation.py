"""Evaluation through the real server over stdio: evaluate, compare, plot, report, and a refused call."""

from __future__ import annotations

import base64
from pathlib import Path

import mcp_types as types
import pytest
from sklearn import metrics as skm

from mcp_server.client import connect, result_text
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.e2e.client_helpers import call_ok, call_result, poll
from tests.ml_evaluation.builders import breast_cancer, with_preprocessor
from tests.ml_evaluation.checks import ParsedHTML, assert_png

pytestmark = pytest.mark.e2e


async def test_evaluation_workflow_through_the_real_client(storage_root: Path) -> None:
    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
    models = breast_cancer(storage)
    pre = with_preprocessor(storage)
    rf, logreg = models["rf"], models["logreg"]
    async with connect({"MLOPS_STORAGE_ROOT": str(storage_root), "LOG_LEVEL": "WARNING"}) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"load_model", "evaluate_classifier", "compare_models", "visualization", "generate_report"} <= tools

        described, _ = await call_result(session, "load_model", model_s3_uri="models/pre_logreg")
        assert described["sha256_verified"] is True and described["raw_feature_columns"] == pre.extra["raw"]

        evaluated, result = await call_result(
            session,
            "evaluate_classifier",
            model_s3_uri="models/pre_logreg",
            test_data_s3_uri="data/raw_test.parquet",
            thresholds={"accuracy": 0.9},
        )
        y = pre.test["target"].to_numpy()
        assert evaluated["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pre.model.predict(pre.x())))
        assert evaluated["passed"] is True
        links = [c.uri for c in result.content if isinstance(c, types.ResourceLink)]
        assert links == [evaluated["evaluation_s3_uri"]]

        compared, _ = await call_result(
            session,
            "compare_models",
            model_s3_uris=[rf.uri, logreg.uri],
            test_data_s3_uri=rf.test_uri,
            n_bootstrap=200,
        )
        best = compared["best_model_s3_uri"]
        assert best == compared["ranking"][0]["model"]
        assert compared["mcnemar"]["p_value"] <= 1

        plotted, result = await call_result(
            session, "visualization", model_s3_uri=best, plot_type="roc_curve", test_data_s3_uri=rf.test_uri
        )
        images = [c for c in result.content if isinstance(c, types.ImageContent)]
        assert len(images) == 1
        assert_png(base64.b64decode(images[0].data))
        assert Path(plotted["image_s3_uri"].removeprefix("file://")).is_file()

        reported, _ = await call_result(
            session,
            "generate_report",
            evaluation_s3_uri=evaluated["evaluation_s3_uri"],
            output_s3_uri="reports/pre.html",
        )
        page = ParsedHTML((storage_root / "reports" / "pre.html").read_text())
        assert f"{evaluated['metrics']['accuracy']:.4f}" in page.all_text()
        sources = [attrs.get("src") or "" for attrs in page.find("img")]
        assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
        assert reported["passed"] is True

        refused = await session.call_tool(
            "evaluate_regressor", {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri}
        )
        assert refused.is_error
        assert "classification model" in result_text(refused) and "evaluate_classifier" in result_text(refused)


async def test_evaluation_jobs_over_the_real_client(storage_root: Path) -> None:
    """wait=false gives a handle whose polled result equals a waited call's; a cancelled
    comparison saves nothing; bad input fails at once, before any job."""
    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
    models = breast_cancer(storage)
    rf, logreg = models["rf"], models["logreg"]
    evaluations = [storage_root / "models" / name / "evaluations" for name in ("rf", "logreg")]
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with connect({"MLOPS_STORAGE_ROOT": str(storage_root), "LOG_LEVEL": "WARNING"}) as session:
        args = {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri}
        waited = await call_ok(session, "evaluate_classifier", args, progress_callback=on_progress)
        assert waited["status"] == "succeeded" and progress and progress[-1][0] == progress[-1][1]
        assert all((m or "").startswith(waited["job_id"]) for _, _, m in progress)
        handle = await call_ok(session, "evaluate_classifier", args, wait=False)
        assert handle["status"] in ("queued", "running") and handle["metrics"] is None
        polled = await poll(session, handle["job_id"])
        assert polled["status"] == "succeeded" and polled["metrics"] == waited["metrics"]
        assert polled["result"]["confusion_matrix"] == waited["confusion_matrix"]
        saved = {p.name for folder in evaluations if folder.is_dir() for p in folder.iterdir()}

        slow = {"model_s3_uris": [rf.uri, logreg.uri], "test_data_s3_uri": rf.test_uri, "metric": "roc_auc"}
        started = await call_ok(session, "compare_models", slow, n_bootstrap=10000, wait=False)
        await poll(session, started["job_id"], {"running"})
        stopped = await call_ok(session, "cancel_training_job", job_id=started["job_id"])
        assert stopped["status"] == "cancelled"
        assert (await poll(session, started["job_id"]))["status"] == "cancelled"
        assert {p.name for folder in evaluations if folder.is_dir() for p in folder.iterdir()} == saved

        jobs_before = set((storage_root / "jobs").iterdir())
        refused = await session.call_tool(
            "compare_models", {**slow, "metric": "accuracyy", "wait": False, "n_bootstrap": 10}
        )
        assert isinstance(refused, types.CallToolResult) and refused.is_error
        assert "accuracyy" in result_text(refused) and "metric" in result_text(refused)
        assert set((storage_root / "jobs").iterdir()) == jobs_before
