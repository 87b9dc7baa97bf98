"""Jobs in worker processes: progress and errors come back as in a thread, a cancel stops even an
uninterruptible call at once, and a worker that dies fails its job without touching the server.

The work functions are module-level: a worker receives them by reference."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import JobRunner
from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.workers import CANCEL_GRACE_SECONDS, ProcessTask, WorkerJob
from mcp_server.config import Config


def reports_and_answers(job: WorkerJob, storage: S3Utils, answer: int) -> dict[str, Any]:
    for step in range(3):
        job.report(step + 1, 3, f"step {step + 1}")
        job.add_history({"step": step})
    job.mark("work")
    return {"answer": answer, "pid": os.getpid(), "root": str(storage.root)}


def refuses_its_input(job: WorkerJob, storage: S3Utils) -> dict[str, Any]:
    raise InvalidInputError("must be positive", field="hyperparameters.n", hint="Use 1 or more")


def sleeps_without_checking(job: WorkerJob, storage: S3Utils, marker: str) -> dict[str, Any]:
    Path(marker).write_text(str(os.getpid()))
    time.sleep(120)  # like one long native call: never looks at the cancel flag
    Path(marker + ".published").write_text("too late")
    return {}


def publishes_after_commit(job: WorkerJob, storage: S3Utils, marker: str) -> dict[str, Any]:
    job.report(1, 2, "about to publish")
    while not Path(marker + ".go").exists():
        time.sleep(0.01)
    job.begin_publish()
    Path(marker).write_text("published")
    return {"published": True}


def crashes(job: WorkerJob, storage: S3Utils) -> dict[str, Any]:
    os.kill(os.getpid(), signal.SIGSEGV)
    return {}


def writes_to_stdout(job: WorkerJob, storage: S3Utils) -> dict[str, Any]:
    os.write(1, b"native noise\n")
    print("python noise")
    return {"fd1_is_fd2": os.path.sameopenfile(1, 2)}


@pytest.fixture
def runner(local_config: Config) -> JobRunner:
    return JobRunner(S3Utils(local_config), max_concurrent=2)


def finished(runner: JobRunner, task: ProcessTask, timeout: float = 60.0) -> Any:
    job = runner.submit("t", task)
    assert job.done_event.wait(timeout), "the job did not end in time"
    return job


def test_worker_job_reports_progress_history_and_result(runner: JobRunner, storage_root: Path) -> None:
    job = finished(runner, ProcessTask(reports_and_answers, (42,)))
    assert job.status == "succeeded", job.error
    assert job.result is not None and job.result["answer"] == 42
    assert job.result["pid"] != os.getpid() and job.result["root"] == str(storage_root)
    assert [h["step"] for h in job.history] == [0, 1, 2]
    assert job.progress_done == 3 and job.progress_message == "step 3"
    assert "work" in job.timings


def test_worker_error_keeps_its_kind_field_and_hint(runner: JobRunner) -> None:
    job = finished(runner, ProcessTask(refuses_its_input))
    assert job.status == "failed"
    assert isinstance(job.exception, InvalidInputError)
    assert str(job.exception) == "hyperparameters.n: must be positive. Use 1 or more"


def test_cancel_kills_a_worker_stuck_in_a_long_call(runner: JobRunner, tmp_path: Path) -> None:
    marker = str(tmp_path / "started")
    job = runner.submit("t", ProcessTask(sleeps_without_checking, (marker,)))
    deadline = time.monotonic() + 60
    while not Path(marker).exists():
        assert time.monotonic() < deadline, "the worker never started"
        time.sleep(0.02)
    pid = int(Path(marker).read_text())
    asked = time.monotonic()
    runner.cancel(job.job_id)
    assert job.done_event.wait(30)
    took = time.monotonic() - asked
    assert job.status == "cancelled"
    assert took < CANCEL_GRACE_SECONDS + 10  # generous here; the benchmark measures the real latency
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not Path(marker + ".published").exists()


def test_cancel_after_commit_lets_the_publish_finish(runner: JobRunner, tmp_path: Path) -> None:
    marker = str(tmp_path / "artifact")
    job = runner.submit("t", ProcessTask(publishes_after_commit, (marker,)))
    deadline = time.monotonic() + 60
    while job.progress_done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    Path(marker + ".go").write_text("")
    while not Path(marker).exists():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    runner.cancel(job.job_id)
    assert job.done_event.wait(30)
    assert job.status == "succeeded" and job.result == {"published": True}


def test_cancel_before_commit_publishes_nothing(runner: JobRunner, tmp_path: Path) -> None:
    marker = str(tmp_path / "artifact")
    job = runner.submit("t", ProcessTask(publishes_after_commit, (marker,)))
    deadline = time.monotonic() + 60
    while job.progress_done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    runner.cancel(job.job_id)
    Path(marker + ".go").write_text("")
    assert job.done_event.wait(30)
    assert job.status == "cancelled" and not Path(marker).exists()


def test_a_crashed_worker_fails_its_job_and_the_next_job_runs(runner: JobRunner) -> None:
    job = finished(runner, ProcessTask(crashes))
    assert job.status == "failed"
    assert "worker process died (killed by SIGSEGV)" in str(job.error)
    again = finished(runner, ProcessTask(reports_and_answers, (7,)))
    assert again.status == "succeeded" and again.result is not None and again.result["answer"] == 7


def test_worker_stdout_is_pointed_at_stderr(runner: JobRunner) -> None:
    # A worker's file descriptor 1 is the server's protocol stream unless the worker moves it.
    job = finished(runner, ProcessTask(writes_to_stdout))
    assert job.status == "succeeded" and job.result == {"fd1_is_fd2": True}
