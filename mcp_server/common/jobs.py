"""Training jobs: long work runs off the event loop (heavy fits in worker processes, see
`workers.py`; light work in threads), survives the request, and is visible to polls.

A process-wide `JobRunner` (one per server, `Services.jobs`, created lazily) runs at most
`max_concurrent_jobs` jobs of a kind at once; the rest wait in a visible queue. Kinds have their
own limits (`limits`, default `max_concurrent`): a pipeline job (kind `pipeline`) only
orchestrates and waits for the training jobs it submits, so it must not hold the slot they need;
evaluation jobs (kind `evaluation`) are short next to a training and must not queue behind one.
Every state change (and, at most every few seconds, progress) is written to `jobs/<job_id>.json` under the default
location, so `get_training_metrics` answers after the request that started the job has gone,
after a restart, and from any other server process sharing the storage (replicas behind a load
balancer). Liveness is explicit: the owning process rewrites a live record every
`HEARTBEAT_SECONDS`; another process reports it failed ("lost: server restarted") only when that
heartbeat is stale, or when the owner provably died (same host and PID namespace, PID gone).

A tool awaits its job with `run_job` up to `max_wait_seconds`: the work itself never runs on the
event loop. An explicit cancel of the awaiting request (MCP `notifications/cancelled`) cancels the
job; the work sees it at its next `job.check_cancelled()` and publishes nothing (bundles write
`metadata.json` last). Any other end of the request (an HTTP client that disconnected) only
detaches it: the job runs on and is polled by its `job_id`. On AWS Lambda the process freezes when
the invocation returns, so there a job must finish within the invocation (`set_invocation_deadline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import re
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread

from mcp_server.common import workers
from mcp_server.common.bundles import now_iso
from mcp_server.common.exceptions import CancelledError, InvalidInputError, MLOpsError, NotFoundError
from mcp_server.common.logger import get_logger, redact
from mcp_server.common.s3_utils import Location, S3Utils, json_bytes, parse_json, pid_alive
from mcp_server.common.workers import LOST_MESSAGE, ProcessTask

_log = get_logger(__name__)

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
JOBS_PREFIX = "jobs"
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_PROGRESS_WRITE_SECONDS = 2.0  # progress is persisted at most this often
_PROGRESS_SEND_SECONDS = 0.2  # and sent to the waiting client at most this often
_FIRST_POLL_SECONDS = 0.005  # a waiting request looks at its job this soon, then less and less often
_POLL_SECONDS = 0.05  # ... down to this: for progress (the job's end wakes it at once)
HEARTBEAT_SECONDS = 20.0  # live records are rewritten this often, even without progress
# (the heartbeat thread ticks every HEARTBEAT_SECONDS / 4, also looking for cancels from replicas)
STALE_SECONDS = 120.0  # a live-looking record not rewritten for this long belongs to a dead server
_KEEP_FINISHED = 500  # finished jobs kept in memory; older ones are read back from storage
_JOB_ID_HINT = "Pass the job_id a job tool (train_*, evaluate_*, compare_models, run_pipeline) returned."
_LAMBDA_MARGIN_SECONDS = 5.0  # time left to answer after a job that had to fit in the invocation

# Set by the server for each tools/call: the event the MCP SDK sets when the client sends
# `notifications/cancelled` for that request. None (a direct router call): any cancel cancels.
peer_cancel_requested: contextvars.ContextVar[Any] = contextvars.ContextVar("peer_cancel_requested", default=None)
# Wall-clock time (time.time()) at which the current Lambda invocation is frozen; None elsewhere.
# Process-wide on purpose: a Lambda execution environment serves one invocation at a time.
_invocation_deadline: float | None = None


def set_invocation_deadline(deadline: float | None) -> None:
    """Declare that work must end by `deadline` (epoch seconds): the Lambda handler's remaining time."""
    global _invocation_deadline
    _invocation_deadline = deadline


Work = Callable[["Job"], dict[str, Any]] | ProcessTask  # a thread's work, or a worker process's


class ProgressSink(Protocol):
    """Where a waiting request forwards its job's progress (the tool context is one)."""

    async def areport_progress(
        self, progress: float, total: float | None = None, message: str | None = None
    ) -> None: ...


