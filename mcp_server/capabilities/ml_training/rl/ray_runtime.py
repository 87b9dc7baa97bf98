"""The one Ray runtime of a server: started on demand, reused by every RL job, gone with the server.

Without `RAY_ADDRESS` the server starts a Ray of its own (`address="local"`: a bare `ray.init()`
would join any cluster it happens to find on the machine), sized by `MLOPS_RAY_NUM_CPUS`, with no
dashboard and logs kept off stdout (stdout carries the MCP protocol). With `RAY_ADDRESS` it joins
that cluster instead and starts nothing.

Lifecycle:
- `ensure_ray(config)` connects the server once (thread-safe) and returns the `RayHandle`
  (address, auth settings) with which an RL job's driver, in the job's worker process, joins the
  same Ray (`connect_driver`). Workers are forked from a fork server started before Ray, so they
  do not inherit what this module put into the environment: the handle carries it explicitly
  (never logged, never in a job record or result). The actors a driver creates belong to its
  Ray job and die with the driver's process, also when it is killed.
- Ray's head processes (GCS, raylet) are started with `PR_SET_PDEATHSIG`, which fires when the
  *thread* that started them ends, not the process. Job threads come and go, so `ray.init` runs in
  one long-lived thread of its own ("ray-runtime"), which also calls `ray.shutdown()` when asked.
  If the server is SIGKILLed, that thread dies with it and the kernel kills the head processes.
  The raylet's agents and workers do not die with it, so a watchdog process (`ray_watchdog.py`,
  holding a pipe from the server) kills every process carrying this server's `MLOPS_RAY_OWNER`
  token as soon as the server is gone: no Ray process outlives the server.
- `shutdown_ray()` is registered once with `atexit` and called by `__main__` when serving ends.

Authentication: Ray 2.60 turns token auth on for a new local cluster and writes the token to
`~/.ray/auth_token`. We keep token auth (anyone who can reach the ports could otherwise run code
as the server's user) but do not write into the user's home: a fresh random token is given to
Ray through `RAY_AUTH_TOKEN` in this process's environment, which Ray's own processes (and a
future driver process) inherit. An explicit `RAY_AUTH_MODE` in the environment is respected.
When joining a cluster, Ray's own variables (`RAY_AUTH_MODE`, `RAY_AUTH_TOKEN`,
`RAY_AUTH_TOKEN_PATH`) say how to authenticate, as for any Ray client; drivers get the same ones.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_server.capabilities.ml_training.rl.ray_watchdog import OWNER_VARIABLE
from mcp_server.common.exceptions import MLOpsError
from mcp_server.common.logger import get_logger

if TYPE_CHECKING:
    from mcp_server.config import Config

_log = get_logger(__name__)
# Variables this module put into os.environ for its Ray; removed again when that Ray is shut down.
_SET_VARIABLES: list[str] = []
_START_TIMEOUT_SECONDS = 120.0
AUTH_VARIABLES = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
_INIT_OPTIONS: dict[str, Any] = {
    "log_to_driver": False,  # worker output would be printed by this process
    "logging_level": logging.WARNING,
    "configure_logging": True,
    "include_dashboard": False,
}


@dataclass(frozen=True)
class RayHandle:
    """How to reach the server's Ray: its GCS address, whether the server started it, its CPUs, and
    the auth variables a driver needs (kept out of repr: it holds the token)."""

    address: str
    started_here: bool
    num_cpus: float
    auth: dict[str, str] = field(default_factory=dict, repr=False)


class _Runtime:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: RayHandle | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._atexit_registered = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    def ensure(self, config: Config) -> RayHandle:
        with self._lock:
            if self._handle is not None:
                return self._handle
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True
            ready = threading.Event()
            outcome: dict[str, object] = {}
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._serve, args=(config, ready, outcome), name="ray-runtime", daemon=True
            )
            self._thread.start()
            if not ready.wait(_START_TIMEOUT_SECONDS):
                raise MLOpsError(f"Ray did not start within {_START_TIMEOUT_SECONDS:.0f} s; see the server log")
            error = outcome.get("error")
            if error is not None:
                raise error  # type: ignore[misc]
            handle = outcome["handle"]
            assert isinstance(handle, RayHandle)
            self._handle = handle
            return handle

    def _serve(self, config: Config, ready: threading.Event, outcome: dict[str, object]) -> None:
        try:
            if not config.ray_address:
                self._watchdog = _start_watchdog()
            outcome["handle"] = _connect(config)
        except BaseException as exc:  # reported to the caller of ensure()
            outcome["error"] = exc if isinstance(exc, MLOpsError) else _start_error(config, exc)
            self._stop_watchdog()
            ready.set()
            return
        ready.set()
        self._stop.wait()
        import ray

        try:
            ray.shutdown()
        except Exception:
            _log.warning("ray.shutdown failed", exc_info=True)
        self._stop_watchdog()
        while _SET_VARIABLES:
            os.environ.pop(_SET_VARIABLES.pop(), None)

    def _stop_watchdog(self) -> None:
        """Closing its pipe makes the watchdog sweep whatever ray.shutdown() left behind, and exit."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None:
            return
        if watchdog.stdin is not None:
            watchdog.stdin.close()
        try:
            watchdog.wait(timeout=15)
        except subprocess.TimeoutExpired:
            watchdog.kill()

    def shutdown(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._handle = None
            self._stop.set()
        if thread is not None and thread.is_alive():
            thread.join(timeout=30)

    @property
    def handle(self) -> RayHandle | None:
        return self._handle


def _start_error(config: Config, exc: BaseException) -> MLOpsError:
    _log.error("could not start or join Ray", exc_info=exc)
    if config.ray_address:
        return MLOpsError(
            f"cannot join the Ray cluster at RAY_ADDRESS={config.ray_address!r}: {type(exc).__name__}: {exc}",
            hint="Check that the cluster runs and that RAY_AUTH_MODE / RAY_AUTH_TOKEN match it.",
        )
    return MLOpsError(f"cannot start a local Ray: {type(exc).__name__}: {exc}")


def _start_watchdog() -> subprocess.Popen[bytes]:
    """Start the watchdog, then mark this process (and so every Ray process it starts) as ours."""
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != OWNER_VARIABLE}
    watchdog = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("ray_watchdog.py")), token],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a signal to the server's process group must not stop it first
    )
    os.environ[OWNER_VARIABLE] = token
    _SET_VARIABLES.append(OWNER_VARIABLE)
    return watchdog


