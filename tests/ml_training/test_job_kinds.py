"""Job kinds: each kind has its own concurrency limit, so an orchestrating job (a pipeline)
never holds the slot the training jobs it waits for need."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp_server.common.jobs import Job, JobRunner
from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from tests.ml_training.test_jobs import blocking_work, stored, wait_for


def _orchestrator(runner: JobRunner, seen: dict[str, Any]) -> Callable[[Job], dict[str, Any]]:
    """Work that submits a training job and waits for it, as a pipeline does."""

    def work(job: Job) -> dict[str, Any]:
        child = runner.submit("train_x", lambda child_job: {"trained": True})
        seen["child"] = child
        while not child.done_event.wait(0.05):
            job.check_cancelled()
        return {"child": child.status}

    return work


def test_a_job_kind_has_its_own_slots_so_an_orchestrator_never_starves_its_training(local_config: Config) -> None:
    runner = JobRunner(S3Utils(local_config), max_concurrent=1, limits={"pipeline": 1})
    seen: dict[str, Any] = {}
    parent = runner.submit("run_pipeline", _orchestrator(runner, seen), kind="pipeline")
    assert parent.done_event.wait(20) and parent.result == {"child": "succeeded"}
    assert stored(Path(local_config.storage_root), parent.job_id)["kind"] == "pipeline"

    # The same orchestration as an ordinary training job holds the only slot its child needs.
    seen.clear()
    stuck = runner.submit("run_pipeline", _orchestrator(runner, seen))
    wait_for(lambda: "child" in seen)
    assert not seen["child"].done_event.wait(0.5) and seen["child"].status == "queued"
    runner.cancel(stuck.job_id)
    assert stuck.done_event.wait(10) and stuck.status == "cancelled"
    assert seen["child"].done_event.wait(10) and seen["child"].status == "succeeded"  # the slot came free


def test_a_full_kind_does_not_hold_back_other_kinds(local_config: Config) -> None:
    runner = JobRunner(S3Utils(local_config), max_concurrent=1, limits={"pipeline": 1})
    started, release = threading.Event(), threading.Event()
    first = runner.submit("run_pipeline", blocking_work(started, release), kind="pipeline")
    second = runner.submit("run_pipeline", blocking_work(threading.Event(), release), kind="pipeline")
    training = runner.submit("train_x", lambda job: {"ok": True})
    assert started.wait(5)
    assert training.done_event.wait(10) and training.status == "succeeded"  # queued behind second, yet ran
    assert second.status == "queued" and runner.limit("pipeline") == 1
    release.set()
    wait_for(lambda: first.done_event.is_set() and second.done_event.is_set())