@dataclass
class Job:
    """One unit of long work. The work function receives it to report progress and check for cancel."""

    job_id: str
    tool: str
    info: dict[str, Any] = field(default_factory=dict)
    kind: str = "training"  # which concurrency limit applies (JobRunner.limits)
    status: JobStatus = "queued"
    progress_done: float = 0.0
    progress_total: float | None = None
    progress_message: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    exception: BaseException | None = None
    created_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    finished_at: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, see `mark`
    _runner: JobRunner | None = None
    _committed: bool = False  # past `begin_publish`: the job finishes even if cancelled now
    _last_write: float = 0.0
    _last_mark: float = field(default_factory=time.perf_counter)
    _wakers: list[Callable[[], None]] = field(default_factory=list)  # called once the job has ended

    def check_cancelled(self) -> None:
        """Call between units of work: raises `CancelledError` once the job has been cancelled."""
        if self.cancelled:
            raise CancelledError(f"job {self.job_id} was cancelled; nothing was written")

    def begin_publish(self) -> None:
        """The last chance to stop, right before anything becomes visible in storage."""
        self.check_cancelled()
        self._committed = True

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set() and not self._committed

    def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Record progress (persisted now and then). The waiting request forwards it to the client
        from the event loop, so the work never blocks on a notification."""
        self.progress_total = total if total is not None else self.progress_total
        self.progress_message = message
        self.progress_done = max(self.progress_done, done)
        if self._runner is not None:
            self._runner.persist(self, force=False)

    def mark(self, phase: str) -> None:
        """Close a phase of the work: the time since the previous mark is recorded under `phase`."""
        now = time.perf_counter()
        self.timings[phase] = round(self.timings.get(phase, 0.0) + now - self._last_mark, 3)
        self._last_mark = now

    def add_history(self, record: dict[str, Any]) -> None:
        self.history.append(record)


class JobRunner:
    """Runs jobs in worker threads, at most `max_concurrent` at once, and keeps their records."""

    def __init__(self, storage: S3Utils, max_concurrent: int, limits: dict[str, int] | None = None) -> None:
        self.storage = storage
        self.max_concurrent = max(1, int(max_concurrent))
        self.limits = {kind: max(1, int(limit)) for kind, limit in (limits or {}).items()}
        self.instance_id = secrets.token_hex(8)
        self.pid = os.getpid()
        self.host = socket.gethostname()
        self.pid_namespace = _pid_namespace()
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[tuple[Job, Work]] = deque()
        self._running: set[str] = set()
        self._finished: deque[str] = deque()
        self._heartbeat: threading.Thread | None = None

    # ----------------------------------------------------------------- submit / cancel
    def submit(
        self,
        tool: str,
        work: Work,
        *,
        info: dict[str, Any] | None = None,
        kind: str = "training",
        job_id: str | None = None,
    ) -> Job:
        """Queue `work` (a function of the Job returning a JSON-able result); starts it when a slot
        of its `kind` is free. `job_id` lets the caller choose the id (default: a fresh one)."""
        job = Job(job_id=job_id or new_job_id(), tool=tool, info=dict(info or {}), kind=kind, _runner=self)
        with self._lock:
            self._jobs[job.job_id] = job
            self._queue.append((job, work))
        self.persist(job, force=True)
        self._start_ready()
        self._ensure_heartbeat()
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a live job: a queued one never starts, a running one stops at its next check."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in FINAL_STATUSES:
                return job
            job.cancel_event.set()
            queued = [entry for entry in self._queue if entry[0] is job]
            for entry in queued:
                self._queue.remove(entry)
        if queued:
            self._finish(job, "cancelled", error={"kind": "cancelled", "message": "cancelled before it started"})
        return job

    def limit(self, kind: str) -> int:
        """How many jobs of `kind` may run at once."""
        return self.limits.get(kind, self.max_concurrent)

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start; None when the job is not queued."""
        with self._lock:
            for index, (queued, _) in enumerate(self._queue):
                if queued is job:
                    return index + 1
        return None

    # ----------------------------------------------------------------- waiting
    async def wait(self, job: Job, timeout: float, sink: ProgressSink | None = None) -> bool:
        """Wait (without blocking the event loop) until the job ends or `timeout` passes; meanwhile
        forward its progress to `sink`, coalescing bursts (many fast rounds) into a few
        notifications a second, and keeping MCP's rule that progress increases."""
        deadline = time.monotonic() + max(0.0, timeout)
        delay = _FIRST_POLL_SECONDS
        sent = 0.0
        last_sent_at = 0.0
        # The job's end wakes this wait at once: polling alone answered up to _POLL_SECONDS late.
        woken = anyio.Event()
        loop = asyncio.get_running_loop()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(woken.set)

        job._wakers.append(wake)
        try:
            while True:
                done = job.done_event.is_set()
                now = time.monotonic()
                if (
                    sink is not None
                    and job.progress_done > sent
                    and (done or now - last_sent_at >= _PROGRESS_SEND_SECONDS)
                ):
                    sent, last_sent_at = job.progress_done, now
                    message = f"{job.job_id}: {job.progress_message}" if job.progress_message else job.job_id
                    await sink.areport_progress(sent, job.progress_total, message)
                if done:
                    return True
                remaining = deadline - now
                if remaining <= 0:
                    return False
                with anyio.move_on_after(min(delay, remaining)):
                    await woken.wait()
                delay = min(delay * 1.5, _POLL_SECONDS)
        finally:
            job._wakers.remove(wake)

    # ----------------------------------------------------------------- execution
    def _start_ready(self) -> None:
        to_start: list[tuple[Job, Work]] = []
        with self._lock:
            running: dict[str, int] = {}
            for job_id in self._running:
                kind = self._jobs[job_id].kind if job_id in self._jobs else "training"
                running[kind] = running.get(kind, 0) + 1
            # First come, first served within a kind; a full kind does not block the others.
            for entry in list(self._queue):
                job, work = entry
                if running.get(job.kind, 0) >= self.limit(job.kind):
                    continue
                self._queue.remove(entry)
                running[job.kind] = running.get(job.kind, 0) + 1
                self._running.add(job.job_id)
                job.status = "running"
                job.started_at = now_iso()
                to_start.append((job, work))
        for job, work in to_start:
            self.persist(job, force=True)
            thread = threading.Thread(target=self._run, args=(job, work), name=f"job-{job.job_id}", daemon=True)
            thread.start()

    def _run(self, job: Job, work: Work) -> None:
        try:
            job.check_cancelled()
            job._last_mark = time.perf_counter()
            result = self._execute(work, job)
        except CancelledError as exc:
            self._finish(job, "cancelled", error=exc.to_dict(), exception=exc)
        except MLOpsError as exc:
            if job.cancelled:
                self._finish(job, "cancelled", error={"kind": "cancelled", "message": "cancelled"}, exception=exc)
            else:
                self._finish(job, "failed", error={**exc.to_dict(), "text": str(exc)}, exception=exc)
        except BaseException as exc:  # also SystemExit from library code: a job thread must always finish its job
            _log.error("job %s (%s) failed unexpectedly", job.job_id, job.tool, exc_info=exc)
            message = f"{job.tool} failed unexpectedly ({type(exc).__name__}); the details are in the server log"
            self._finish(job, "failed", error={"kind": "internal_error", "message": message}, exception=exc)
        else:
            job.result = result
            self._finish(job, "succeeded")

    def _execute(self, work: Work, job: Job) -> dict[str, Any]:
        if isinstance(work, ProcessTask):
            return workers.pool().run(work, job, self.storage.config)
        return work(job)

    def _finish(
        self,
        job: Job,
        status: JobStatus,
        error: dict[str, Any] | None = None,
        exception: BaseException | None = None,
    ) -> None:
        with self._lock:
            job.status = status
            job.error = redact(error)  # the record is stored and shown: no secret a message quoted
            job.exception = exception
            job.finished_at = now_iso()
            self._running.discard(job.job_id)
            self._finished.append(job.job_id)
            while len(self._finished) > _KEEP_FINISHED:
                self._jobs.pop(self._finished.popleft(), None)
        self.persist(job, force=True)
        job.done_event.set()
        for wake in list(job._wakers):
            wake()
        self._start_ready()

    # ----------------------------------------------------------------- records
    def record(self, job: Job) -> dict[str, Any]:
        """The job as JSON: what is stored in `jobs/<job_id>.json` and shown by get_training_metrics."""
        progress_fraction = None
        if job.progress_total:
            progress_fraction = round(min(1.0, job.progress_done / job.progress_total), 4)
        if job.status == "succeeded":
            progress_fraction = 1.0
        return {
            "job_id": job.job_id,
            "tool": job.tool,
            "kind": job.kind,
            "status": job.status,
            "progress": {
                "done": job.progress_done,
                "total": job.progress_total,
                "fraction": progress_fraction,
                "message": job.progress_message,
            },
            "queue_position": self.queue_position(job) if job.status == "queued" else None,
            "history": list(job.history),
            "result": job.result,
            "error": job.error,
            "info": job.info,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "updated_at": now_iso(),
            "updated_epoch": time.time(),
            "instance_id": self.instance_id,
            "pid": self.pid,
            "host": self.host,
            "pid_namespace": self.pid_namespace,
        }

    def persist(self, job: Job, force: bool) -> None:
        """Write the job's record (always on state changes, throttled for progress)."""
        now = time.monotonic()
        if not force and now - job._last_write < _PROGRESS_WRITE_SECONDS:
            return
        job._last_write = now
        try:
            self.storage.write_bytes(self.record_location(job.job_id), json_bytes(self.record(job)), "application/json")
        except Exception:  # storage trouble must not kill the work; the in-memory record still answers
            _log.warning("could not write the record of job %s", job.job_id, exc_info=True)

    def record_location(self, job_id: str) -> Location:
        """Where the job's record (with its full history) is stored."""
        return self.storage.resolve(f"{JOBS_PREFIX}/{job_id}.json", "job_id")

    def read(self, job_id: str) -> dict[str, Any]:
        """The job's record: live from memory, else from storage (a dead server's job reads as failed)."""
        if not _JOB_ID.match(job_id):
            raise InvalidInputError(f"{job_id!r} is not a job id", field="job_id", hint=_JOB_ID_HINT)
        job = self.get(job_id)
        if job is not None:
            return self.record(job)
        loc = self.record_location(job_id)
        if not self.storage.exists(loc):
            raise NotFoundError(f"no job {job_id!r}", field="job_id", hint=_JOB_ID_HINT)
        record = parse_json(self.storage.read_bytes(loc, max_bytes=64 * 1024**2), loc.uri)
        if not isinstance(record, dict):
            raise NotFoundError(f"the record of job {job_id!r} is unreadable", field="job_id")
        if record.get("status") not in FINAL_STATUSES and self._is_lost(record):
            record.update(
                status="failed",
                error={"kind": "lost", "message": LOST_MESSAGE},
                queue_position=None,
            )
            if not self.storage.config.read_only:  # read-only means no write at all
                try:
                    self.storage.write_bytes(loc, json_bytes(record), "application/json")
                except Exception:
                    _log.warning("could not mark job %s as lost", job_id, exc_info=True)
        return record

    def _is_lost(self, record: dict[str, Any]) -> bool:
        if record.get("instance_id") == self.instance_id:
            return True  # ours, yet not in memory: it can only have been dropped
        age = time.time() - float(record.get("updated_epoch") or 0.0)
        if age > STALE_SECONDS:
            return True  # the owner stopped refreshing its heartbeat
        # A PID means something only inside the PID namespace it came from: two containers may
        # share a host name, and each has its own PID 1.
        same_namespace = self.pid_namespace is not None and record.get("pid_namespace") == self.pid_namespace
        if record.get("host") == self.host and same_namespace:
            pid = record.get("pid")
            return not (isinstance(pid, int) and pid_alive(pid))
        return False

    # ----------------------------------------------------------------- heartbeat
    def _ensure_heartbeat(self) -> None:
        with self._lock:
            if self._heartbeat is not None and self._heartbeat.is_alive():
                return
            self._heartbeat = threading.Thread(target=self._beat, name="job-heartbeat", daemon=True)
            self._heartbeat.start()

    def request_cancel(self, job_id: str) -> None:
        """Ask the server process that runs `job_id` (another replica) to cancel it: it finds the
        marker `jobs/<job_id>.cancel` at its next heartbeat tick."""
        loc = self.storage.resolve(f"{JOBS_PREFIX}/{job_id}.cancel", "job_id")
        self.storage.write_bytes(
            loc, json_bytes({"requested_at": now_iso(), "by": self.instance_id}), "application/json"
        )

    def _beat(self) -> None:
        """Keep live records fresh so another server can tell them from a dead server's leftovers,
        and honour cancels that other replicas left in storage."""
        while True:
            time.sleep(HEARTBEAT_SECONDS / 4)
            with self._lock:
                live = [j for j in self._jobs.values() if j.status not in FINAL_STATUSES]
                if not live:
                    self._heartbeat = None
                    return
            now = time.monotonic()
            for job in live:
                if now - job._last_write >= HEARTBEAT_SECONDS:
                    self.persist(job, force=True)
                try:
                    marker = self.storage.resolve(f"{JOBS_PREFIX}/{job.job_id}.cancel", "job_id")
                    if self.storage.exists(marker):
                        _log.info("job %s cancelled through storage by another server process", job.job_id)
                        self.cancel(job.job_id)
                except Exception:  # storage trouble: try again at the next tick
                    _log.warning("could not check the cancel marker of job %s", job.job_id, exc_info=True)


