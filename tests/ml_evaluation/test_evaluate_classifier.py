from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from mcp_server.common import bundles
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import BUCKET, make_router
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained


async def test_binary_metrics_match_scikit_learn(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    out = await call(eval_router, "evaluate_classifier", model_s3_uri=rf.uri, test_data_s3_uri=rf.test_uri)
    y = rf.test["target"].to_numpy()
    pred = rf.model.predict(rf.x())
    proba = rf.model.predict_proba(rf.x())
    got = out["metrics"]
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["precision_weighted"] == pytest.approx(skm.precision_score(y, pred, average="weighted"))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]))
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba))
    assert out["average"] == "binary" and out["positive_label"] == 1
    assert out["labels"] == [0, 1]
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=[0, 1])
    for i, row in enumerate(out["per_class"]):
        assert row["label"] == i
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]
    assert out["n_samples"] == len(y)
    assert out["passed"] is None and out["failed_metrics"] == []


async def test_multiclass_label_encoded_xgboost_matches_scikit_learn(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    xgb = trained["xgb"]
    out = await call(eval_router, "evaluate_classifier", model_s3_uri=xgb.uri, test_data_s3_uri=xgb.test_uri)
    names = ["class_0", "class_1", "class_2"]
    y = xgb.test["cultivar"].to_numpy()
    pred = np.asarray(names)[xgb.model.predict(xgb.x())]
    proba = xgb.model.predict_proba(xgb.x()).astype(float)
    proba /= proba.sum(axis=1, keepdims=True)
    got = out["metrics"]
    assert out["labels"] == names and out["average"] == "weighted"
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert got["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["recall_macro"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr", average="weighted", labels=names), rel=1e-5
    )
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=names), rel=1e-4)
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=names).tolist()
    assert [row["label"] for row in out["per_class"]] == names


