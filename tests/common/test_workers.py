"""Jobs in worker processes: progress and errors come back as in a thread, a cancel stops even an
uninterruptible call at once, and a worker that dies fails its job without touching the server.

The work functions are module-level: a worker receives them by reference."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import JobRunner
from mcp_server.common.s3_utils import S3Utils, pid_alive
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


def modules_at_start(job: WorkerJob, storage: S3Utils, names: list[str]) -> dict[str, Any]:
    return {name: name in sys.modules for name in names}


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


def test_a_finished_worker_is_ended_and_reaped(runner: JobRunner) -> None:
    # Its result comes back before the process is gone; it must still go (and be waited for).
    job = finished(runner, ProcessTask(reports_and_answers, (1,)))
    assert job.status == "succeeded"
    pid = int(job.info["worker_pid"])
    deadline = time.monotonic() + 30
    while pid_alive(pid):
        assert time.monotonic() < deadline, "the finished worker is still there (or a zombie)"
        time.sleep(0.02)


# A fresh interpreter: the fork server is per process, and this one's may have started already.
_PRELOAD_SCRIPT = """
import json, sys
from mcp_server.common.jobs import JobRunner
from mcp_server.common.s3_utils import S3Utils
from mcp_server.common.workers import ProcessTask, pool
from mcp_server.config import Config
from tests.common.test_workers import modules_at_start

pool().warm_up(["mcp_server.capabilities.ml_training.tools.supervised"])
runner = JobRunner(S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": sys.argv[1]})), 1)
names = ["xgboost", "mcp_server.capabilities.ml_training.tools.supervised", "mcp_server.capabilities.ml_evaluation"]
job = runner.submit("t", ProcessTask(modules_at_start, (names,)))
assert job.done_event.wait(120), "the job did not end"
print(json.dumps(job.result))
pool().close()
"""


@pytest.mark.slow
def test_workers_start_with_the_libraries_and_the_job_modules_named_at_warm_up(storage_root: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PRELOAD_SCRIPT, str(storage_root)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {
        "xgboost": True,
        "mcp_server.capabilities.ml_training.tools.supervised": True,
        "mcp_server.capabilities.ml_evaluation": False,  # only what was named, not everything
    }
