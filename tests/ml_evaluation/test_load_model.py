from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

from mcp_server.router import ToolRouter
from tests.helpers import call, call_error
from tests.ml_evaluation.builders import Trained


async def test_load_model_describes_bundle_with_verified_hashes(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    out = await call(eval_router, "load_model", model_s3_uri=trained["pre"].uri)
    assert out["algorithm"] == "logistic_regression"
    assert out["task_type"] == "classification"
    assert out["feature_names"] == trained["pre"].features
    assert out["raw_feature_columns"] == trained["pre"].extra["raw"]
    assert out["has_preprocessor"] is True
    assert out["target_column"] == "target"
    assert out["classes"] == [0, 1]
    assert out["sha256_verified"] is True
    folder = eval_root / "models" / "pre_logreg"
    expected = {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in out["sha256"]}
    assert set(expected) == {"model.skops", "preprocessor.skops"}
    assert out["sha256"] == expected
    assert out["lineage"]["training_data_uri"] == "data/train.parquet"
    assert out["lineage"]["data_fingerprint"].startswith("sha256:")
    assert out["lineage"]["created_at"]
    assert "scikit-learn" in out["lineage"]["library_versions"]


async def test_load_model_accepts_metadata_json_path(eval_router: ToolRouter, trained: dict[str, Trained]) -> None:
    out = await call(eval_router, "load_model", model_s3_uri=trained["xgb"].uri + "/metadata.json")
    assert out["family"] == "xgboost"
    assert out["classes"] == ["class_0", "class_1", "class_2"]
    assert out["metadata"]["label_encoded"] is True


async def test_load_model_refuses_tampered_bundle(eval_router: ToolRouter, eval_root: Path) -> None:
    shutil.copytree(eval_root / "models" / "rf", eval_root / "models" / "rf_tampered")
    model_file = eval_root / "models" / "rf_tampered" / "model.skops"
    model_file.write_bytes(model_file.read_bytes() + b"\x00")
    text = await call_error(eval_router, "load_model", model_s3_uri="models/rf_tampered")
    assert "sha256" in text and "model.skops" in text
    text = await call_error(
        eval_router, "evaluate_classifier", model_s3_uri="models/rf_tampered", test_data_s3_uri="data/bc_test.parquet"
    )
    assert "tampered" in text


async def test_load_model_refuses_pickle_file(eval_router: ToolRouter, eval_root: Path) -> None:
    (eval_root / "models" / "evil.pkl").write_bytes(pickle.dumps({"not": "loaded"}))
    text = await call_error(eval_router, "load_model", model_s3_uri="models/evil.pkl")
    assert "pickle" in text and "model_s3_uri" in text


async def test_load_model_refuses_bundle_listing_a_pickle_artifact(eval_router: ToolRouter, eval_root: Path) -> None:
    folder = eval_root / "models" / "pickled_bundle"
    shutil.copytree(eval_root / "models" / "rf", folder)
    meta = json.loads((folder / "metadata.json").read_text())
    (folder / "model.pkl").write_bytes(pickle.dumps(1))
    meta["artifacts"]["model.pkl"] = hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest()
    (folder / "metadata.json").write_text(json.dumps(meta))
    text = await call_error(eval_router, "load_model", model_s3_uri="models/pickled_bundle")
    assert "model.pkl" in text


async def test_load_model_names_a_folder_that_is_no_bundle(eval_router: ToolRouter) -> None:
    text = await call_error(eval_router, "load_model", model_s3_uri="data")
    assert "not a model bundle" in text


# ----------------------------------------------------------------------------- attacks: planted model files
async def test_attack_skops_naming_a_module_under_a_trusted_package_imports_nothing(
    eval_router: ToolRouter, eval_root: Path
) -> None:
    import sys

    from tests.crafted import plant, skops_naming

    bundle = eval_root / "models" / "rf_f2py"
    shutil.copytree(eval_root / "models" / "rf", bundle)
    # Importing numpy.f2py.__main__ runs f2py's command line: it prints usage and calls sys.exit.
    plant(bundle, "model.skops", skops_naming("numpy.f2py.__main__", "main"))
    sys.modules.pop("numpy.f2py.__main__", None)
    text = await call_error(eval_router, "load_model", model_s3_uri="models/rf_f2py")
    assert "not allowed" in text and "numpy.f2py.__main__.main" in text
    assert "numpy.f2py.__main__" not in sys.modules  # decided from the name alone
    still = await call(eval_router, "load_model", model_s3_uri="models/rf")
    assert still["sha256_verified"] is True


async def test_attack_pickle_bytes_planted_as_model_skops_is_a_clear_error(
    eval_router: ToolRouter, eval_root: Path
) -> None:
    from tests.crafted import PICKLE_BYTES, plant

    bundle = eval_root / "models" / "rf_pickled"
    shutil.copytree(eval_root / "models" / "rf", bundle)
    plant(bundle, "model.skops", PICKLE_BYTES)
    text = await call_error(eval_router, "load_model", model_s3_uri="models/rf_pickled")
    assert "model.skops is not a readable skops file" in text and "unexpectedly" not in text


async def test_attack_pickle_or_garbage_planted_as_model_ubj_is_a_clear_error(
    eval_router: ToolRouter, eval_root: Path
) -> None:
    from tests.crafted import PICKLE_BYTES, plant

    for name, data in (("pickled", PICKLE_BYTES), ("garbage", b"{\x00\xff garbage" * 50)):
        bundle = eval_root / "models" / f"xgb_{name}"
        shutil.copytree(eval_root / "models" / "xgb", bundle)
        plant(bundle, "model.ubj", data)
        text = await call_error(eval_router, "load_model", model_s3_uri=f"models/xgb_{name}")
        assert "model.ubj is not a readable XGBoost model" in text and "unexpectedly" not in text
