"""Benchmark: server cold start, and load_dataset through the server vs pandas directly.

    .venv/bin/python bench/bench_startup_and_load.py [--spawns 5] [--rows 1000000] [--repeats 7]

1. Cold start: spawn `python -m mcp_server`, send initialize + tools/list as raw JSON-RPC lines,
   and time until the tools/list answer arrives (median of --spawns spawns). Target < 1.5 s, and
   at most 1.5x a bare `mcp` low-level server (bench/bare_server.py) timed the same way in the
   same run, spawns alternating so both see the same machine load.
2. Load: a generated Parquet file of --rows rows; `load_dataset` called through a real stdio
   client (median of --repeats warm calls) vs `pd.read_parquet` on the same file in this
   process (median of --repeats, alternating with the calls). Target: ratio < 1.2.

Exits 1 when a target is missed, so it can gate a CI job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mcp_server.client import connect, result_text, server_env, structured  # noqa: E402

COLD_START_TARGET = 1.5
BARE_RATIO_TARGET = 1.5
RATIO_TARGET = 1.2
SERVER = ["-m", "mcp_server"]
BARE = [str(REPO / "bench" / "bare_server.py")]


def cold_start_once(storage_root: Path, args: list[str] = SERVER) -> float:
    """Seconds from spawn until the tools/list response line is read."""
    env = {**server_env({"MLOPS_STORAGE_ROOT": str(storage_root)}), "PATH": os.environ.get("PATH", "")}
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    # Written at once: the server reads them as soon as its transport is up.
    proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
    proc.stdin.flush()
    elapsed = None
    for line in proc.stdout:
        if json.loads(line).get("id") == 2:
            elapsed = time.perf_counter() - started
            break
    proc.stdin.close()
    proc.wait(timeout=30)
    if elapsed is None:
        raise RuntimeError("the server never answered tools/list")
    return elapsed


def make_parquet(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "f0": rng.normal(size=rows),
            "f1": rng.normal(size=rows),
            "f2": rng.uniform(size=rows),
            "f3": np.where(rng.uniform(size=rows) < 0.01, np.nan, rng.normal(size=rows)),
            "count": rng.integers(0, 1000, size=rows),
            "label": rng.choice(["alpha", "beta", "gamma", "delta"], size=rows),
        }
    )
    frame.to_parquet(path, index=False)


async def timed_loads(storage_root: Path, key: str, repeats: int, rows: int) -> tuple[list[float], list[float]]:
    """Alternate a direct `pd.read_parquet` with a `load_dataset` call, so that both sides see the
    same machine load (other processes on a shared machine swing single timings a lot)."""
    path = storage_root / key
    direct: list[float] = []
    through: list[float] = []
    async with connect({"MLOPS_STORAGE_ROOT": str(storage_root), "LOG_LEVEL": "WARNING"}) as session:
        await session.list_tools()
        pd.read_parquet(path)  # warm the page cache and pyarrow's first-use costs on both sides
        warm = await session.call_tool("load_dataset", {"s3_uri": key})
        if warm.is_error or structured(warm).get("rows") != rows:
            raise RuntimeError(f"load_dataset failed: {result_text(warm)}")
        for _ in range(repeats):
            started = time.perf_counter()
            frame = pd.read_parquet(path)
            direct.append(time.perf_counter() - started)
            del frame
            started = time.perf_counter()
            result = await session.call_tool("load_dataset", {"s3_uri": key})
            through.append(time.perf_counter() - started)
            assert not result.is_error
    return direct, through


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spawns", type=int, default=5, help="cold starts to time (median reported)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated Parquet file")
    parser.add_argument("--repeats", type=int, default=7, help="timed loads per side (median reported)")
    parser.add_argument("--startup-only", action="store_true", help="time the cold start only")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp:
        root = Path(tmp) / "storage"
        root.mkdir()
        cold_start_once(root)  # warm the file system cache for both
        cold_start_once(root, BARE)
        starts: list[float] = []
        bare_starts: list[float] = []
        for _ in range(args.spawns):
            bare_starts.append(cold_start_once(root, BARE))
            starts.append(cold_start_once(root))
        cold, bare = statistics.median(starts), statistics.median(bare_starts)
        cold_ok, bare_ok = cold < COLD_START_TARGET, cold / bare <= BARE_RATIO_TARGET
        print(f"cold start to tools/list, median of {args.spawns} spawns each, alternating:")
        print(f"  bare mcp low-level server:  {bare:.3f} s (min {min(bare_starts):.3f} s)")
        print(f"  this server:                {cold:.3f} s (min {min(starts):.3f} s)")
        print(f"  target < {COLD_START_TARGET} s: {verdict(cold_ok)}")
        print(f"  ratio {cold / bare:.2f}, target <= {BARE_RATIO_TARGET}: {verdict(bare_ok)}")
        if args.startup_only:
            return 0 if cold_ok and bare_ok else 1

        data = root / "bench" / "data.parquet"
        data.parent.mkdir()
        make_parquet(data, args.rows)
        direct_times, through_times = anyio.run(timed_loads, root, "bench/data.parquet", args.repeats, args.rows)
        direct, through = statistics.median(direct_times), statistics.median(through_times)
        size_mb = data.stat().st_size / 1024**2

    ratio = through / direct
    ratio_ok = ratio < RATIO_TARGET
    print(f"load {args.rows:,} rows ({size_mb:.1f} MB Parquet):")
    print(f"  pd.read_parquet directly:     median {direct * 1000:.1f} ms of {args.repeats}")
    print(f"  load_dataset through server:  median {through * 1000:.1f} ms of {args.repeats}")
    print(f"  ratio {ratio:.2f}, target < {RATIO_TARGET}: {verdict(ratio_ok)}")
    return 0 if cold_ok and bare_ok and ratio_ok else 1


if __name__ == "__main__":
    sys.exit(main())
