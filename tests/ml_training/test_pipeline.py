"""run_pipeline / get_pipeline_run end to end on local storage, with every capability routed,
GitHub on a loopback REST server and Slack, Teams, Discord and email on loopback receivers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mcp_server.client import result_text, structured
from mcp_server.common.outbound import OutboundClient, RetryPolicy
from mcp_server.common.secrets import SecretStore
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.github_integration.loopback_github import LoopbackGitHub
from tests.helpers import call, call_error
from tests.notification.servers import DISCORD_PATH, SLACK_WEBHOOK_PATH, TEAMS_PATH, HookServer, SmtpServer, smtp_server

REPO = "octo-org/ml-models"
DATASET = "datasets/cancer.csv"
CHANNELS = ["slack", "teams", "discord", "email"]
WEBHOOK_SECRET = "pipeline-webhook-secret"


@dataclass
class World:
    router: ToolRouter
    github: LoopbackGitHub
    hooks: HookServer
    smtp: SmtpServer
    root: Path

    def issue(self, config: dict[str, Any], labels: tuple[str, ...] = ("mlops:train",)) -> int:
        body = "Please train this.\n\n```yaml\n" + _yaml(config) + "```\n"
        return self.github.add_issue(REPO, title="train a model", body=body, labels=list(labels))

    def comments(self, number: int) -> list[str]:
        return [c["body"] for c in self.github.repos[REPO].comments[number]]

    def labels(self, number: int) -> list[str]:
        return [label["name"] for label in self.github.repos[REPO].issues[number]["labels"]]

    def notifications(self) -> dict[str, int]:
        return {
            "slack": len(self.hooks.received(SLACK_WEBHOOK_PATH)),
            "teams": len(self.hooks.received(TEAMS_PATH)),
            "discord": len(self.hooks.received(DISCORD_PATH)),
            "email": len(self.smtp.mails),
        }


def _yaml(config: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(config, sort_keys=False))


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "dataset_s3_uri": DATASET,
        "target_column": "target",
        "task_type": "classification",
        "algorithm": "random_forest",
        "hyperparameters": {"random_forest": {"n_estimators": 10, "n_jobs": 1}},
        "model_name": "cancer-rf",
        "notify": CHANNELS,
        "email_to": ["ml-team@example.com"],
        **extra,
    }


@pytest.fixture
def world_env() -> dict[str, str]:
    """Settings a test adds to its world's server (parametrize `world_env` to set some)."""
    return {}


