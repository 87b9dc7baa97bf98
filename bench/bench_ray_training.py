"""Benchmark: the same XGBoost training with `backend: local` and `backend: ray`, through the server.

    .venv/bin/python bench/bench_ray_training.py [--sizes 200000,1000000] [--features 20] [--rounds 50]
                                                 [--workers 2] [--cluster-cpus 4]

For each data size a generated Parquet file (binary target, float features) is trained on with
`train_xgboost` through a real stdio client (hist, --rounds rounds, depth 6, no validation), once
locally and once on Ray (--workers train workers of 1 CPU) on a one-node cluster this script starts
with `ray start --head --num-cpus --cluster-cpus` (its own port and temp dir; stopped by the pids
of its processes afterwards). Printed side by side: the seconds of the whole call, the train
accuracy, and the peak RSS, sampled every 0.1 s during the call, of the server process and of its
busiest worker process (the local fit, or the Ray driver). The cluster's own processes
are not the server's: on a real deployment they run on other machines. The point of Ray here: the
server's memory stays flat as the data grows, while local training needs the data in memory.
Not a pass/fail benchmark: it prints what it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_training import SEED, call_ok, children_of, make_data, server_pid, xgb_params  # noqa: E402

from mcp_server.client import connect  # noqa: E402
from tests.e2e.test_reinforcement import MARKER, free_port, kill_marked  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler:
    """Peak RSS of the server process, and of its busiest worker process (the local fit, or the
    Ray driver), while a call runs. Workers are forked from the server's fork server, so they are
    its grandchildren; the fork server itself (preloaded libraries only) is left out."""

    def __init__(self, server: int) -> None:
        self.server = server
        self.server_mb = 0.0
        self.worker_mb = 0.0

    async def watch(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.server_mb = max(self.server_mb, rss_mb(self.server))
            fork_servers: set[int] = set()
            with contextlib.suppress(OSError):
                fork_servers = {
                    pid
                    for pid in children_of(self.server)
                    if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
                }
            for pid in set(descendants(self.server)) - fork_servers:  # workers share its command line
                with contextlib.suppress(OSError):
                    self.worker_mb = max(self.worker_mb, rss_mb(pid))
            await anyio.sleep(0.1)


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        try:
            children = children_of(todo.pop())
        except OSError:
            continue
        found.extend(children)
        todo.extend(children)
    return found


def start_cluster(cpus: int, temp: Path, marker: str) -> str:
    port = free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", MARKER: marker}
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", f"--port={port}",
        "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}",
    ]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}"


async def run(root: Path, address: str, sizes: list[int], rounds: int, workers: int) -> list[dict[str, Any]]:
    env = {
        "MLOPS_STORAGE_ROOT": str(root),
        "LOG_LEVEL": "WARNING",
        "MLOPS_MAX_WAIT_SECONDS": "3600",
        "RAY_ADDRESS": address,
        "RAY_AUTH_MODE": "disabled",
    }
    rows: list[dict[str, Any]] = []
    async with connect(env) as session:
        await session.list_tools()
        pid = server_pid()
        assert pid is not None
        # Warm-up: imports in the worker, the server joining the cluster, the package upload.
        for backend in ("local", "ray"):
            extra = {"backend": backend, **({"num_workers": workers} if backend == "ray" else {})}
            args = {"train_data_s3_uri": "warmup.parquet", "target_column": "target", **extra}
            await call_ok(
                session, "train_xgboost", {**args, "model_output_s3_uri": f"models/warm-{backend}",
                                           "hyperparameters": xgb_params(2)}
            )  # fmt: skip
        for size in sizes:
            for backend in ("local", "ray"):
                sampler = Sampler(pid)
                extra = {"backend": backend, **({"num_workers": workers} if backend == "ray" else {})}
                async with anyio.create_task_group() as group:
                    group.start_soon(sampler.watch)
                    await anyio.sleep(1.0)  # the spare worker is ready
                    started = time.perf_counter()
                    out = await call_ok(
                        session,
                        "train_xgboost",
                        {
                            "train_data_s3_uri": f"data-{size}.parquet",
                            "target_column": "target",
                            "model_output_s3_uri": f"models/{backend}-{size}",
                            "random_state": SEED,
                            "hyperparameters": xgb_params(rounds),
                            **extra,
                        },
                    )
                    seconds = time.perf_counter() - started
                    group.cancel_scope.cancel()
                rows.append(
                    {
                        "size": size,
                        "backend": backend,
                        "seconds": seconds,
                        "accuracy": out["metrics"]["train"]["accuracy"],
                        "server_mb": sampler.server_mb,
                        "worker_mb": sampler.worker_mb,
                        "timings": out["timings"],
                    }
                )
                print(
                    f"  {backend:5} {size:>9} rows: {seconds:6.1f} s, accuracy {rows[-1]['accuracy']:.3f}, "
                    f"server {sampler.server_mb:5.0f} MB, busiest worker {sampler.worker_mb:5.0f} MB  {out['timings']}",
                    flush=True,
                )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cluster-cpus", type=int, default=4)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    marker = secrets.token_hex(8)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-ray-") as tmp:
        root = Path(tmp) / "storage"
        root.mkdir()
        make_data(root / "warmup.parquet", 2_000, args.features)
        for size in sizes:
            mb = make_data(root / f"data-{size}.parquet", size, args.features) / 1024**2
            print(f"data: {size} rows x {args.features} features, {mb:.0f} MB in memory")
        print(f"load average before: {os.getloadavg()}")
        try:
            address = start_cluster(args.cluster_cpus, Path(tmp) / "ray", marker)
            rows = anyio.run(run, root, address, sizes, args.rounds, args.workers)
        finally:
            kill_marked(marker)
    print(f"load average after: {os.getloadavg()}")
    print("\n| rows | local s | ray s | server MB local / ray | worker MB local / ray | accuracy local / ray |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        local, ray = (next(r for r in rows if r["size"] == size and r["backend"] == b) for b in ("local", "ray"))
        print(
            f"| {size:,} | {local['seconds']:.1f} | {ray['seconds']:.1f} | {local['server_mb']:.0f} / "
            f"{ray['server_mb']:.0f} | {local['worker_mb']:.0f} / {ray['worker_mb']:.0f} | "
            f"{local['accuracy']:.3f} / {ray['accuracy']:.3f} |"
        )


if __name__ == "__main__":
    main()
