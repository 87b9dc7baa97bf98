from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained


async def test_classifiers_ranked_by_accuracy_with_ci_and_mcnemar(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    rf, logreg = trained["rf"], trained["logreg"]
    out = await call(
        eval_router,
        "compare_models",
        model_s3_uris=[rf.uri, logreg.uri],
        test_data_s3_uri=rf.test_uri,
        n_bootstrap=300,
    )
    y = rf.test["target"].to_numpy()
    accuracy = {m.uri: skm.accuracy_score(y, m.model.predict(m.x())) for m in (rf, logreg)}
    expected_order = sorted(accuracy, key=lambda uri: -accuracy[uri])
    assert accuracy[expected_order[0]] > accuracy[expected_order[1]]
    assert [r["model"] for r in out["ranking"]] == expected_order
    assert out["best_model_s3_uri"] == expected_order[0]
    assert out["metric"] == "accuracy" and out["higher_is_better"] is True
    for entry in out["ranking"]:
        assert entry["value"] == pytest.approx(accuracy[entry["model"]])
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
        assert entry["ci_high"] - entry["ci_low"] < 0.2
    table = {row["model"]: row for row in out["table"]}
    assert table[rf.uri]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, rf.model.predict_proba(rf.x())[:, 1]))
    assert {"accuracy", "f1", "log_loss", "f1_macro"} <= set(table[logreg.uri])
    # McNemar between the top two, computed independently.
    first, second = (trained[k] for k in ("logreg", "rf")) if expected_order[0] == logreg.uri else (rf, logreg)
    right_a = first.model.predict(first.x()) == y
    right_b = second.model.predict(second.x()) == y
    b, c = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    mc = out["mcnemar"]
    assert (mc["model_a"], mc["model_b"], mc["b"], mc["c"]) == (first.uri, second.uri, b, c)
    if b + c < 25:
        assert mc["p_value"] == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue)
    else:
        statistic = (abs(b - c) - 1) ** 2 / (b + c)
        assert mc["statistic"] == pytest.approx(statistic)
        assert mc["p_value"] == pytest.approx(stats.chi2.sf(statistic, 1))
    assert 0 <= mc["p_value"] <= 1


async def test_identical_models_have_mcnemar_p_value_one(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    shutil.copytree(eval_root / "models" / "rf", eval_root / "models" / "rf_twin", dirs_exist_ok=True)
    rf = trained["rf"]
    out = await call(
        eval_router,
        "compare_models",
        model_s3_uris=[rf.uri, "models/rf_twin"],
        test_data_s3_uri=rf.test_uri,
        n_bootstrap=50,
        save_result=False,
    )
    assert out["mcnemar"]["b"] == 0 and out["mcnemar"]["c"] == 0
    assert out["mcnemar"]["p_value"] == 1.0
    first, second = out["ranking"]
    assert first["value"] == second["value"]
    assert (first["ci_low"], first["ci_high"]) == (second["ci_low"], second["ci_high"])  # paired resamples


async def test_bootstrap_is_reproducible_with_the_same_seed(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    rf, logreg = trained["rf"], trained["logreg"]
    args = {"model_s3_uris": [rf.uri, logreg.uri], "test_data_s3_uri": rf.test_uri, "metric": "f1_macro"}
    one = await call(eval_router, "compare_models", n_bootstrap=100, random_state=7, save_result=False, **args)
    two = await call(eval_router, "compare_models", n_bootstrap=100, random_state=7, save_result=False, **args)
    assert one["ranking"] == two["ranking"]
    for entry in one["ranking"]:
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]


async def test_regressors_ranked_by_rmse_ascending(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    forest, ridge = trained["rf_reg"], trained["ridge"]
    out = await call(
        eval_router,
        "compare_models",
        model_s3_uris=[forest.uri, ridge.uri],
        test_data_s3_uri=forest.test_uri,
        n_bootstrap=200,
    )
    y = forest.test["target"].to_numpy()
    rmse = {m.uri: skm.root_mean_squared_error(y, m.model.predict(m.x())) for m in (forest, ridge)}
    assert out["metric"] == "rmse" and out["higher_is_better"] is False
    assert [r["model"] for r in out["ranking"]] == sorted(rmse, key=rmse.__getitem__)
    assert out["best_model_s3_uri"] == min(rmse, key=rmse.__getitem__)
    for entry in out["ranking"]:
        assert entry["value"] == pytest.approx(rmse[entry["model"]])
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert out["mcnemar"] is None
    assert out["evaluation_s3_uri"].startswith(out["best_model_s3_uri"] + "/evaluations/")


async def test_clustering_models_ranked_by_silhouette(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    km, db = trained["kmeans"], trained["dbscan"]
    out = await call(
        eval_router,
        "compare_models",
        model_s3_uris=[km.uri, db.uri],
        test_data_s3_uri=km.test_uri,
        label_column="species",
        n_bootstrap=100,
        save_result=False,
    )
    assert out["metric"] == "silhouette"
    values = [r["value"] for r in out["ranking"]]
    assert values == sorted(values, reverse=True)
    table = {row["model"]: row for row in out["table"]}
    assert table[km.uri]["silhouette"] == pytest.approx(skm.silhouette_score(km.x(), km.model.predict(km.x())))
    assert "ari" in table[db.uri]
    for entry in out["ranking"]:
        assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]


async def test_models_of_different_tasks_are_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(
        eval_router,
        "compare_models",
        model_s3_uris=[trained["rf"].uri, trained["rf_reg"].uri],
        test_data_s3_uri=trained["rf"].test_uri,
    )
    assert "model_s3_uris" in text and "different tasks" in text
    assert "classification" in text and "regression" in text


async def test_metric_of_another_task_is_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(
        eval_router,
        "compare_models",
        model_s3_uris=[trained["rf"].uri, trained["logreg"].uri],
        test_data_s3_uri=trained["rf"].test_uri,
        metric="rmse",
    )
    assert "metric" in text and "'rmse'" in text and "accuracy" in text


async def test_a_single_model_is_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    text = await call_error(
        eval_router, "compare_models", model_s3_uris=[trained["rf"].uri], test_data_s3_uri=trained["rf"].test_uri
    )
    assert "model_s3_uris" in text