@pytest.fixture
def world(aws: Any, storage_root: Path, monkeypatch: pytest.MonkeyPatch, world_env: dict[str, str]) -> Iterator[World]:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    (storage_root / "datasets").mkdir()
    frame.to_csv(storage_root / DATASET, index=False)
    with LoopbackGitHub() as github, HookServer() as hooks, smtp_server() as smtp:
        github.add_repo(REPO)
        env = {
            **github.env(),
            "MLOPS_STORAGE_ROOT": str(storage_root),
            "MLOPS_OUTBOUND_ALLOW": f"{github.origin},{hooks.origin},{smtp.origin}",
            "MLOPS_MAX_CONCURRENT_JOBS": "1",  # the 2-core default: a pipeline must not deadlock on it
            "MLOPS_EMAIL_FROM": "mlops@example.com",
            "SMTP_HOST": smtp.host,
            "SMTP_PORT": str(smtp.port),
            "SMTP_SECURITY": "none",
            **world_env,
        }
        config = Config.from_env(env)
        router = make_router(config)
        router.services.secrets = SecretStore(
            config,
            env={
                "GITHUB_TOKEN": github.token,
                "SLACK_WEBHOOK_URL": hooks.slack_webhook,
                "TEAMS_WEBHOOK_URL": hooks.teams_webhook,
                "DISCORD_WEBHOOK_URL": hooks.discord_webhook,
                "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
        )
        router.services.outbound_client = OutboundClient(config.outbound_allow, retry=RetryPolicy(sleep=lambda s: None))
        monkeypatch.setenv("GITHUB_TOKEN", github.token)
        yield World(router, github, hooks, smtp, storage_root)


def _stage(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in run["stages"] if s["name"] == name)


async def _wait_for(router: ToolRouter, run_id: str, statuses: tuple[str, ...], seconds: float = 120) -> dict[str, Any]:
    import anyio

    deadline = time.monotonic() + seconds
    while True:
        run = await call(router, "get_pipeline_run", run_id=run_id)
        if run["status"] in statuses or time.monotonic() > deadline:
            return run
        await anyio.sleep(0.2)


@pytest.mark.anyio
async def test_issue_becomes_a_registered_production_model(world: World) -> None:
    number = world.issue(_config())
    messages: list[str] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    result = await world.router.call(
        "run_pipeline", {"repository": REPO, "issue_number": number, "max_wait_seconds": 300}, progress
    )
    assert not result.is_error, result_text(result)
    run = structured(result)

    assert run["status"] == "succeeded", run
    assert any(m.endswith("stage train") for m in messages) and any(m.endswith("stage comment") for m in messages)
    assert run["passed"] is True
    assert [s["name"] for s in run["stages"]] == [
        "load", "validate", "preprocess", "split", "train", "evaluate", "judge", "register", "notify", "comment",
    ]  # fmt: skip
    assert all(s["status"] == "succeeded" for s in run["stages"]), [(s["name"], s["status"]) for s in run["stages"]]
    train = _stage(run, "train")
    assert len(train["attempts"]) == 1 and train["attempts"][0]["passed"] is True
    assert train["attempts"][0]["hyperparameters"] == {"random_forest": {"n_estimators": 10, "n_jobs": 1}}
    assert _stage(run, "evaluate")["outputs"]["metrics"]["random_forest"]["accuracy"] >= 0.85
    assert run["registered"] == {"model_name": "cancer-rf", "version": 1, "status": "production"}
    assert Path(run["report_s3_uri"].removeprefix("file://")).is_file()

    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert versions["production_version"] == 1
    assert versions["versions"][0]["tags"]["pipeline_run"] == run["run_id"]

    [comment] = world.comments(number)
    assert "| algorithm | " in comment and "accuracy" in comment  # the metrics table
    assert "passed its thresholds" in comment and "version 1 (production)" in comment
    assert run["report_s3_uri"] in comment
    assert "mlops:passed" in world.labels(number) and "mlops:failed" not in world.labels(number)
    assert world.notifications() == {"slack": 1, "teams": 1, "discord": 1, "email": 1}
    assert {r["channel"]: r["sent"] for r in _stage(run, "notify")["outputs"]["results"]} == dict.fromkeys(
        CHANNELS, True
    )

    # The run is a job: the job tools accept its id; the record survives a restart.
    job = await call(world.router, "get_training_metrics", job_id=run["run_id"])
    assert job["status"] == "succeeded" and job["tool"] == "run_pipeline"
    restarted = make_router(world.router.config)
    again = await call(restarted, "get_pipeline_run", run_id=run["run_id"])
    assert again["status"] == "succeeded" and again["registered"]["version"] == 1


@pytest.mark.anyio
async def test_unreachable_thresholds_retry_then_fail_without_promoting(world: World) -> None:
    # A production version exists first: a failing run must not touch it.
    passing = world.issue(_config(notify=[]))
    first = await call(world.router, "run_pipeline", repository=REPO, issue_number=passing, max_wait_seconds=300)
    assert first["registered"]["version"] == 1

    number = world.issue(_config(thresholds={"accuracy": 0.9999}, notify=["slack"]))
    run = await call(
        world.router, "run_pipeline", repository=REPO, issue_number=number, max_retries=2, max_wait_seconds=300
    )

    assert run["status"] == "succeeded" and run["passed"] is False
    attempts = _stage(run, "train")["attempts"]
    assert [a["passed"] for a in attempts] == [False, False, False]
    trees = [a["hyperparameters"]["random_forest"]["n_estimators"] for a in attempts]
    assert trees == [10, 20, 40]  # the documented rule: twice the trees per retry
    assert all("accuracy" in a["metrics"]["random_forest"] for a in attempts)
    assert _stage(run, "register")["status"] == "skipped" and run["registered"] is None
    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert versions["count"] == 1 and versions["production_version"] == 1
    assert "mlops:failed" in world.labels(number) and "mlops:passed" not in world.labels(number)
    assert "did not pass" in world.comments(number)[0] and "Nothing was registered" in world.comments(number)[0]
    assert len(world.hooks.received(SLACK_WEBHOOK_PATH)) == 1


@pytest.mark.anyio
async def test_same_issue_twice_registers_once(world: World) -> None:
    number = world.issue(_config(notify=[]))
    first = await call(world.router, "run_pipeline", repository=REPO, issue_number=number, max_wait_seconds=300)
    second = await call(world.router, "run_pipeline", repository=REPO, issue_number=number, max_wait_seconds=300)

    assert second["reused"] is True and second["run_id"] == first["run_id"]
    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert versions["count"] == 1
    assert len(world.comments(number)) == 1

    # An edited config is a new request: it runs, registers version 2 and archives version 1.
    changed = _config(notify=[], hyperparameters={"random_forest": {"n_estimators": 12, "n_jobs": 1}})
    world.github.repos[REPO].issues[number]["body"] = "```yaml\n" + _yaml(changed) + "```"
    third = await call(world.router, "run_pipeline", repository=REPO, issue_number=number, max_wait_seconds=300)
    assert third["reused"] is False and third["registered"]["version"] == 2
    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert [v["status"] for v in versions["versions"]] == ["archived", "production"]


@pytest.mark.anyio
async def test_dry_run_plans_without_running(world: World) -> None:
    run = await call(world.router, "run_pipeline", config=_config(), dry_run=True)
    assert run["status"] == "planned" and run["run_id"] is None
    assert [s["status"] for s in run["stages"]] == ["planned"] * 10
    assert _stage(run, "train")["outputs"]["tools"] == ["train_random_forest"]
    assert run["thresholds"] == {"accuracy": 0.85, "f1": 0.80}
    assert not (world.root / "pipelines").exists() and not (world.root / "pipeline-artifacts").exists()
    assert world.notifications() == {"slack": 0, "teams": 0, "discord": 0, "email": 0}


@pytest.mark.anyio
async def test_invalid_config_names_the_field(world: World) -> None:
    text = await call_error(world.router, "run_pipeline", config={**_config(), "task_type": "ranking"})
    assert "config.task_type" in text
    text = await call_error(world.router, "run_pipeline", config={"dataset_s3_uri": DATASET, "algorithm": "xgboost"})
    assert "target_column" in text and "task_type" in text


@pytest.mark.anyio
@pytest.mark.slow
async def test_rl_config_trains_judges_and_registers_a_policy(world: World) -> None:
    from mcp_server.capabilities.ml_training.rl.ray_runtime import shutdown_ray

    config = {
        "environment": "CartPole-v1",
        "algorithm": "a3c",  # the quickest learner here (195 within seconds)
        "hyperparameters": {"a3c": {"stop": {"max_timesteps": 30_000}, "random_state": 0}},
        "thresholds": {"episode_return_mean": 40.0},  # far above a random policy's ~22
        "model_name": "cartpole-a3c",
        "notify": [],
    }
    try:
        run = await call(world.router, "run_pipeline", config=config, max_retries=0, max_wait_seconds=300)
    finally:
        shutdown_ray()
    assert run["status"] == "succeeded" and run["passed"] is True, run
    assert [_stage(run, name)["status"] for name in ("load", "validate", "split")] == ["skipped"] * 3
    assert _stage(run, "evaluate")["status"] == "succeeded"
    assert run["registered"]["model_name"] == "cartpole-a3c" and run["registered"]["status"] == "production"
    policy = await call(world.router, "load_model", model_s3_uri=run["best_model_s3_uri"])
    assert policy["algorithm"] == "a3c"


@pytest.mark.anyio
async def test_rl_algorithm_without_its_trainer_is_a_clear_stage_error(world: World) -> None:
    if "train_ppo" in world.router.tool_names:
        pytest.skip("RL trainers are installed on this branch")
    run = await call(
        world.router,
        "run_pipeline",
        config={"environment": "CartPole-v1", "algorithm": "ppo", "thresholds": {"episode_return_mean": 100.0}},
        max_wait_seconds=120,
    )
    assert run["status"] == "failed"
    assert "train_ppo is not available" in _stage(run, "train")["error"]


@pytest.mark.anyio
async def test_cancel_mid_run_stops_training_and_promotes_nothing(world: World) -> None:
    config = _config(notify=[], hyperparameters={"random_forest": {"n_estimators": 3000, "n_jobs": 1}})
    started = await call(world.router, "run_pipeline", config=config, wait=False)
    run_id = started["run_id"]
    running = await _wait_for(world.router, run_id, ("succeeded", "failed", "cancelled"), seconds=0)
    deadline = time.monotonic() + 120
    while _stage(running, "train")["status"] != "running" and time.monotonic() < deadline:
        running = await _wait_for(world.router, run_id, ("succeeded", "failed", "cancelled"), seconds=0)
    assert _stage(running, "train")["status"] == "running", running

    cancelled = await call(world.router, "cancel_training_job", job_id=run_id, wait_seconds=30)
    assert cancelled["status"] == "cancelled", cancelled
    run = await call(world.router, "get_pipeline_run", run_id=run_id)
    assert run["status"] == "cancelled"
    assert _stage(run, "train")["status"] == "cancelled"
    assert _stage(run, "register")["status"] == "skipped"
    text = await call_error(world.router, "list_model_versions", model_name="cancer-rf")
    assert "cancer-rf" in text


@pytest.mark.anyio
async def test_pipelines_run_with_one_training_slot(world: World) -> None:
    """With MLOPS_MAX_CONCURRENT_JOBS=1 two pipelines run (their jobs are of their own kind) and
    each one's training still gets the single training slot in turn."""
    assert world.router.config.max_concurrent_jobs == 1
    runs = [
        await call(world.router, "run_pipeline", config=_config(notify=[], model_name=f"slot-{i}"), wait=False)
        for i in range(2)
    ]
    finished = [await _wait_for(world.router, r["run_id"], ("succeeded", "failed", "cancelled")) for r in runs]
    assert [r["status"] for r in finished] == ["succeeded", "succeeded"], [r.get("error") for r in finished]
    assert [r["registered"]["model_name"] for r in finished] == ["slot-0", "slot-1"]


@pytest.mark.anyio
async def test_unknown_run_id_is_a_clear_error(world: World) -> None:
    assert "no pipeline run" in await call_error(world.router, "get_pipeline_run", run_id="job-nope")
    assert "not a run id" in await call_error(world.router, "get_pipeline_run", run_id="../etc")


def _signed_delivery(world: World, number: int, delivery_id: str) -> dict[str, Any]:
    import hashlib
    import hmac

    issue = world.github.repos[REPO].issues[number]
    payload = json.dumps(
        {
            "action": "labeled",
            "issue": {"number": number, "body": issue["body"], "labels": issue["labels"]},
            "repository": {"full_name": REPO},
            "sender": {"login": "octocat"},
        }
    )
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"event": "issues", "delivery_id": delivery_id, "payload": payload, "signature": signature, "run": True}


