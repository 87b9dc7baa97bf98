"""Training jobs: queueing, progress, wait / max_wait, cancellation, persisted records and jobs lost
to a restart. The runner is exercised directly with controllable work, and through the router
with real trainings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import STALE_SECONDS, Job, JobRunner, _pid_namespace
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.helpers import call, call_error


def blocking_work(
    started: threading.Event, release: threading.Event, steps: int = 1
) -> Callable[[Job], dict[str, Any]]:
    def work(job: Job) -> dict[str, Any]:
        started.set()
        for step in range(steps):
            while not release.wait(0.01):
                job.check_cancelled()
            job.report(step + 1, steps, f"step {step + 1}")
        return {"answer": 42}

    return work


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def stored(root: Path, job_id: str) -> dict[str, Any]:
    return dict(json.loads((root / "jobs" / f"{job_id}.json").read_text()))


@pytest.fixture
def runner(local_config: Config) -> JobRunner:
    return JobRunner(S3Utils(local_config), max_concurrent=1)


def test_runner_queues_beyond_the_limit_and_starts_in_order(runner: JobRunner, storage_root: Path) -> None:
    started = [threading.Event() for _ in range(3)]
    release = threading.Event()
    jobs = [runner.submit("t", blocking_work(started[i], release)) for i in range(3)]
    assert started[0].wait(5)
    assert [j.status for j in jobs] == ["running", "queued", "queued"]
    assert [runner.queue_position(j) for j in jobs] == [None, 1, 2]
    assert stored(storage_root, jobs[2].job_id)["queue_position"] == 2
    assert not started[1].is_set()  # the limit holds
    release.set()
    wait_for(lambda: all(j.done_event.is_set() for j in jobs))
    assert [j.status for j in jobs] == ["succeeded"] * 3
    assert stored(storage_root, jobs[1].job_id)["result"] == {"answer": 42}


async def test_a_waiting_request_wakes_when_its_job_ends_not_at_its_next_poll(
    runner: JobRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mcp_server.common.jobs as jobs_module

    # Polls so rare that only the job's own wake-up can end the wait in time.
    monkeypatch.setattr(jobs_module, "_FIRST_POLL_SECONDS", 30.0)
    monkeypatch.setattr(jobs_module, "_POLL_SECONDS", 30.0)
    started, release = threading.Event(), threading.Event()
    job = runner.submit("t", blocking_work(started, release))
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()  # ends while the request is already waiting
    began = time.monotonic()
    assert await runner.wait(job, 60)
    assert time.monotonic() - began < 15, "the wait ran to its next poll instead of waking"
    assert job.status == "succeeded" and job._wakers == []


def test_runner_cancels_a_queued_job_before_it_starts(runner: JobRunner) -> None:
    first_started, second_started, release = threading.Event(), threading.Event(), threading.Event()
    first = runner.submit("t", blocking_work(first_started, release))
    second = runner.submit("t", blocking_work(second_started, release))
    runner.cancel(second.job_id)
    assert second.status == "cancelled" and second.done_event.is_set()
    release.set()
    wait_for(first.done_event.is_set)
    assert first.status == "succeeded"
    assert not second_started.is_set()


def test_runner_cancels_a_running_job_at_its_next_check(runner: JobRunner, storage_root: Path) -> None:
    started, release = threading.Event(), threading.Event()
    job = runner.submit("t", blocking_work(started, release))
    assert started.wait(5)
    runner.cancel(job.job_id)
    wait_for(job.done_event.is_set)
    assert job.status == "cancelled" and job.result is None
    assert stored(storage_root, job.job_id)["status"] == "cancelled"


def test_runner_records_failure_with_its_message(runner: JobRunner, storage_root: Path) -> None:
    def work(job: Job) -> dict[str, Any]:
        raise InvalidInputError("column 'x' is missing", field="target_column")

    job = runner.submit("t", work)
    wait_for(job.done_event.is_set)
    record = stored(storage_root, job.job_id)
    assert record["status"] == "failed"
    assert record["error"]["text"] == "target_column: column 'x' is missing"


def test_runner_hides_unexpected_errors_details(runner: JobRunner, storage_root: Path) -> None:
    def work(job: Job) -> dict[str, Any]:
        raise ZeroDivisionError("secret internals")

    job = runner.submit("t", work)
    wait_for(job.done_event.is_set)
    record = stored(storage_root, job.job_id)
    assert record["status"] == "failed" and "ZeroDivisionError" in record["error"]["message"]
    assert "secret internals" not in json.dumps(record)


def test_progress_is_persisted_while_running(runner: JobRunner, storage_root: Path) -> None:
    started, release = threading.Event(), threading.Event()
    job = runner.submit("t", blocking_work(started, release, steps=1))
    assert started.wait(5)
    job.report(0.5, 1, "half way")
    runner.persist(job, force=True)
    assert stored(storage_root, job.job_id)["progress"] == {
        "done": 0.5,
        "total": 1,
        "fraction": 0.5,
        "message": "half way",
    }
    release.set()
    wait_for(job.done_event.is_set)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _write_record(storage_root: Path, job_id: str, **fields: Any) -> None:
    record = {
        "job_id": job_id,
        "tool": "train_xgboost",
        "status": "running",
        "instance_id": "another-server",
        "pid": _dead_pid(),
        "host": socket.gethostname(),
        "pid_namespace": _pid_namespace(),
        "updated_epoch": time.time(),
        "progress": {"done": 3, "total": 10, "fraction": 0.3, "message": None},
        **fields,
    }
    (storage_root / "jobs").mkdir(exist_ok=True)
    (storage_root / "jobs" / f"{job_id}.json").write_text(json.dumps(record))


def test_job_of_a_dead_server_reads_as_failed_not_running(runner: JobRunner, storage_root: Path) -> None:
    _write_record(storage_root, "job-lost-1")
    record = runner.read("job-lost-1")
    assert record["status"] == "failed"
    assert "lost: server restarted" in record["error"]["message"]
    assert stored(storage_root, "job-lost-1")["status"] == "failed"  # written back


def test_job_of_a_silent_remote_server_reads_as_failed(runner: JobRunner, storage_root: Path) -> None:
    _write_record(storage_root, "job-lost-2", host="elsewhere", updated_epoch=time.time() - STALE_SECONDS - 5)
    assert runner.read("job-lost-2")["status"] == "failed"


def test_job_of_a_live_remote_server_stays_running(runner: JobRunner, storage_root: Path) -> None:
    _write_record(storage_root, "job-remote", host="elsewhere")
    assert runner.read("job-remote")["status"] == "running"


def test_job_of_a_container_with_the_same_host_name_is_judged_by_its_heartbeat(
    runner: JobRunner, storage_root: Path
) -> None:
    # Another container (own PID namespace) with our host name: its PID means nothing here.
    _write_record(storage_root, "job-twin", pid_namespace="pid:[1]")
    assert runner.read("job-twin")["status"] == "running"
    _write_record(storage_root, "job-twin-old", pid_namespace="pid:[1]", updated_epoch=time.time() - STALE_SECONDS - 5)
    assert runner.read("job-twin-old")["status"] == "failed"


def test_job_ids_cannot_escape_the_jobs_folder(runner: JobRunner) -> None:
    with pytest.raises(InvalidInputError):
        runner.read("../metadata")


# --------------------------------------------------------------------------- through the router
def long_xgboost(data: dict[str, str], output: str, rounds: int = 5000) -> dict[str, Any]:
    return {
        "train_data_s3_uri": data["big"],
        "target_column": "target",
        "model_output_s3_uri": output,
        "random_state": 0,
        "hyperparameters": {"n_estimators": rounds, "max_depth": 8, "learning_rate": 0.01, "n_jobs": 1},
    }


async def test_progress_notifications_increase_and_name_the_job(router: ToolRouter, data: dict[str, str]) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def sender(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    # long enough (a second or so) for several notifications: they are sent at most 5 times a second
    result = await router.call("train_xgboost", long_xgboost(data, "models/p", rounds=1500), sender)
    assert not result.is_error
    job_id = result.structured_content["job_id"] if result.structured_content else None
    assert len(seen) >= 3
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert seen[-1][0] == seen[-1][1] == 1503  # 1500 rounds + reading, writing, done
    assert all(m and m.startswith(f"{job_id}:") for _, _, m in seen)
    assert any("round" in (m or "") for _, _, m in seen)


async def test_wait_false_returns_at_once_then_polling_sees_success(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_xgboost", **long_xgboost(data, "models/w", rounds=80), wait=False)
    assert out["status"] in ("queued", "running") and out["model_s3_uri"] is None
    assert "get_training_metrics" in out["message"]
    statuses = set()
    for _ in range(600):
        polled = await call(router, "get_training_metrics", job_id=out["job_id"])
        statuses.add(polled["status"])
        if polled["status"] == "succeeded":
            break
        await anyio.sleep(0.05)
    assert polled["status"] == "succeeded"
    assert polled["model_s3_uri"] == out["model_output_s3_uri"]
    assert polled["progress"]["fraction"] == 1.0
    # 80 rounds, summarised: first and last kept, the full series in the job record.
    assert polled["history_total"] == 80 and len(polled["history"]) <= 50 and "train_logloss" in polled["history"][0]
    assert [polled["history"][i]["iteration"] for i in (0, -1)] == [0, 79]
    assert polled["history_s3_uri"].endswith(f"jobs/{out['job_id']}.json")
    by_model = await call(router, "get_training_metrics", model_s3_uri=polled["model_s3_uri"])
    assert by_model["metrics"] == polled["metrics"] and by_model["job_id"] == out["job_id"]


async def test_max_wait_returns_the_job_while_it_runs(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_xgboost", **long_xgboost(data, "models/mw"), max_wait_seconds=0.2)
    assert out["status"] == "running" and out["metrics"] is None
    finished = await call(router, "cancel_training_job", job_id=out["job_id"])
    assert finished["status"] == "cancelled"
    assert not (router.storage.root / "models/mw/metadata.json").exists()


async def test_cancelling_the_call_cancels_the_job_and_writes_nothing(router: ToolRouter, data: dict[str, str]) -> None:
    job_ids: list[str] = []
    got_progress = anyio.Event()

    async def sender(progress: float, total: float | None, message: str | None) -> None:
        if message and "round" in message:
            job_ids.append(message.split(":")[0])
            got_progress.set()

    async with anyio.create_task_group() as group:
        group.start_soon(router.call, "train_xgboost", long_xgboost(data, "models/c"), sender)
        with anyio.fail_after(60):
            await got_progress.wait()
        group.cancel_scope.cancel()
    status = await call(router, "get_training_metrics", job_id=job_ids[0])
    assert status["status"] == "cancelled"
    assert status["progress"]["done"] < 5000
    assert not (router.storage.root / "models/c/metadata.json").exists()


async def test_jobs_beyond_the_limit_are_queued_visibly(storage_root: Path, data: dict[str, str]) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_MAX_CONCURRENT_JOBS": "1"})
    router = make_router(config)
    first = await call(router, "train_xgboost", **long_xgboost(data, "models/q1"), wait=False)
    second = await call(router, "train_xgboost", **long_xgboost(data, "models/q2", rounds=10), wait=False)
    assert second["status"] == "queued" and second["queue_position"] == 1
    polled = await call(router, "get_training_metrics", job_id=second["job_id"])
    assert polled["status"] == "queued" and polled["queue_position"] == 1
    cancelled = await call(router, "cancel_training_job", job_id=first["job_id"])
    assert cancelled["status"] == "cancelled"
    for _ in range(400):
        polled = await call(router, "get_training_metrics", job_id=second["job_id"])
        if polled["status"] == "succeeded":
            break
        await anyio.sleep(0.05)
    assert polled["status"] == "succeeded"


async def test_failed_job_reports_its_error(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_random_forest",
        train_data_s3_uri=data["iris"],
        target_column="nope",
        model_output_s3_uri="models/f",
        wait=False,
    )
    for _ in range(200):
        polled = await call(router, "get_training_metrics", job_id=out["job_id"])
        if polled["status"] == "failed":
            break
        await anyio.sleep(0.05)
    assert polled["status"] == "failed" and "'nope'" in polled["error"]


async def test_get_training_metrics_needs_exactly_one_reference(router: ToolRouter) -> None:
    text = await call_error(router, "get_training_metrics")
    assert "exactly one of job_id or model_s3_uri" in text
    text = await call_error(router, "get_training_metrics", job_id="job-unknown")
    assert "no job 'job-unknown'" in text


async def test_cancel_of_a_finished_job_says_so(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(router, "train_xgboost", **long_xgboost(data, "models/done", rounds=5))
    cancelled = await call(router, "cancel_training_job", job_id=out["job_id"])
    assert cancelled["status"] == "succeeded" and "already ended" in cancelled["message"]


# --------------------------------------------------------------------------- worker processes
async def wait_until_fitting(router: ToolRouter, job_id: str, word: str) -> int:
    """Wait until the job's worker reports `word` in its progress; returns the worker's pid."""
    with anyio.fail_after(120):
        while True:
            polled = await call(router, "get_training_metrics", job_id=job_id)
            job = router.services.jobs.get(job_id)
            if job is not None and "worker_pid" in job.info and word in (polled["progress"]["message"] or ""):
                return int(job.info["worker_pid"])
            await anyio.sleep(0.05)


async def test_cancel_stops_tsne_inside_its_single_native_call(router: ToolRouter, data: dict[str, str]) -> None:
    out = await call(
        router,
        "train_tsne",
        train_data_s3_uri=data["big"],
        model_output_s3_uri="models/ts",
        max_rows=3000,
        random_state=0,
        wait=False,
    )
    await wait_until_fitting(router, out["job_id"], "embedding")
    asked = time.monotonic()
    cancelled = await call(router, "cancel_training_job", job_id=out["job_id"], wait_seconds=20)
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - asked < 15  # generous: bench/bench_training.py measures the latency
    root = router.storage.root
    assert not (root / "models/ts/metadata.json").exists()
    assert not list(root.glob("models/ts-embedding*"))


async def test_killed_worker_fails_its_job_and_the_server_keeps_serving(
    router: ToolRouter, data: dict[str, str]
) -> None:
    out = await call(router, "train_xgboost", **long_xgboost(data, "models/killed"), wait=False)
    pid = await wait_until_fitting(router, out["job_id"], "round")
    os.kill(pid, signal.SIGKILL)
    with anyio.fail_after(60):
        while (polled := await call(router, "get_training_metrics", job_id=out["job_id"]))["status"] == "running":
            await anyio.sleep(0.05)
    assert polled["status"] == "failed"
    assert "worker process died (killed by SIGKILL)" in polled["error"]
    assert not (router.storage.root / "models/killed/metadata.json").exists()
    again = await call(router, "train_xgboost", **long_xgboost(data, "models/after", rounds=20))
    assert again["status"] == "succeeded" and again["model_s3_uri"]


def test_system_exit_in_a_job_fails_the_job_instead_of_leaving_it_running(
    runner: JobRunner, storage_root: Path
) -> None:
    def work(job: Job) -> dict[str, Any]:
        raise SystemExit(2)  # a library's command-line code run by accident

    job = runner.submit("t", work)
    wait_for(job.done_event.is_set)
    assert stored(storage_root, job.job_id)["status"] == "failed"
    assert "SystemExit" in stored(storage_root, job.job_id)["error"]["message"]


async def test_read_only_server_reads_a_dead_servers_job_without_writing(storage_root: Path) -> None:
    _write_record(storage_root, "job-lost-ro")
    before = (storage_root / "jobs" / "job-lost-ro.json").read_bytes()
    router = make_router(Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_READ_ONLY": "true"}))
    out = await call(router, "get_training_metrics", job_id="job-lost-ro")
    assert out["status"] == "failed"
    assert (storage_root / "jobs" / "job-lost-ro.json").read_bytes() == before  # read-only: no write at all
