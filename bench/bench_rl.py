"""Benchmark: PPO to a CartPole-v1 return of 450 through the server vs RLlib directly.

    .venv/bin/python bench/bench_rl.py [--runs 3] [--target 450] [--max-timesteps 300000] [--cpus 2]
                                       [--others a3c,dqn]

Both sides use the same seeded PPO config: the one the server builds from its defaults (lr 3e-4,
6 epochs, vf_loss_coeff 0.01, one hidden layer of 32, 2000 env steps per iteration, minibatch 128,
one env runner), which the direct side builds with the same function (`rl.rllib.build_config`,
same env creator), so both follow the same sample path and the difference is the server's
overhead (job, worker process, progress, history). Both stop at the first iteration whose mean
return reaches --target. Training time is measured from building the algorithm to that iteration
on both sides (the server: the `seconds` of its last history entry; directly: `build_algo()` +
`train()` calls, after `ray.init` and the imports). The server's whole tool call (starting its
Ray, the worker importing RLlib and joining Ray, training, writing the bundle) is printed too.
Runs alternate server / direct so both see the same machine load. Prints the medians side by
side with the ratio of times (target <= 1.1) and of env steps, the peak RSS of the server process
and of the job's worker process (the driver: RLlib's learner runs there; Ray's own processes not
included), and A3C's and DQN's time to 195 through the server. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench_training import peak_rss_mb, server_pid  # noqa: E402  (bench/ is this script's folder)

from mcp_server.client import connect, result_text, structured  # noqa: E402

SEED = 0
RATIO_TARGET = 1.1


async def through_server(root: Path, tool: str, target: float, max_timesteps: int, cpus: int) -> dict[str, Any]:
    env = {
        "MLOPS_STORAGE_ROOT": str(root),
        "LOG_LEVEL": "WARNING",
        "MLOPS_MAX_WAIT_SECONDS": "3600",
        "MLOPS_RAY_NUM_CPUS": str(cpus),
        "PYTHONPATH": str(REPO),
    }
    args = {
        "environment": "CartPole-v1",
        "model_output_s3_uri": f"models/{tool}",
        "random_state": SEED,
        "stop": {"target_return": target, "max_timesteps": max_timesteps},
    }
    async with connect(env) as session:
        server = server_pid()
        peaks: dict[int, float] = {}
        done = threading.Event()
        watcher = threading.Thread(target=_watch_workers, args=(server, peaks, done), daemon=True)
        watcher.start()
        started = time.perf_counter()
        try:
            result = await session.call_tool(tool, args)
        finally:
            done.set()
            watcher.join()
        wall = time.perf_counter() - started
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result_text(result)}")
        out = structured(result)
        return {
            "seconds": float(out["history"][-1]["seconds"]),
            "call_seconds": wall,
            "timesteps": int(out["metrics"]["timesteps"]),
            "reached": out["stopped_by"] == "target_return",
            "peak_rss_mb": peak_rss_mb(server),
            "worker_peak_rss_mb": max(peaks.values(), default=None),
        }


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def _watch_workers(server: int | None, peaks: dict[int, float], done: threading.Event) -> None:
    """Record the peak RSS of the server's job workers (children of its fork server) while they live."""
    while server is not None and not done.wait(0.5):
        for forkserver in _children(server):
            try:
                if b"forkserver" not in Path(f"/proc/{forkserver}/cmdline").read_bytes():
                    continue
            except OSError:
                continue
            for worker in _children(forkserver):
                try:
                    peak = peak_rss_mb(worker)
                except OSError:
                    continue
                if peak is not None:
                    peaks[worker] = max(peak, peaks.get(worker, 0.0))


