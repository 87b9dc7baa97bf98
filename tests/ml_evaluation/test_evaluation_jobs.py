"""Evaluations as jobs: wait/max_wait_seconds and the job handle like the trainers, the result
through get_training_metrics, their own concurrency limit, cancel with nothing saved, and bad
input refused before any job exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.bundles import write_bundle
from mcp_server.common.policy_models import PolicyArtifacts
from mcp_server.common.rl_env import env_spec_for
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.helpers import call, call_error, poll_job, router_caller, until
from tests.ml_evaluation.builders import Trained

HANDLE_KEYS = {"job_id", "status", "progress", "message"}
# Fields that differ between two runs of the same evaluation (job and time of saving).
PER_RUN = {"job_id", "evaluation_s3_uri", "status", "message", "progress", "queue_position"}


def _evaluations(root: Path, *models: Trained) -> set[str]:
    found: set[str] = set()
    for model in models:
        folder = Path(model.uri.removeprefix("file://")) / "evaluations"
        found |= {str(p) for p in folder.glob("*.json")} if folder.is_dir() else set()
    return found


def _job_records(root: Path) -> set[str]:
    return {p.name for p in (root / "jobs").glob("*.json")} if (root / "jobs").is_dir() else set()


def _same_result(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert {k: v for k, v in a.items() if k not in PER_RUN} == {k: v for k, v in b.items() if k not in PER_RUN}


def _slow_compare(trained: dict[str, Trained], **extra: Any) -> dict[str, Any]:
    """A comparison of two classifiers by roc_auc: each resample recomputes it (about 10 ms), so
    `n_bootstrap` sets how long it takes; 10000 (the default here) is minutes."""
    rf, logreg = trained["rf"], trained["logreg"]
    return {
        "model_s3_uris": [rf.uri, logreg.uri],
        "test_data_s3_uri": rf.test_uri,
        "metric": "roc_auc",
        "n_bootstrap": 10000,
        **extra,
    }


async def test_wait_false_returns_a_handle_and_polling_gives_the_waited_result(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    rf = trained["rf"]
    args = {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri, "thresholds": {"accuracy": 0.9}}
    waited = await call(eval_router, "evaluate_classifier", **args)
    assert waited["status"] == "succeeded" and waited["job_id"] and waited["metrics"]["accuracy"] > 0.9

    handle = await call(eval_router, "evaluate_classifier", **args, wait=False)
    assert handle["status"] in ("queued", "running") and handle["job_id"] != waited["job_id"]
    assert set(handle) >= HANDLE_KEYS and "get_training_metrics" in handle["message"]
    assert handle["metrics"] is None and handle["evaluation_s3_uri"] is None
    polled = await poll_job(router_caller(eval_router), handle["job_id"])
    assert polled["status"] == "succeeded" and polled["tool"] == "evaluate_classifier"
    assert polled["metrics"] == waited["metrics"]
    _same_result(polled["result"], waited)
    assert Path(polled["result"]["evaluation_s3_uri"].removeprefix("file://")).is_file()


async def test_compare_outliving_its_wait_answers_with_the_handle_then_the_same_ranking(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    args = _slow_compare(trained, n_bootstrap=60)
    handle = await call(eval_router, "compare_models", **args, max_wait_seconds=0)
    assert handle["status"] in ("queued", "running") and handle["ranking"] is None
    polled = await poll_job(router_caller(eval_router), handle["job_id"])
    waited = await call(eval_router, "compare_models", **args)
    assert polled["status"] == "succeeded" and waited["status"] == "succeeded"
    assert polled["result"]["ranking"] == waited["ranking"]  # the same seed: the same intervals
    _same_result(polled["result"], waited)


async def test_evaluation_job_reports_progress_prefixed_with_its_job_id(
    eval_router: ToolRouter, trained: dict[str, Trained]
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        seen.append((done, total, message))

    result = await eval_router.call("compare_models", _slow_compare(trained, n_bootstrap=40), progress)
    assert not result.is_error
    job_id = (result.structured_content or {})["job_id"]
    values = [done for done, _, _ in seen]
    assert len(seen) >= 2 and values == sorted(values) and len(set(values)) == len(values)
    assert seen[-1][0] == seen[-1][1] == 4  # the test data, two models, the ranking
    assert all((message or "").startswith(job_id) for _, _, message in seen)


async def test_cancelled_evaluation_job_saves_nothing(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    before = _evaluations(eval_root, trained["rf"], trained["logreg"])
    handle = await call(eval_router, "compare_models", **_slow_compare(trained), wait=False)
    job = eval_router.services.jobs.get(handle["job_id"])
    assert job is not None
    await until(lambda: job.status == "running", what="the comparison running")
    stopped = await call(eval_router, "cancel_training_job", job_id=handle["job_id"])
    assert stopped["status"] == "cancelled" and "nothing" in stopped["message"]
    polled = await call(eval_router, "get_training_metrics", job_id=handle["job_id"])
    assert polled["status"] == "cancelled" and polled["result"] is None
    assert _evaluations(eval_root, trained["rf"], trained["logreg"]) == before


async def test_bad_input_fails_at_once_before_any_job_even_without_waiting(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    rf, reg, kmeans = trained["rf"], trained["rf_reg"], trained["kmeans"]
    jobs_before = _job_records(eval_root)
    cases: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("evaluate_classifier", {"model_s3_uri": "models/none", "test_data_s3_uri": rf.test_uri}, ("model_s3_uri",)),
        ("evaluate_regressor", {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri}, ("evaluate_classifier",)),
        (
            "evaluate_classifier",
            {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri, "thresholds": {"acc": 0.9}},
            ("thresholds", "accuracy"),
        ),
        ("evaluate_classifier", {"model_s3_uri": rf.uri, "test_data_s3_uri": "data/none.parquet"}, ("does not exist",)),
        (
            "evaluate_clustering",
            {"model_s3_uri": kmeans.uri, "test_data_s3_uri": kmeans.test_uri, "thresholds": {"ari": 0.5}},
            ("label_column",),
        ),
        (
            "compare_models",
            {"model_s3_uris": [rf.uri, reg.uri], "test_data_s3_uri": rf.test_uri},
            ("different tasks",),
        ),
        (
            "compare_models",
            {"model_s3_uris": [rf.uri, trained["logreg"].uri], "test_data_s3_uri": rf.test_uri, "metric": "rmse"},
            ("metric",),
        ),
        ("evaluate_reinforcement", {"model_s3_uri": rf.uri}, ("not an RL policy",)),
    ]
    for tool, args, expected in cases:
        text = await call_error(eval_router, tool, **args, wait=False)
        assert all(word in text for word in expected), (tool, text)
    assert _job_records(eval_root) == jobs_before  # refused before any job was created


async def test_a_long_training_holding_the_only_slot_does_not_queue_an_evaluation(
    eval_config: Config, trained: dict[str, Trained], eval_root: Path
) -> None:
    router = make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(eval_root), "MLOPS_MAX_CONCURRENT_JOBS": "1"}))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 8))  # with the settings below, minutes of boosting: cancelled once checked
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(8)]).assign(target=(x[:, 0] + x[:, 1] > 0).astype(int))
    frame.to_parquet(eval_root / "data" / "long_train.parquet")
    long_training = {
        "train_data_s3_uri": "data/long_train.parquet",
        "target_column": "target",
        "hyperparameters": {"n_estimators": 10000, "max_depth": 10, "learning_rate": 0.01, "n_jobs": 1},
        "wait": False,
    }
    trainings = [
        await call(router, "train_xgboost", **long_training, model_output_s3_uri=f"models/long-{i}") for i in (1, 2)
    ]
    try:
        await until(lambda: router.services.jobs.get(trainings[0]["job_id"]).status == "running", 60, "training")
        assert (await call(router, "get_training_metrics", job_id=trainings[1]["job_id"]))["status"] == "queued"
        rf = trained["rf"]
        evaluated = await call(
            router, "evaluate_classifier", model_s3_uri=rf.uri, test_data_s3_uri=rf.test_uri, max_wait_seconds=60
        )
        assert evaluated["status"] == "succeeded" and evaluated["metrics"]["accuracy"] > 0.9
        record = router.services.jobs.read(evaluated["job_id"])
        assert record["kind"] == "evaluation" and record["queue_position"] is None
        assert router.services.jobs.get(trainings[0]["job_id"]).status == "running"  # still training
    finally:
        for training in trainings:
            await call(router, "cancel_training_job", job_id=training["job_id"])


@pytest.fixture
def cartpole_policy(eval_config: Config) -> str:
    """A small random CartPole policy bundle (safetensors + network.json)."""
    storage = S3Utils(eval_config)
    rng = np.random.default_rng(3)
    network = {
        "format": "mlp_policy",
        "format_version": 1,
        "observation_shape": [4],
        "action_space": {"type": "Discrete", "n": 2, "start": 0},
        "output": "logits",
        "layers": [
            {"weight": "pi.0.weight", "bias": "pi.0.bias", "activation": "tanh"},
            {"weight": "pi.2.weight", "bias": "pi.2.bias", "activation": None},
        ],
        "action_transform": None,
    }
    weights = {
        "pi.0.weight": rng.normal(size=(8, 4)).astype(np.float32),
        "pi.0.bias": np.zeros(8, np.float32),
        "pi.2.weight": rng.normal(size=(2, 8)).astype(np.float32),
        "pi.2.bias": np.zeros(2, np.float32),
    }
    meta = {
        "algorithm": "ppo",
        "task_type": "reinforcement_learning",
        "env_spec": env_spec_for(storage, "CartPole-v1", None),
    }
    loc = storage.resolve("models/cartpole-random")
    write_bundle(storage, loc, PolicyArtifacts(network, weights), "policy", meta)
    return loc.uri


async def test_rl_evaluation_job_polled_equals_the_waited_one(eval_router: ToolRouter, cartpole_policy: str) -> None:
    args = {"model_s3_uri": cartpole_policy, "n_episodes": 30, "random_state": 5}
    handle = await call(eval_router, "evaluate_reinforcement", **args, wait=False)
    assert handle["status"] in ("queued", "running") and handle["returns"] is None
    polled = await poll_job(router_caller(eval_router), handle["job_id"])
    waited = await call(eval_router, "evaluate_reinforcement", **args)
    assert polled["status"] == "succeeded" and len(waited["returns"]) == 30
    _same_result(polled["result"], waited)


async def test_report_wait_false_gives_a_handle_then_the_report_and_bad_input_fails_at_once(
    eval_router: ToolRouter, trained: dict[str, Trained], eval_root: Path
) -> None:
    rf = trained["rf"]
    args = {"model_s3_uri": rf.uri, "test_data_s3_uri": rf.test_uri, "output_s3_uri": "reports/job.html"}
    handle = await call(eval_router, "generate_report", **args, wait=False)
    assert handle["status"] in ("queued", "running") and handle["report_s3_uri"] is None
    assert "get_training_metrics" in handle["message"]
    polled = await poll_job(router_caller(eval_router), handle["job_id"])
    assert polled["status"] == "succeeded" and polled["tool"] == "generate_report"
    report = Path(polled["result"]["report_s3_uri"].removeprefix("file://"))
    assert report.is_file() and report.stat().st_size == polled["result"]["bytes"]
    assert "roc_curve" in polled["result"]["plots"]

    before = _job_records(eval_root)
    missing = {**args, "test_data_s3_uri": "data/nope.parquet", "output_s3_uri": "reports/never.html"}
    text = await call_error(eval_router, "generate_report", **missing, wait=False)
    assert "test_data_s3_uri" in text
    assert _job_records(eval_root) == before and not (eval_root / "reports" / "never.html").exists()
