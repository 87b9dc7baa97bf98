"""Worker processes for heavy jobs.

A fit runs in a worker process, not in a thread of the server, so that
- a cancel takes effect at once: the worker stops at its next check, and one that does not stop
  within `CANCEL_GRACE_SECONDS` (a long native call: a t-SNE, a DBSCAN, a batch of trees) is killed;
- a crash in native code (a segfault, an OpenMP abort, the OOM killer) fails its job, not the server;
- its memory goes back to the system: each worker runs one job and exits.

One spare worker is kept started, with the common libraries already imported (workers are forked
from a fork server that imported them once), so a job does not pay for the start-up; the first
one is started after the server has answered its first `tools/list` (`warm_up`), so start-up
stays fast. The data is read inside the worker (the task
carries URIs and parameters, never data).

Nothing is published once a worker could be killed: before writing anything visible the worker
asks for the commit (`begin_publish`); from then on it is never killed and the job finishes.

Protocol over one duplex pipe:
    parent -> worker   ("run", task) once; then ("cancel",), ("commit", allowed)
    worker -> parent   ("report", done, total, message), ("history", record), ("timings", dict),
                       ("commit?",), ("ok", result), ("error", error_dict)
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_server.common.exceptions import CancelledError, MLOpsError
from mcp_server.common.logger import get_logger

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from mcp_server.common.jobs import Job
    from mcp_server.config import Config

_log = get_logger(__name__)

CANCEL_GRACE_SECONDS = 1.0  # a cancelled worker that has not stopped by itself after this is killed
_POLL_SECONDS = 0.05
_DIED: tuple[Any, ...] = ("died",)
# Imported once by the fork server that workers are forked from, so no job pays for them: the
# libraries every fit uses, and what a worker needs to receive its task and start (measured: these
# imports cost a job ~0.25 s when each worker did them itself). XGBoost starts no OpenMP threads
# when imported (its pool starts at the first fit, inside the worker) and adds ~5 MB, shared.
_PREIMPORT = (
    "numpy",
    "pandas",
    "pyarrow.parquet",
    "sklearn.ensemble",
    "sklearn.cluster",
    "skops.io",
    "xgboost",
    "mcp_server.config",
    "mcp_server.common.logger",
    "mcp_server.common.s3_utils",
    "mcp_server.common.workers",
)


@dataclass(frozen=True)
class ProcessTask:
    """Work for a worker process: `fn(job, storage, *args)`, a module-level function (it is sent by
    reference) whose arguments are plain data (parameters, locations), never datasets.

    `setup(job)`, if given, runs in the server (the job's thread) right before the task goes to its
    worker, and what it returns is appended to `args`: what only the server has (the address and
    credentials of its Ray). It is never sent to the worker. `preload` names modules the fit
    imports: the spare worker started after such a job imports them while it waits, so the next
    job like it does not pay for them (not during the job: that would compete with it for CPUs).
    Module names (here and in `WorkerPool.warm_up`) come from the tool tables of this package,
    never from a call or from storage.
    """

    fn: Callable[..., dict[str, Any]]
    args: tuple[Any, ...] = ()
    setup: Callable[[Job], tuple[Any, ...]] | None = None
    preload: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Run:
    task: ProcessTask
    config: Config
    job_id: str
    log_level: str


LOST_MESSAGE = "lost: server restarted while the job was running; start it again"


class JobLostError(MLOpsError):
    """The server stopped (and ended the job's worker) before the job finished."""

    kind = "lost"


class InternalJobError(MLOpsError):
    """An unexpected failure inside a worker (its traceback is in the server log)."""

    kind = "internal_error"


def _error_classes() -> dict[str, type[MLOpsError]]:
    found: dict[str, type[MLOpsError]] = {}
    pending: list[type[MLOpsError]] = [MLOpsError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return found


def rebuild_error(error: dict[str, Any]) -> MLOpsError:
    """The worker's error as the same kind of exception in the server (the text is unchanged)."""
    cls = _error_classes().get(str(error.get("kind")), MLOpsError)
    return cls(str(error.get("message") or "the job failed"), field=error.get("field"), hint=error.get("hint"))


# ---------------------------------------------------------------------------- worker side
class WorkerJob:
    """What a fit sees of its job inside a worker: the same methods as `jobs.Job`, over the pipe."""

    def __init__(self, conn: Connection, job_id: str) -> None:
        self.job_id = job_id
        self.timings: dict[str, float] = {}
        self._conn = conn
        self._send_lock = threading.Lock()
        self._cancel = threading.Event()
        self._commit_answers: queue.Queue[bool] = queue.Queue()
        self._committed = False
        self._last_mark = time.perf_counter()

    def send(self, *message: Any) -> None:
        with self._send_lock:
            self._conn.send(message)

    def listen(self) -> None:
        """Runs in a thread: the parent's cancel and commit answers. A parent gone (the server was
        killed) ends the worker at once."""
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                os._exit(3)
            if message[0] == "cancel":
                self._cancel.set()
            elif message[0] == "commit":
                self._commit_answers.put(bool(message[1]))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set() and not self._committed

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise CancelledError(f"job {self.job_id} was cancelled; nothing was written")

    def begin_publish(self) -> None:
        """The last chance to stop: after this the job is finished even if cancelled."""
        if self._committed:
            return
        self.check_cancelled()
        self.send("commit?")
        if not self._commit_answers.get():
            raise CancelledError(f"job {self.job_id} was cancelled; nothing was written")
        self._committed = True

    def report(self, done: float, total: float | None = None, message: str | None = None) -> None:
        self.send("report", done, total, message)

    def add_history(self, record: dict[str, Any]) -> None:
        self.send("history", record)

    def mark(self, phase: str) -> None:
        now = time.perf_counter()
        self.timings[phase] = round(self.timings.get(phase, 0.0) + now - self._last_mark, 3)
        self._last_mark = now


def _worker_main(conn: Connection, preload: tuple[str, ...] = ()) -> None:
    # stdout belongs to the server's protocol stream: nothing in a worker may write to it.
    os.dup2(2, 1)
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # the job that needs it reports the failure
            _log.warning("worker preload of %s failed", module, exc_info=True)
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return  # the server went away before giving this spare any work
    run: _Run = message[1]
    from mcp_server.common.logger import configure_logging
    from mcp_server.common.s3_utils import S3Utils

    configure_logging(run.log_level)
    job = WorkerJob(conn, run.job_id)
    threading.Thread(target=job.listen, name="worker-listener", daemon=True).start()
    try:
        result = run.task.fn(job, S3Utils(run.config), *run.task.args)
    except MLOpsError as exc:
        job.send("timings", job.timings)
        job.send("error", exc.to_dict())
    except BaseException as exc:  # a worker reports every failure; only its job fails
        _log.exception("job %s failed unexpectedly in its worker", run.job_id)
        job.send(
            "error",
            {"kind": "internal_error", "message": f"failed unexpectedly ({type(exc).__name__}); see the server log"},
        )
    else:
        job.send("timings", job.timings)
        job.send("ok", result)


# ---------------------------------------------------------------------------- server side
@dataclass(eq=False)  # hashable by identity: kept in a set while it runs
class _Worker:
    process: BaseProcess
    conn: Connection
    started: float = field(default_factory=time.monotonic)
    finished: bool = False  # it sent its result (or error): nothing it does any more matters
    stop_lock: threading.Lock = field(default_factory=threading.Lock)


class WorkerPool:
    """Starts worker processes, keeps one spare, and runs a task in a worker on behalf of a job."""

    def __init__(self) -> None:
        # Workers are forked from a fork server: a clean single-threaded process started once, with
        # the common libraries imported, so a new worker costs milliseconds, not an interpreter
        # start (forking the threaded server itself would be unsafe).
        self._context = multiprocessing.get_context("forkserver")
        self._preload = list(_PREIMPORT)
        self._context.set_forkserver_preload(self._preload)
        self._lock = threading.Lock()
        self._spare: Future[_Worker] | None = None
        self._live: set[_Worker] = set()
        self._closed = False

    def _start(self, preload: tuple[str, ...] = ()) -> _Worker:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, args=(child_conn, preload), name="mlops-worker", daemon=True
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)

    def warm_up(self, modules: Iterable[str] = (), preload: tuple[str, ...] = ()) -> None:
        """Start the spare worker in the background if there is none (nor one starting); it
        imports `preload` while it waits.

        `modules` (the code the server's worker jobs run, named by their tool specs: this package
        never names a capability) join the fork server's imports if it has not started yet."""
        with self._lock:
            added = [m for m in modules if m not in self._preload]
            if added:
                self._preload.extend(added)
                self._context.set_forkserver_preload(self._preload)
            if self._spare is not None or self._closed:
                return
            self._spare = spare = Future[_Worker]()
        threading.Thread(target=self._fill, args=(spare, preload), name="worker-spare", daemon=True).start()

    def _fill(self, spare: Future[_Worker], preload: tuple[str, ...]) -> None:
        try:
            spare.set_result(self._start(preload))
        except BaseException as exc:  # surfaces in the job that takes this spare
            spare.set_exception(exc)

    def _take(self, task: ProcessTask) -> _Worker:
        with self._lock:
            spare, self._spare = self._spare, None
        # A spare still starting is waited for: starting a second one would only compete with it.
        worker = spare.result() if spare is not None else self._start()
        if not worker.process.is_alive():
            worker = self._start()
        with self._lock:
            self._live.add(worker)
        if not task.preload:
            self.warm_up()  # the next job finds a spare again
        return worker

    def run(self, task: ProcessTask, job: Job, config: Config) -> dict[str, Any]:
        """Run `task` for `job` in a worker; blocks (in the job's thread) until it has ended."""
        if task.setup is not None:
            task = ProcessTask(task.fn, (*task.args, *task.setup(job)), preload=task.preload)
            job.check_cancelled()
        worker = self._take(task)
        job.info["worker_pid"] = worker.process.pid
        try:
            worker.conn.send(("run", _Run(task, config, job.job_id, config.log_level)))
            return self._supervise(worker, job)
        finally:
            if worker.finished:
                # Its answer is in: the job need not wait for the process to end (tearing down a
                # large address space takes tens of ms); it is still ended and reaped, just aside.
                threading.Thread(target=self._retire, args=(worker,), name="worker-reaper", daemon=True).start()
            else:
                self._retire(worker)
            if task.preload:
                self.warm_up(preload=task.preload)  # after the job, so its imports never compete with it

    def _retire(self, worker: _Worker) -> None:
        _stop(worker)
        with self._lock:
            self._live.discard(worker)

    def _supervise(self, worker: _Worker, job: Job) -> dict[str, Any]:
        cancel_sent: float | None = None
        committed = False
        while True:
            if job.cancel_event.is_set() and not committed:
                if cancel_sent is None:
                    cancel_sent = time.monotonic()
                    _send(worker, ("cancel",))
                elif time.monotonic() - cancel_sent > CANCEL_GRACE_SECONDS:
                    _stop(worker)  # a long native call does not see the flag: end the process
                    raise CancelledError(f"job {job.job_id} was cancelled; nothing was written")
            message: tuple[Any, ...] | None = None
            try:
                ready = worker.conn.poll(_POLL_SECONDS)
                message = worker.conn.recv() if ready else None
            except (EOFError, OSError):
                message = _DIED
            if message is None:
                if worker.process.is_alive() or worker.conn.poll(0):
                    continue
                message = _DIED
            kind = message[0]
            if kind == "report":
                job.report(*message[1:])
            elif kind == "history":
                job.add_history(message[1])
            elif kind == "timings":
                job.timings.update(message[1])
            elif kind == "commit?":
                committed = not job.cancel_event.is_set()
                if committed:
                    job.begin_publish()  # the server's view of the job follows the worker's
                _send(worker, ("commit", committed))
            elif kind == "ok":
                worker.finished = True
                return dict(message[1])
            elif kind == "error":
                worker.finished = True
                raise rebuild_error(message[1])
            else:
                if job.cancel_event.is_set() and not committed:
                    raise CancelledError(f"job {job.job_id} was cancelled; nothing was written")
                if self._closed:
                    raise JobLostError(LOST_MESSAGE)
                raise InternalJobError(_death_message(worker), hint="Check the server log; try a smaller input.")

    def close(self) -> None:
        """Stop every worker (at server exit)."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
            workers = list(self._live)
        if spare is not None:
            with contextlib.suppress(Exception):
                workers.append(spare.result(timeout=10))
        for worker in workers:
            _stop(worker)


def _send(worker: _Worker, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError, ValueError):  # a worker gone is seen at the supervisor's next poll
        worker.conn.send(message)


def _stop(worker: _Worker) -> None:
    # The reaper and `close` (at exit) may stop the same worker at once: a second close of the
    # pipe could close a descriptor number that meanwhile belongs to another file.
    with worker.stop_lock:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=5)
        worker.conn.close()


def _death_message(worker: _Worker) -> str:
    worker.process.join(timeout=1)
    code = worker.process.exitcode
    if code is not None and code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exit code {code}"
    return f"the job's worker process died ({how}) before it finished; nothing was published"


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> WorkerPool:
    """The process-wide pool (workers do not depend on a server's settings: each task carries them)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            atexit.register(_POOL.close)
        return _POOL