@pytest.mark.anyio
async def test_webhook_with_run_starts_the_pipeline_and_returns_its_run_id(world: World) -> None:
    number = world.issue(_config(notify=[]))
    started = time.monotonic()
    handled = await call(world.router, "handle_webhook_event", **_signed_delivery(world, number, "delivery-1"))
    assert handled["accepted"] is True and handled["run_error"] is None
    assert time.monotonic() - started < 5  # returned at once, not after the training
    run = await _wait_for(world.router, handled["run_id"], ("succeeded", "failed", "cancelled"))
    assert run["status"] == "succeeded" and run["registered"]["version"] == 1
    assert run["repository"] == REPO and run["issue_number"] == number
    assert "mlops:passed" in world.labels(number)

    # A new delivery about the same issue and config starts nothing new: the earlier run stands.
    again = await call(world.router, "handle_webhook_event", **_signed_delivery(world, number, "delivery-2"))
    assert again["run_id"] == handled["run_id"]
    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert versions["count"] == 1


@pytest.mark.anyio
async def test_cancel_a_queued_run(world: World) -> None:
    """Pipelines beyond MLOPS_MAX_CONCURRENT_PIPELINES (2) wait; one cancelled while queued never runs."""
    runs = [
        await call(world.router, "run_pipeline", config=_config(notify=[], model_name=f"queued-{i}"), wait=False)
        for i in range(3)
    ]
    queued = await call(world.router, "get_pipeline_run", run_id=runs[2]["run_id"])
    assert queued["status"] == "queued"
    cancelled = await call(world.router, "cancel_training_job", job_id=runs[2]["run_id"])
    assert cancelled["status"] == "cancelled"
    run = await call(world.router, "get_pipeline_run", run_id=runs[2]["run_id"])
    assert run["status"] == "cancelled" and all(s["status"] in ("pending", "skipped") for s in run["stages"])
    for other in runs[:2]:
        assert (await _wait_for(world.router, other["run_id"], ("succeeded", "failed")))["status"] == "succeeded"
    assert "queued-2" in await call_error(world.router, "list_model_versions", model_name="queued-2")