def direct_ppo(target: float, max_timesteps: int, cpus: int) -> dict[str, Any]:
    """RLlib alone, in a fresh process, with the config the server builds from its defaults."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a throwaway local Ray; nothing written to ~/.ray
    import ray
    from ray.tune.registry import register_env

    from mcp_server.capabilities.ml_training.rl.common import env_creator
    from mcp_server.capabilities.ml_training.rl.rllib import ENV_NAME, build_config
    from mcp_server.capabilities.ml_training.schemas import PPOHyperparameters
    from mcp_server.common.rl_env import build_env_spec

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        register_env(ENV_NAME, env_creator)
        config = build_config("ppo", build_env_spec("CartPole-v1"), PPOHyperparameters(), 1, SEED)
        started = time.perf_counter()
        algo = config.build_algo()
        timesteps, reached = 0, False
        while timesteps < max_timesteps:
            result = algo.train()
            timesteps = int(result["num_env_steps_sampled_lifetime"])
            ret = result["env_runners"].get("episode_return_mean")
            if ret is not None and ret >= target:
                reached = True
                break
        seconds = time.perf_counter() - started
        algo.stop()
        return {"seconds": seconds, "timesteps": timesteps, "reached": reached}
    finally:
        ray.shutdown()


def direct(target: float, max_timesteps: int, cpus: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(direct_ppo, target, max_timesteps, cpus).result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--target", type=float, default=450.0)
    parser.add_argument("--max-timesteps", type=int, default=300_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--others", default="a3c,dqn", help="also time these to 195 (comma-separated; '' for none)")
    args = parser.parse_args()
    served: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-rl-") as tmp:
        for run in range(args.runs):
            served.append(anyio.run(through_server, Path(tmp), "train_ppo", args.target, args.max_timesteps, args.cpus))
            baseline.append(direct(args.target, args.max_timesteps, args.cpus))
            print(f"run {run + 1}: server {served[-1]}  direct {baseline[-1]}", flush=True)
        others = {}
        for name in filter(None, args.others.split(",")):
            tool = f"train_{name.strip()}"
            others[tool] = anyio.run(through_server, Path(tmp), tool, 195.0, args.max_timesteps, args.cpus)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    s_time, d_time = med(served, "seconds"), med(baseline, "seconds")
    s_steps, d_steps = med(served, "timesteps"), med(baseline, "timesteps")
    print()
    print(f"PPO to {args.target:g} on CartPole-v1, medians of {args.runs} runs")
    print(f"{'':22}{'server':>12}{'RLlib direct':>14}{'ratio':>8}")
    ratio = s_time / d_time
    verdict = "within" if ratio <= RATIO_TARGET else "above"
    print(f"{'seconds':22}{s_time:12.1f}{d_time:14.1f}{ratio:8.2f}  ({verdict} the {RATIO_TARGET} target)")
    print(f"{'env steps':22}{s_steps:12.0f}{d_steps:14.0f}{s_steps / d_steps:8.2f}")
    s_ms, d_ms = 1000 * s_time / s_steps, 1000 * d_time / d_steps
    print(f"{'ms per env step':22}{s_ms:12.2f}{d_ms:14.2f}{s_ms / d_ms:8.2f}")
    print(f"{'whole tool call (s)':22}{med(served, 'call_seconds'):12.1f}{'':>14}  (imports, Ray start, bundle)")
    print(f"{'reached the target':22}{sum(r['reached'] for r in served):12d}{sum(r['reached'] for r in baseline):14d}")
    peaks = [r["peak_rss_mb"] for r in served if r["peak_rss_mb"] is not None]
    if peaks:
        print(f"server peak RSS: {max(peaks):.0f} MB (the server process; Ray's own processes not included)")
    workers = [r["worker_peak_rss_mb"] for r in served if r["worker_peak_rss_mb"] is not None]
    if workers:
        print(f"job worker peak RSS: {max(workers):.0f} MB (the PPO driver and learner; ends with the job)")
    for tool, row in others.items():
        state = "reached" if row["reached"] else "did not reach"
        print(f"{tool} to 195: {row['seconds']:.1f} s, {row['timesteps']} env steps ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