def _pid_namespace() -> str | None:
    """The PID namespace of this process (Linux), e.g. `pid:[4026531836]`; None elsewhere."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def new_job_id() -> str:
    return f"job-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


async def run_job(
    runner: JobRunner,
    tool: str,
    work: Work,
    *,
    max_wait_seconds: float,
    wait: bool = True,
    progress: ProgressSink | None = None,
    info: dict[str, Any] | None = None,
    kind: str = "training",
    job_id: str | None = None,
) -> Job:
    """Submit `work` as a job and wait for it up to `max_wait_seconds`, forwarding its progress.

    Returns the job, finished or not. An explicit cancel of the caller cancels the job and waits
    (briefly, shielded) until the work has stopped, so nothing is published afterwards; any other
    cancellation of the caller (its HTTP client went away) leaves the job running.
    """
    deadline = _invocation_deadline
    if deadline is not None and not wait:
        raise InvalidInputError(
            "wait: false is not available on AWS Lambda: the function is frozen once it answers",
            field="wait",
            hint="Let the call wait, or run long training on the ECS Fargate deployment (README, Deployment)",
        )
    # submit writes the job record: storage I/O (an S3 PUT) stays off the event loop.
    job = await anyio.to_thread.run_sync(lambda: runner.submit(tool, work, info=info, kind=kind, job_id=job_id))
    if not wait:
        return job
    limit = max_wait_seconds
    if deadline is not None:  # Lambda: the whole job has to fit in what is left of the invocation
        limit = max(0.0, deadline - time.time() - _LAMBDA_MARGIN_SECONDS)
    position = runner.queue_position(job)
    if position is not None and progress is not None:
        await progress.areport_progress(0, None, f"{job.job_id}: queued (position {position})")
    peer_cancel = peer_cancel_requested.get()
    try:
        finished = await runner.wait(job, limit, progress)
    except anyio.get_cancelled_exc_class():
        if peer_cancel is None or peer_cancel.is_set():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(runner.cancel, job.job_id)
                await runner.wait(job, 30.0)
        else:
            _log.info("job %s detached: its request ended without a cancel", job.job_id)
        raise
    if deadline is not None and not finished:
        await anyio.to_thread.run_sync(runner.cancel, job.job_id)
        await runner.wait(job, _LAMBDA_MARGIN_SECONDS)
        raise MLOpsError(
            f"job {job.job_id} ({tool}) could not finish within the Lambda invocation's time and was stopped",
            hint="Run long training on the ECS Fargate deployment (README, Deployment), or train on less data",
        )
    return job