@pytest.mark.anyio
async def test_a_stage_error_fails_the_run_with_the_tools_text_and_says_so_on_the_issue(world: World) -> None:
    number = world.issue(_config(target_column="diagnosis", notify=["discord"]))
    run = await call(world.router, "run_pipeline", repository=REPO, issue_number=number, max_wait_seconds=120)

    assert run["status"] == "failed" and run["passed"] is None
    validate = _stage(run, "validate")
    assert validate["status"] == "failed" and "diagnosis" in validate["error"]
    assert [s["status"] for s in run["stages"][2:7]] == ["skipped"] * 5
    assert "diagnosis" in run["error"]
    assert "failed" in world.comments(number)[0] and "validate" in world.comments(number)[0]
    assert "mlops:failed" in world.labels(number)
    assert world.notifications()["discord"] == 1  # pipeline_failed, naming the stage
    job = await call(world.router, "get_training_metrics", job_id=run["run_id"])
    assert job["status"] == "failed"


@pytest.mark.anyio
async def test_unsupervised_config_clusters_and_judges_silhouette(world: World) -> None:
    from sklearn.datasets import load_iris

    load_iris(as_frame=True).data.to_csv(world.root / "datasets" / "iris.csv", index=False)
    config = {
        "dataset_s3_uri": "datasets/iris.csv",
        "algorithm": "kmeans",
        "hyperparameters": {"n_clusters": 2, "n_init": 2},
        "model_name": "iris-kmeans",
    }
    run = await call(world.router, "run_pipeline", config=config, max_wait_seconds=120)

    assert run["status"] == "succeeded", run.get("error")
    assert run["thresholds"] == {"silhouette": 0.5}
    assert _stage(run, "train")["attempts"][0]["hyperparameters"] == {"kmeans": {"n_clusters": 2, "n_init": 2}}
    silhouette = _stage(run, "evaluate")["outputs"]["metrics"]["kmeans"]["silhouette"]
    assert run["passed"] is (silhouette >= 0.5)
    assert _stage(run, "comment")["status"] == "skipped"  # not about an issue
    if run["passed"]:
        assert run["registered"]["model_name"] == "iris-kmeans"