async def test_preprocessor_applied_to_raw_data_with_unseen_category_and_gaps(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    pre = trained["pre"]
    assert pre.test["mean_radius"].isna().sum() == 3 and (pre.test["clinic"] == "west").sum() == 2
    out = await call(eval_router, "evaluate_classifier", model_s3_uri=pre.uri, test_data_s3_uri=pre.test_uri)
    y = pre.test["target"].to_numpy()
    pred = pre.model.predict(pre.x())
    assert out["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["metrics"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, pre.model.predict_proba(pre.x())[:, 1]))
    assert any("patient_id" in w for w in out["warnings"])


async def test_missing_feature_column_is_named(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    rf = trained["rf"]
    rf.test.drop(columns=["mean_radius", "worst_area"]).to_csv(eval_root / "data" / "bc_missing.csv", index=False)
    text = await call_error(
        eval_router, "evaluate_classifier", model_s3_uri=rf.uri, test_data_s3_uri="data/bc_missing.csv"
    )
    assert "test_data_s3_uri" in text and "mean_radius" in text and "worst_area" in text
    pre = trained["pre"]
    pre.test.drop(columns=["clinic"]).to_parquet(eval_root / "data" / "raw_missing.parquet")
    text = await call_error(
        eval_router, "evaluate_classifier", model_s3_uri=pre.uri, test_data_s3_uri="data/raw_missing.parquet"
    )
    assert "clinic" in text


async def test_missing_target_column_is_named(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    text = await call_error(
        eval_router, "evaluate_classifier", model_s3_uri=rf.uri, test_data_s3_uri=rf.test_uri, target_column="label"
    )
    assert "target_column" in text and "'label'" in text


async def test_thresholds_give_passed_and_failed_metrics(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    ok = await call(
        eval_router,
        "evaluate_classifier",
        model_s3_uri=rf.uri,
        test_data_s3_uri=rf.test_uri,
        thresholds={"accuracy": 0.8, "log_loss": 0.5},
        save_result=False,
    )
    assert ok["passed"] is True and ok["failed_metrics"] == []
    bad = await call(
        eval_router,
        "evaluate_classifier",
        model_s3_uri=rf.uri,
        test_data_s3_uri=rf.test_uri,
        thresholds={"accuracy": 0.999, "log_loss": 0.01, "f1": 0.5},
        save_result=False,
    )
    assert bad["passed"] is False
    failed = {f["metric"]: f for f in bad["failed_metrics"]}
    assert set(failed) == {"accuracy", "log_loss"}
    assert failed["accuracy"]["direction"] == ">=" and failed["accuracy"]["threshold"] == 0.999
    assert failed["accuracy"]["value"] == pytest.approx(bad["metrics"]["accuracy"])
    assert failed["log_loss"]["direction"] == "<="


async def test_unknown_threshold_metric_is_refused(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    rf = trained["rf"]
    text = await call_error(
        eval_router,
        "evaluate_classifier",
        model_s3_uri=rf.uri,
        test_data_s3_uri=rf.test_uri,
        thresholds={"acuracy": 0.9},
    )
    assert "thresholds" in text and "acuracy" in text and "accuracy" in text


async def test_classifier_tool_refuses_regression_model(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    reg = trained["rf_reg"]
    text = await call_error(eval_router, "evaluate_classifier", model_s3_uri=reg.uri, test_data_s3_uri=reg.test_uri)
    assert "regression model" in text and "evaluate_regressor" in text


async def test_evaluation_saved_next_to_model(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    logreg = trained["logreg"]
    out = await call(
        eval_router,
        "evaluate_classifier",
        model_s3_uri=logreg.uri,
        test_data_s3_uri=logreg.test_uri,
        thresholds={"accuracy": 0.5},
    )
    uri = out["evaluation_s3_uri"]
    assert uri.startswith(logreg.uri + "/evaluations/") and uri.endswith("-evaluate_classifier.json")
    saved = json.loads(Path(uri.removeprefix("file://")).read_text())
    assert saved["metrics"] == out["metrics"]
    assert saved["passed"] is True and saved["tool"] == "evaluate_classifier"
    assert saved["model_s3_uri"] == logreg.uri and saved["test_data_s3_uri"] == logreg.test_uri
    listed = await call(eval_router, "load_model", model_s3_uri=logreg.uri)
    assert uri in listed["evaluations"]


async def test_save_result_false_writes_nothing(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    xgb = trained["xgb"]
    folder = eval_root / "models" / "xgb" / "evaluations"
    before = sorted(folder.iterdir()) if folder.exists() else []
    out = await call(
        eval_router, "evaluate_classifier", model_s3_uri=xgb.uri, test_data_s3_uri=xgb.test_uri, save_result=False
    )
    assert out["evaluation_s3_uri"] is None
    assert (sorted(folder.iterdir()) if folder.exists() else []) == before


async def test_evaluate_classifier_on_s3(s3_config: Config, trained: dict[str, Trained], aws: object) -> None:
    router = make_router(s3_config)
    rf = trained["rf"]
    storage = router.storage
    meta = {
        "algorithm": "random_forest",
        "task_type": "classification",
        "feature_names": rf.features,
        "target_column": "target",
        "classes": [0, 1],
    }
    bundles.write_bundle(storage, storage.resolve(f"s3://{BUCKET}/models/rf"), rf.model, "sklearn", meta)
    storage.write_dataframe(rf.test, storage.resolve(f"s3://{BUCKET}/data/test.parquet"))
    out = await call(
        router, "evaluate_classifier", model_s3_uri=f"s3://{BUCKET}/models/rf", test_data_s3_uri="data/test.parquet"
    )
    y = rf.test["target"].to_numpy()
    assert out["metrics"]["accuracy"] == pytest.approx(skm.accuracy_score(y, rf.model.predict(rf.x())))
    assert out["evaluation_s3_uri"].startswith(f"s3://{BUCKET}/models/rf/evaluations/")
    keys = [o["Key"] for o in aws.list_objects_v2(Bucket=BUCKET, Prefix="models/rf/evaluations/")["Contents"]]  # type: ignore[attr-defined]
    assert len(keys) == 1 and keys[0].endswith("-evaluate_classifier.json")
