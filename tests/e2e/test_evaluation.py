"""Evaluation through the real server over stdio: evaluate, compare, plot, report, and a refused call."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from sklearn import metrics as skm

from mcp_server.client import connect, result_text, structured
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.ml_evaluation.builders import breast_cancer, with_preprocessor
from tests.ml_evaluation.checks import ParsedHTML, assert_png

pytestmark = pytest.mark.e2e


async def ok(session: ClientSession, tool: str, **arguments: Any) -> tuple[dict[str, Any], types.CallToolResult]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, f"{tool}: {result_text(result)}"
    return structured(result), result


async def test_evaluation_workflow_through_the_real_client(storage_root: Path) -> None:
    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)}))
    models = breast_cancer(storage)
    pre = with_preprocessor(storage)
    rf, logreg = models["rf"], models["logreg"]
    async with connect({"MLOPS_STORAGE_ROOT": str(storage_root), "LOG_LEVEL": "WARNING"}) as session:
        tools = {t.name for t in (await session.list_tools()).tools}
        assert {"load_model", "evaluate_classifier", "compare_models", "visualization", "generate_report"} <= tools

        described, _ = await ok(session, "load_model", model_s3_uri="models/pre_logreg")
        assert described["sha256_verified"] is True and described["raw_feature_columns"] == pre.extra["raw"]

        evaluated, result = await ok(
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

        compared, _ = await ok(
            session,
            "compare_models",
            model_s3_uris=[rf.uri, logreg.uri],
            test_data_s3_uri=rf.test_uri,
            n_bootstrap=200,
        )
        best = compared["best_model_s3_uri"]
        assert best == compared["ranking"][0]["model"]
        assert compared["mcnemar"]["p_value"] <= 1

        plotted, result = await ok(
            session, "visualization", model_s3_uri=best, plot_type="roc_curve", test_data_s3_uri=rf.test_uri
        )
        images = [c for c in result.content if isinstance(c, types.ImageContent)]
        assert len(images) == 1
        assert_png(base64.b64decode(images[0].data))
        assert Path(plotted["image_s3_uri"].removeprefix("file://")).is_file()

        reported, _ = await ok(
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