@pytest.mark.anyio
async def test_a_run_left_running_by_a_dead_server_reads_as_failed(world: World) -> None:
    from tests.ml_training.test_jobs import _write_record

    run_id = "job-20260101-000000-deadbeef"
    _write_record(world.root, run_id, tool="run_pipeline", kind="pipeline")
    states = (("load", "succeeded"), ("validate", "running"), ("preprocess", "pending"))
    stages = [{"name": n, "status": s, "seconds": None, "outputs": {}} for n, s in states]
    (world.root / "pipelines").mkdir(exist_ok=True)
    (world.root / "pipelines" / f"{run_id}.json").write_text(
        json.dumps({"run_id": run_id, "status": "running", "stages": stages})
    )
    run = await call(world.router, "get_pipeline_run", run_id=run_id)
    assert run["status"] == "failed" and "lost" in run["error"]
    assert [s["status"] for s in run["stages"]] == ["succeeded", "failed", "skipped"]


@pytest.mark.anyio
async def test_two_racing_requests_for_one_issue_make_one_run(world: World) -> None:
    import anyio

    number = world.issue(_config(notify=[]))
    runs: list[dict[str, Any]] = []

    async def request() -> None:
        runs.append(await call(world.router, "run_pipeline", repository=REPO, issue_number=number, wait=False))

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(request)
    assert len({r["run_id"] for r in runs}) == 1, runs
    assert sorted(r["reused"] for r in runs) == [False, True, True]
    done = await _wait_for(world.router, runs[0]["run_id"], ("succeeded", "failed", "cancelled"))
    assert done["status"] == "succeeded"
    versions = await call(world.router, "list_model_versions", model_name="cancer-rf")
    assert versions["count"] == 1 and len(world.comments(number)) == 1


@pytest.mark.anyio
async def test_without_github_integration_the_config_cannot_be_validated_and_says_how_to_fix_it(
    storage_root: Path,
) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_CAPABILITIES": "ml_training"})
    text = await call_error(make_router(config), "run_pipeline", config=_config(), dry_run=True)
    assert "parse_issue_config" in text and "MLOPS_CAPABILITIES" in text


# Every limit at 1, and no call waits for its job: the run's evaluation must still come back whole.
@pytest.mark.parametrize(
    "world_env",
    [{"MLOPS_MAX_CONCURRENT_EVALUATIONS": "1", "MLOPS_MAX_CONCURRENT_PIPELINES": "1", "MLOPS_MAX_WAIT_SECONDS": "0"}],
)
@pytest.mark.anyio
async def test_a_run_evaluates_through_an_evaluation_job_and_gets_its_full_result(world: World) -> None:
    run = await call(world.router, "run_pipeline", config=_config(notify=[]), max_wait_seconds=300)
    assert run["status"] == "succeeded", run
    evaluate = _stage(run, "evaluate")["outputs"]
    job_id = evaluate["job_ids"]["random_forest"]
    record = json.loads((world.root / "jobs" / f"{job_id}.json").read_text())
    assert (record["kind"], record["tool"], record["status"]) == ("evaluation", "evaluate_classifier", "succeeded")
    measured = {k: v for k, v in record["result"]["metrics"].items() if v is not None}
    assert evaluate["metrics"]["random_forest"] == measured and measured["accuracy"] >= 0.85
