"""RL through the real server over stdio: a short PPO run and its evaluation, Ray kept off stdout,
no Ray process outliving the server (also when it is SIGKILLed), and joining a cluster that the
test starts with `ray start --head` through RAY_ADDRESS.

Ray processes are told apart from other Rays on the machine by a marker variable in their
environment (every Ray process inherits the environment of whoever started it)."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_server.capabilities.ml_training.rl.ray_watchdog import process_stat, ray_descendants
from mcp_server.client import connect
from tests.e2e.test_training import call_ok, poll

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MARKER = "MLOPS_TEST_RAY_MARKER"


def marked_processes(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose environment carries `marker`."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if needle in environ.split(b"\0") and cmdline:
            found.append((int(entry.name), cmdline))
    return found


def server_ray_tree(marker: str) -> dict[int, str]:
    """The Ray processes below the server (pid -> start time): Ray renames its processes with
    setproctitle, which hides their environment, so the marker alone does not find them all."""
    (server,) = [pid for pid, cmd in marked_processes(marker) if "-m mcp_server" in cmd]
    return ray_descendants(server)


def alive(tree: dict[int, str]) -> list[int]:
    return [pid for pid, start in tree.items() if (info := process_stat(pid)) is not None and info[1] == start]


def wait_until_gone(marker: str, tree: dict[int, str] | None = None, timeout: float = 30.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    left: list[Any] = [*marked_processes(marker), *alive(tree or {})]
    while left and time.monotonic() < deadline:
        time.sleep(0.25)
        left = [*marked_processes(marker), *alive(tree or {})]
    return left


def with_descendants(pids: list[int]) -> list[int]:
    """`pids` and all their descendants (a raylet starts its agents with an environment of its own)."""
    found, todo = [], list(pids)
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return found


def kill_marked(marker: str) -> None:
    """End the processes this test started (by pid, with their descendants): SIGTERM, then SIGKILL."""
    tree = with_descendants([pid for pid, _ in marked_processes(marker)])
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pid for pid in tree if Path(f"/proc/{pid}").exists()]
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}/cmdline").exists() and Path(f"/proc/{pid}/cmdline").read_bytes() for pid in alive):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        else:
            return


def server_env(root: Path, marker: str, **extra: str) -> dict[str, str]:
    return {
        "MLOPS_STORAGE_ROOT": str(root),
        "LOG_LEVEL": "WARNING",
        "MLOPS_RAY_NUM_CPUS": "2",
        MARKER: marker,
        **extra,
    }


QUICK_PPO = {
    "environment": "CartPole-v1",
    "model_output_s3_uri": "models/ppo",
    "random_state": 0,
    "num_workers": 1,
    "stop": {"max_iterations": 2},
    "hyperparameters": {"train_batch_size": 500, "batch_size": 100},
}


async def test_ppo_run_and_evaluation_over_stdio_leave_no_ray_behind(storage_root: Path) -> None:
    marker = secrets.token_hex(8)
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with connect(server_env(storage_root, marker)) as session:
        out = await call_ok(session, "train_ppo", QUICK_PPO, progress_callback=on_progress)
        assert out["status"] == "succeeded" and out["stopped_by"] == "max_iterations"
        assert [h["iteration"] for h in out["history"]] == [1, 2]
        assert any(m and "iteration 2" in m for m in progress), progress
        commands = " ".join(cmd for _, cmd in marked_processes(marker))
        assert "raylet" in commands and "gcs_server" in commands  # the server's own Ray
        tree = server_ray_tree(marker)
        assert len(tree) >= 4, tree  # GCS, raylet, its agents, the env runner
        result = await call_ok(session, "evaluate_reinforcement", {"model_s3_uri": "models/ppo", "n_episodes": 3})
        assert len(result["returns"]) == 3
        plot = await session.call_tool("visualization", {"model_s3_uri": "models/ppo", "plot_type": "reward_curve"})
        assert not plot.is_error and any(c.type == "image" for c in plot.content)
    assert wait_until_gone(marker, tree) == []


async def test_a_killed_server_leaves_no_ray_process(storage_root: Path) -> None:
    marker = secrets.token_hex(8)
    tree: dict[int, str] = {}
    long_a3c = {**QUICK_PPO, "model_output_s3_uri": "models/a3c", "stop": {"max_seconds": 300}, "wait": False}
    del long_a3c["hyperparameters"]
    try:
        async with connect(server_env(storage_root, marker)) as session:
            out = await call_ok(session, "train_a3c", {**long_a3c, "num_workers": 2})
            running = await poll(session, out["job_id"], {"running"})
            deadline = time.monotonic() + 120
            while not running["history"]:
                assert time.monotonic() < deadline
                await anyio.sleep(0.25)
                running = await call_ok(session, "get_training_metrics", {"job_id": out["job_id"]})
            procs = marked_processes(marker)
            tree = server_ray_tree(marker)
            assert any(Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::A3CWorker") for pid in tree)
            (server_pid,) = [pid for pid, cmd in procs if "-m mcp_server" in cmd]
            os.kill(server_pid, signal.SIGKILL)
            left = await anyio.to_thread.run_sync(wait_until_gone, marker, tree)
    except Exception:  # the client notices its server died when the session closes
        left = wait_until_gone(marker, tree)
    try:
        assert left == [], left
    finally:
        kill_marked(marker)
        for pid in alive(tree):
            os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_cluster() -> Iterator[dict[str, Any]]:
    """A one-node cluster from `ray start --head` on loopback, with token auth (its token passed
    in the environment, so nothing is written to ~/.ray); stopped by pid afterwards."""
    marker, port, token = secrets.token_hex(8), free_port(), secrets.token_hex(32)
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env = {**os.environ, **auth, MARKER: marker}
    ray_cli = str(Path(sys.executable).parent / "ray")
    command = [
        ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
        "--include-dashboard=false", "--disable-usage-stats",
    ]  # fmt: skip
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        yield {"address": f"127.0.0.1:{port}", "auth": auth, "marker": marker}
    finally:
        kill_marked(marker)


async def test_joins_the_cluster_named_by_ray_address(storage_root: Path, ray_cluster: dict[str, Any]) -> None:
    marker = secrets.token_hex(8)
    env = server_env(storage_root, marker, RAY_ADDRESS=ray_cluster["address"], **ray_cluster["auth"])
    async with connect(env) as session:
        args = {**QUICK_PPO, "model_output_s3_uri": "models/a3c", "num_workers": 1, "stop": {"max_iterations": 1}}
        del args["hyperparameters"]
        out = await call_ok(session, "train_a3c", args)
        assert out["status"] == "succeeded" and out["ray_address"] == ray_cluster["address"]
        assert out["async_stats"]["updates"] > 0
        ours = " ".join(cmd for _, cmd in marked_processes(marker))
        assert "raylet" not in ours and "gcs_server" not in ours  # no Ray of its own
        workers = " ".join(cmd for _, cmd in marked_processes(ray_cluster["marker"]))
        assert "raylet" in workers
