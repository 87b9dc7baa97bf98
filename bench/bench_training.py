"""Benchmark: training through the server vs the library directly, on the same generated data.

    .venv/bin/python bench/bench_training.py [--rows 1000000] [--features 20] [--rounds 50] [--trees 20]
                                             [--small-rows 200000] [--small-rounds 100] [--repeat 5]
                                             [--cases xgboost,forest,small,cancel] [--xgb-threads N]

A generated Parquet dataset (binary target) is trained on
1. with XGBoost (hist, --rounds rounds, depth 6): `train_xgboost` through a real stdio client,
   and `pd.read_parquet` + `XGBClassifier.fit` in this process;
2. with a random forest (--trees trees, max_depth 10, all cores): `train_random_forest` through
   the server, and `pd.read_parquet` + `RandomForestClassifier.fit` here.
3. the small case, where fixed costs show: XGBoost --small-rounds rounds on --small-rows rows,
   --repeat times each way; prints the medians and the fixed cost (server minus direct, target
   <= 0.2 s);
4. cancel latency: a long random forest, a t-SNE and a DBSCAN started with `wait: false`,
   cancelled once fitting, timed until the job reads `cancelled` (target <= 2 s).
The server time is the whole tool call (read, fingerprint, fit, train metrics on a sample,
bundle write); the direct time is read + fit. Server and direct runs alternate (a direct run
just before each server call), so both see the same machine load; the load average is printed
with each figure. Fits run in the server's worker processes, so the script prints the server's
and its workers' peak RSS next to the in-memory size of the data. `--cases` picks what runs
(e.g. `--cases small` for the fixed cost alone; `large` = xgboost,forest). Exits 1 when a target
misses.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcp_server.client import connect, result_text, structured  # noqa: E402

RATIO_TARGET = 1.1
FIXED_COST_TARGET = 0.2
CANCEL_TARGET = 2.0
SEED = 0


def make_data(path: Path, rows: int, features: int) -> int:
    """Write the dataset; returns its in-memory size in bytes."""
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(rows, features))
    weights = rng.normal(size=features)
    target = (x @ weights + rng.normal(scale=2.0, size=rows) > 0).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["target"] = target
    frame.to_parquet(path)
    return int(frame.memory_usage(deep=True).sum())


def xgb_params(rounds: int, threads: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"n_estimators": rounds, "max_depth": 6, "learning_rate": 0.3, "tree_method": "hist"}
    if threads:
        params["n_jobs"] = threads
    return params


def rf_params(trees: int) -> dict[str, Any]:
    return {"n_estimators": trees, "max_depth": 10, "n_jobs": -1}


def direct_fit(path: Path, algorithm: str, size: int, threads: int | None = None) -> tuple[float, float | None]:
    """Read + fit with the library itself; returns (seconds, peak RSS MB of this process).

    Runs in a fresh process (see `direct`), so its peak memory is the library's alone."""
    import xgboost as xgb
    from sklearn.ensemble import RandomForestClassifier

    started = time.perf_counter()
    frame = pd.read_parquet(path)
    x, y = frame.drop(columns="target").to_numpy(np.float32), frame["target"].to_numpy()
    del frame
    if algorithm == "xgboost":
        xgb.XGBClassifier(**xgb_params(size, threads), random_state=SEED).fit(x, y)
    else:
        RandomForestClassifier(**rf_params(size), random_state=SEED).fit(x, y)
    return time.perf_counter() - started, peak_rss_mb(os.getpid())


def direct(path: Path, algorithm: str, size: int, threads: int | None = None) -> tuple[float, float | None]:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(direct_fit, path, algorithm, size, threads).result()


