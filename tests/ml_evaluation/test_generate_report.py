from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
from sklearn import metrics as skm

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained
from tests.ml_evaluation.checks import ParsedHTML, assert_png


def _no_external_resources(page: ParsedHTML) -> None:
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("data:image/png;base64,"), f"<{tag} {name}={value[:40]}>"


async def test_html_report_is_self_contained_with_metrics_and_plots(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    xgb = trained["xgb"]
    out = await call(
        eval_router,
        "generate_report",
        model_s3_uri=xgb.uri,
        test_data_s3_uri=xgb.test_uri,
        thresholds={"accuracy": 0.5, "log_loss": 0.001},
        output_s3_uri="reports/xgb.html",
    )
    assert out["format"] == "html" and out["passed"] is False
    assert {"confusion_matrix", "roc_curve", "feature_importance", "learning_curve"} <= set(out["plots"])
    text = (eval_root / "reports" / "xgb.html").read_text()
    page = ParsedHTML(text)
    _no_external_resources(page)
    images = page.find("img")
    assert len(images) == len(out["plots"])
    for attrs in images:
        src = attrs["src"] or ""
        assert_png(base64.b64decode(src.removeprefix("data:image/png;base64,")))
    body = page.all_text()
    names = ["class_0", "class_1", "class_2"]
    pred = [names[i] for i in xgb.model.predict(xgb.x())]
    accuracy = skm.accuracy_score(xgb.test["cultivar"], pred)
    assert f"{accuracy:.4f}" in body
    assert "FAILED: log_loss." in body
    for heading in ("Model", "Thresholds verdict", "Test metrics", "Per-class report", "Plots", "Lineage"):
        assert heading in [h for h in page.text if h.strip()], heading
    assert xgb.uri in body and "data/train.parquet" in body
    assert out["sha256"] and out["bytes"] == len(text.encode())


async def test_html_report_escapes_text(eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path) -> None:
    folder = eval_root / "models" / "rf_html"
    shutil.copytree(eval_root / "models" / "rf", folder, dirs_exist_ok=True)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["algorithm"] = '<img src="https://evil.example/x.png">'
    (folder / "metadata.json").write_text(json.dumps(meta))
    await call(
        eval_router,
        "generate_report",
        model_s3_uri="models/rf_html",
        output_s3_uri="reports/escaped.html",
        title="<script>alert(1)</script>",
    )
    text = (eval_root / "reports" / "escaped.html").read_text()
    page = ParsedHTML(text)
    _no_external_resources(page)
    assert "<script>alert(1)</script>" in page.all_text()  # shown as text, not run
    assert '<img src="https://evil.example/x.png">' in page.all_text()


async def test_markdown_report_links_png_files_beside_it(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    reg = trained["rf_reg"]
    out = await call(
        eval_router,
        "generate_report",
        model_s3_uri=reg.uri,
        test_data_s3_uri=reg.test_uri,
        output_s3_uri="reports/reg.md",
    )
    assert out["format"] == "markdown"
    assert "residuals" in out["plots"] and "feature_importance" in out["plots"]
    text = (eval_root / "reports" / "reg.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted(f"reg-{p}.png" for p in out["plots"])
    for link in links:
        assert_png((eval_root / "reports" / link).read_bytes())
    assert sorted(out["image_s3_uris"]) == sorted((eval_root / "reports" / link).as_uri() for link in links)
    rmse = skm.root_mean_squared_error(reg.test["target"], reg.model.predict(reg.x()))
    assert f"| rmse | {rmse:.4f} |" in text


async def test_report_from_saved_evaluation(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    rf = trained["rf"]
    evaluation = await call(
        eval_router,
        "evaluate_classifier",
        model_s3_uri=rf.uri,
        test_data_s3_uri=rf.test_uri,
        thresholds={"accuracy": 0.5},
    )
    out = await call(
        eval_router,
        "generate_report",
        evaluation_s3_uri=evaluation["evaluation_s3_uri"],
        output_s3_uri="reports/from-eval.html",
    )
    assert out["model_s3_uri"] == rf.uri and out["passed"] is True
    assert "roc_curve" in out["plots"]  # re-drawn from the test data the evaluation names
    page = ParsedHTML((eval_root / "reports" / "from-eval.html").read_text())
    body = page.all_text()
    assert f"{evaluation['metrics']['accuracy']:.4f}" in body
    assert evaluation["evaluation_s3_uri"] in body
    assert "PASSED" in body


async def test_report_from_a_saved_comparison_describes_its_best_model(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    rf, logreg = trained["rf"], trained["logreg"]
    compared = await call(
        eval_router, "compare_models", model_s3_uris=[rf.uri, logreg.uri], test_data_s3_uri=rf.test_uri, n_bootstrap=50
    )
    out = await call(
        eval_router,
        "generate_report",
        evaluation_s3_uri=compared["evaluation_s3_uri"],
        output_s3_uri="reports/from-comparison.md",
        format="markdown",
    )
    assert out["model_s3_uri"] == compared["best_model_s3_uri"]
    best = next(row for row in compared["table"] if row["model"] == compared["best_model_s3_uri"])
    text = (eval_root / "reports" / "from-comparison.md").read_text()
    assert f"| accuracy | {best['accuracy']:.4f} |" in text


async def test_report_without_test_data_describes_the_bundle(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    out = await call(eval_router, "generate_report", model_s3_uri=trained["ppo"].uri, output_s3_uri="reports/ppo.html")
    assert out["plots"] == ["reward_curve"]
    assert "Test metrics" not in out["sections"] and "Lineage" in out["sections"]


async def test_report_needs_a_model_or_an_evaluation(eval_router: ToolRouter) -> None:
    text = await call_error(eval_router, "generate_report", output_s3_uri="reports/none.html")
    assert "model_s3_uri or evaluation_s3_uri" in text


async def test_thresholds_without_test_data_are_refused(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    text = await call_error(
        eval_router,
        "generate_report",
        model_s3_uri=trained["rf"].uri,
        output_s3_uri="reports/none.html",
        thresholds={"accuracy": 0.9},
    )
    assert "thresholds" in text and "test_data_s3_uri" in text
    assert not (eval_root / "reports" / "none.html").exists()


@pytest.mark.parametrize("uri", ["models/rf/metadata.json", "data/bc_test.parquet"])
async def test_report_refuses_a_file_that_is_no_evaluation(eval_router: ToolRouter, uri: str) -> None:
    text = await call_error(eval_router, "generate_report", evaluation_s3_uri=uri, output_s3_uri="reports/bad.html")
    assert "evaluation_s3_uri" in text