def _quiet_ray_loggers() -> None:
    # RLlib logs a warning per imported module ("Not importing TensorFlow ...") and per config.
    for name in ("ray", "ray.rllib", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _use_own_token() -> None:
    """Token auth with a fresh token in this process's environment (inherited by Ray's processes)."""
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return  # chosen explicitly by whoever started the server
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    _SET_VARIABLES.extend(("RAY_AUTH_MODE", "RAY_AUTH_TOKEN"))
    _reload_auth_settings()


def _reload_auth_settings() -> None:
    # Ray caches its settings and token when it is imported; refresh them as Ray itself does when
    # it turns token auth on (authentication_token_setup._enable_token_auth).
    import ray._raylet

    raylet: Any = ray._raylet
    raylet.Config.initialize("")
    raylet.AuthenticationTokenLoader.instance().reset_cache()


def connect_driver(handle: RayHandle, runtime_env: dict[str, Any] | None = None) -> None:
    """Join the server's Ray from a job's worker process (an RL driver, a Ray Train driver), with
    the server's auth settings; `runtime_env` is the job's (e.g. the package shipped to workers).

    The worker may have imported Ray already (a preloaded spare), so the settings are set in its
    environment and Ray's cached copies refreshed before `ray.init`.
    """
    for name in AUTH_VARIABLES:
        if name in handle.auth:
            os.environ[name] = handle.auth[name]
        else:
            os.environ.pop(name, None)  # an inherited value must not override the server's choice
    _reload_auth_settings()
    import ray

    try:
        ray.init(address=handle.address, runtime_env=runtime_env, **_INIT_OPTIONS)
    except Exception as exc:
        _log.error("the job's driver could not join Ray", exc_info=True)
        raise MLOpsError(
            f"the job could not join the server's Ray at {handle.address}: {type(exc).__name__}",
            hint="Check the server log; if Ray was restarted, run the job again.",
        ) from None
    _quiet_ray_loggers()


def _connect(config: Config) -> RayHandle:
    import ray

    if config.ray_address:
        ray.init(address=config.ray_address, **_INIT_OPTIONS)
        started = False
    else:
        _use_own_token()
        ray.init(address="local", num_cpus=config.ray_num_cpus, **_INIT_OPTIONS)
        started = True
    _quiet_ray_loggers()
    # Joining: report the address as given (Ray resolves it to the node's IP).
    address = config.ray_address or ray.get_runtime_context().gcs_address
    cpus = float(ray.cluster_resources().get("CPU", 0.0))
    _log.info("ray ready", extra={"fields": {"address": address, "started_here": started, "cpus": cpus}})
    auth = {name: os.environ[name] for name in AUTH_VARIABLES if name in os.environ}
    return RayHandle(address=address, started_here=started, num_cpus=cpus, auth=auth)


_RUNTIME = _Runtime()


def ensure_ray(config: Config) -> RayHandle:
    """Connect this process to the server's Ray (starting it the first time); thread-safe."""
    return _RUNTIME.ensure(config)


def shutdown_ray() -> None:
    """Disconnect, and stop the local Ray if this server started it. Safe to call more than once."""
    _RUNTIME.shutdown()


def current_handle() -> RayHandle | None:
    return _RUNTIME.handle