def children_of(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out.extend(int(child) for child in (task / "children").read_text().split())
    return out


class WorkerMemory:
    """Samples the peak RSS of the server's worker processes while a call runs (they exit after
    their job, so their own high-water mark is read while they live)."""

    def __init__(self, server: int | None) -> None:
        self.server = server
        self.peak_mb = 0.0

    async def watch(self) -> None:
        while self.server is not None:
            for child in children_of(self.server):
                try:
                    self.peak_mb = max(self.peak_mb, peak_rss_mb(child) or 0.0)
                except OSError:
                    continue
            await anyio.sleep(0.1)


def server_pid() -> int | None:
    """The `python -m mcp_server` child of this process (Linux /proc)."""
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"mcp_server" in cmdline:
                return int(pid)
    return None


def peak_rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


async def call_ok(session: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result_text(result)}")
    return structured(result)


async def cancel_latency(session: Any, tool: str, arguments: dict[str, Any], word: str) -> float:
    """Start `tool` with wait false, cancel it once its progress says `word`; seconds to `cancelled`."""
    started = await call_ok(session, tool, {**arguments, "wait": False})
    job_id = started["job_id"]
    while True:
        polled = await call_ok(session, "get_training_metrics", {"job_id": job_id})
        if word in (polled["progress"]["message"] or ""):
            break
        if polled["status"] not in ("queued", "running"):
            raise RuntimeError(f"{tool} ended ({polled['status']}) before it could be cancelled")
        await anyio.sleep(0.05)
    asked = time.perf_counter()
    await call_ok(session, "cancel_training_job", {"job_id": job_id, "wait_seconds": 30})
    while (await call_ok(session, "get_training_metrics", {"job_id": job_id}))["status"] != "cancelled":
        await anyio.sleep(0.02)
    return time.perf_counter() - asked


CASE_OF = {"xgboost": "xgboost", "random_forest": "forest"}


def chosen_cases(text: str) -> set[str]:
    cases = set(text.split(","))
    return (cases - {"large"}) | ({"xgboost", "forest"} if "large" in cases else set())


def load_average() -> float:
    return os.getloadavg()[0]


async def through_server(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = {"MLOPS_STORAGE_ROOT": str(root), "LOG_LEVEL": "WARNING", "MLOPS_MAX_WAIT_SECONDS": "3600"}
    cases = chosen_cases(args.cases)
    out: dict[str, Any] = {"loads": []}
    async with connect(env) as session:
        await session.list_tools()  # as a client does first: the spare worker starts now
        pid = server_pid()
        out["rss_idle_mb"] = peak_rss_mb(pid)
        # The first training call imports scikit-learn, XGBoost and skops (the direct runs import
        # them before their clock starts): warm up on a small file, and report that cost apart.
        started = time.perf_counter()
        for tool, hyperparameters in (("train_xgboost", xgb_params(2)), ("train_random_forest", rf_params(2))):
            result = await session.call_tool(
                tool,
                {
                    "train_data_s3_uri": "small.parquet",
                    "target_column": "target",
                    "model_output_s3_uri": f"models/warmup-{tool}",
                    "hyperparameters": hyperparameters,
                },
            )
            if result.is_error:
                raise RuntimeError(f"{tool} failed: {result_text(result)}")
        out["warmup"] = time.perf_counter() - started
        for name, tool, hyperparameters in (
            ("xgboost", "train_xgboost", xgb_params(args.rounds, args.xgb_threads)),
            ("random_forest", "train_random_forest", rf_params(args.trees)),
        ):
            if CASE_OF[name] not in cases:
                continue
            threads = args.xgb_threads if name == "xgboost" else None
            out[f"{name}_direct"] = direct(root / "data.parquet", name, int(hyperparameters["n_estimators"]), threads)
            out["loads"].append(load_average())
            memory = WorkerMemory(pid)
            async with anyio.create_task_group() as group:
                group.start_soon(memory.watch)
                await anyio.sleep(1.0)  # the spare worker is ready: time the job, not a cold start
                started = time.perf_counter()
                data = await call_ok(
                    session,
                    tool,
                    {
                        "train_data_s3_uri": "data.parquet",
                        "target_column": "target",
                        "model_output_s3_uri": f"models/{name}",
                        "random_state": SEED,
                        "hyperparameters": hyperparameters,
                    },
                )
                out[name] = time.perf_counter() - started
                group.cancel_scope.cancel()
            out[f"{name}_train_seconds"] = data["training_seconds"]
            out[f"{name}_timings"] = data["timings"]
            out[f"{name}_accuracy"] = data["metrics"]["train"]["accuracy"]
            out[f"rss_after_{name}_mb"] = peak_rss_mb(pid)
            out[f"worker_rss_{name}_mb"] = memory.peak_mb
            out["loads"].append(load_average())
        small, small_direct, small_timings = [], [], []
        for i in range(args.repeat if "small" in cases else 0):
            small_direct.append(direct(root / "small-case.parquet", "xgboost", args.small_rounds, args.xgb_threads)[0])
            out["loads"].append(load_average())
            await anyio.sleep(1.0)  # let the next spare worker finish starting, as between real calls
            started = time.perf_counter()
            data = await call_ok(
                session,
                "train_xgboost",
                {
                    "train_data_s3_uri": "small-case.parquet",
                    "target_column": "target",
                    "model_output_s3_uri": f"models/small-{i}",
                    "random_state": SEED,
                    "hyperparameters": xgb_params(args.small_rounds, args.xgb_threads),
                },
            )
            small.append(time.perf_counter() - started)
            small_timings.append({**data["timings"], "outside the fit": round(small[-1] - data["training_seconds"], 3)})
            out["loads"].append(load_average())
        out["small"], out["small_direct"], out["small_timings"] = small, small_direct, small_timings
        if "cancel" not in cases:
            return out
        base = {"train_data_s3_uri": "data.parquet", "random_state": SEED}
        out["cancel"] = {
            "random forest (300 trees)": await cancel_latency(
                session,
                "train_random_forest",
                {
                    **base,
                    "target_column": "target",
                    "model_output_s3_uri": "models/c-rf",
                    "hyperparameters": {"n_estimators": 300, "n_jobs": -1},
                },
                "trees",
            ),
            "t-SNE (5000 rows)": await cancel_latency(
                session,
                "train_tsne",
                {**base, "model_output_s3_uri": "models/c-tsne", "max_rows": 5000},
                "embedding",
            ),
            "DBSCAN (30000 rows)": await cancel_latency(
                session,
                "train_dbscan",
                {"train_data_s3_uri": "dbscan.parquet", "model_output_s3_uri": "models/c-db", "eps": 2.0},
                "clustering",
            ),
        }
        out["loads"].append(load_average())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--small-rows", type=int, default=200_000)
    parser.add_argument("--small-rounds", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="large,small,cancel", help="comma-separated: xgboost, forest, small, cancel")
    # On a loaded machine XGBoost's OpenMP threads wait on each other (1 s fits take 20-50 s):
    # one thread a side still compares the two sides fairly there.
    parser.add_argument("--xgb-threads", type=int, default=None, help="XGBoost n_jobs on both sides (default: all)")
    args = parser.parse_args()
    cases = chosen_cases(args.cases)
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp)
        data_bytes = 0
        if cases & {"xgboost", "forest", "cancel"}:
            data_bytes = make_data(root / "data.parquet", args.rows, args.features)
            print(f"data: {args.rows} rows x {args.features} features, {data_bytes / 1024**2:.0f} MB in memory")
        make_data(root / "small.parquet", 1000, args.features)
        make_data(root / "small-case.parquet", args.small_rows, args.features)
        make_data(root / "dbscan.parquet", 30_000, args.features)
        served = anyio.run(through_server, root, args)
    loads = served["loads"]
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}")
    print(f"first training calls (imports, 2 tiny fits): {served['warmup']:.2f} s")
    failed = False
    for name, label in (
        ("xgboost", f"XGBoost hist, {args.rounds} rounds"),
        ("random_forest", f"random forest, {args.trees} trees, depth 10"),
    ):
        if CASE_OF[name] not in cases:
            continue
        direct_seconds, direct_rss = served[f"{name}_direct"]
        ratio = served[name] / direct_seconds
        failed |= ratio > RATIO_TARGET
        print(
            f"{label}: server {served[name]:.2f} s (fit job {served[f'{name}_train_seconds']:.2f} s), "
            f"direct {direct_seconds:.2f} s, ratio {ratio:.2f} (target <= {RATIO_TARGET}); "
            f"train accuracy {served[f'{name}_accuracy']:.3f}; direct peak RSS {direct_rss:.0f} MB"
        )
        print(f"    server phases (s): {served[f'{name}_timings']}")
    for name in ("xgboost", "random_forest"):
        if CASE_OF[name] in cases:
            print(
                f"{name}: server peak RSS idle {served['rss_idle_mb']:.0f} MB, after the fit "
                f"{served[f'rss_after_{name}_mb']:.0f} MB; worker peak RSS {served[f'worker_rss_{name}_mb']:.0f} MB; "
                f"data in memory {data_bytes / 1024**2:.0f} MB"
            )
    if "small" in cases:
        server_small, direct_small = statistics.median(served["small"]), statistics.median(served["small_direct"])
        fixed = server_small - direct_small
        failed |= fixed > FIXED_COST_TARGET
        print(
            f"small case, XGBoost {args.small_rounds} rounds on {args.small_rows} rows (medians of {args.repeat}): "
            f"server {server_small:.2f} s, direct {direct_small:.2f} s, ratio {server_small / direct_small:.2f}, "
            f"fixed cost {fixed:.2f} s (target <= {FIXED_COST_TARGET})"
        )
        for server_seconds, direct_seconds, timings in zip(
            served["small"], served["small_direct"], served["small_timings"], strict=True
        ):
            print(f"    server {server_seconds:.2f} s, direct {direct_seconds:.2f} s; server phases (s): {timings}")
    for name, seconds in served.get("cancel", {}).items():
        failed |= seconds > CANCEL_TARGET
        print(f"cancel latency, {name}: {seconds:.2f} s (target <= {CANCEL_TARGET})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
