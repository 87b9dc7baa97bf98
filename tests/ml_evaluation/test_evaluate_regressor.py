from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained


async def test_regression_metrics_match_scikit_learn(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    reg = trained["rf_reg"]
    out = await call(eval_router, "evaluate_regressor", model_s3_uri=reg.uri, test_data_s3_uri=reg.test_uri)
    y = reg.test["target"].to_numpy()
    pred = reg.model.predict(reg.x())
    got = out["metrics"]
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert got["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert out["residuals"]["mean"] == pytest.approx(float(np.mean(y - pred)))
    assert out["target_column"] == "target" and out["n_samples"] == len(y)


async def test_mape_skips_zero_targets(eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path) -> None:
    reg = trained["rf_reg"]
    frame = reg.test.copy()
    frame.loc[:4, "target"] = 0.0
    frame.to_parquet(eval_root / "data" / "diabetes_zeros.parquet")
    out = await call(
        eval_router, "evaluate_regressor", model_s3_uri=reg.uri, test_data_s3_uri="data/diabetes_zeros.parquet"
    )
    y = frame["target"].to_numpy()
    pred = reg.model.predict(reg.x())
    nonzero = y != 0
    assert out["metrics"]["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y[nonzero], pred[nonzero]))
    assert out["metrics"]["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


async def test_lower_is_better_thresholds_are_maximums(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    reg = trained["rf_reg"]
    base = await call(
        eval_router, "evaluate_regressor", model_s3_uri=reg.uri, test_data_s3_uri=reg.test_uri, save_result=False
    )
    rmse, r2 = base["metrics"]["rmse"], base["metrics"]["r2"]
    ok = await call(
        eval_router,
        "evaluate_regressor",
        model_s3_uri=reg.uri,
        test_data_s3_uri=reg.test_uri,
        thresholds={"rmse": rmse + 1, "r2": r2 - 0.05},
        save_result=False,
    )
    assert ok["passed"] is True
    bad = await call(
        eval_router,
        "evaluate_regressor",
        model_s3_uri=reg.uri,
        test_data_s3_uri=reg.test_uri,
        thresholds={"rmse": rmse - 1, "mae": 1e9, "r2": r2 + 0.05},
        save_result=False,
    )
    assert bad["passed"] is False
    failed = {f["metric"]: f["direction"] for f in bad["failed_metrics"]}
    assert failed == {"rmse": "<=", "r2": ">="}


async def test_regressor_tool_refuses_classifier(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    text = await call_error(eval_router, "evaluate_regressor", model_s3_uri=rf.uri, test_data_s3_uri=rf.test_uri)
    assert "model_s3_uri" in text and "classification model" in text and "evaluate_classifier" in text


async def test_regressor_refuses_classification_thresholds(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    reg = trained["rf_reg"]
    text = await call_error(
        eval_router,
        "evaluate_regressor",
        model_s3_uri=reg.uri,
        test_data_s3_uri=reg.test_uri,
        thresholds={"accuracy": 0.9},
    )
    assert "thresholds" in text and "rmse" in text
