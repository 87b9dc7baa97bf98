"""End-to-end demo: spawn `python -m mcp_server` on local storage and run an ML workflow through
the official MCP client, printing each step. No AWS needed.

    python -m demo [--storage DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from mcp.client.session import ClientSession

from demo import data_preparation, evaluation, pipeline, registry, reinforcement, training
from mcp_server.client import connect, result_text, structured


class Demo:
    """Calls tools, prints a line per step, and stops at the first error."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.step = 0

    async def call(self, tool: str, show: tuple[str, ...] = (), **arguments: Any) -> dict[str, Any]:
        self.step += 1
        started = time.perf_counter()
        result = await self.session.call_tool(tool, arguments)
        seconds = time.perf_counter() - started
        if result.is_error:
            print(f"[{self.step:2d}] {tool} FAILED: {result_text(result)}")
            raise SystemExit(1)
        data = structured(result)
        shown = {k: data[k] for k in show if k in data}
        print(f"[{self.step:2d}] {tool} ({seconds:.2f}s) {json.dumps(shown, default=str)}")
        return data


def make_raw_dataset(root: Path) -> str:
    """A realistic raw CSV: scikit-learn's breast-cancer data plus a categorical column and gaps."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    rng = np.random.default_rng(0)
    frame["clinic"] = rng.choice(["north", "south", "east"], size=len(frame))
    frame.loc[rng.choice(len(frame), 20, replace=False), "mean_radius"] = np.nan
    path = root / "raw" / "breast_cancer.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return "raw/breast_cancer.csv"


async def run(storage: Path) -> None:
    storage.mkdir(parents=True, exist_ok=True)
    raw_uri = make_raw_dataset(storage)
    loopback = pipeline.LoopbackServices()
    env = {"MLOPS_STORAGE_ROOT": str(storage), "LOG_LEVEL": "WARNING", **loopback.env()}
    try:
        await _run(storage, raw_uri, env, loopback)
    finally:
        loopback.close()


async def _run(storage: Path, raw_uri: str, env: dict[str, str], loopback: pipeline.LoopbackServices) -> None:
    async with connect(env) as session:
        tools = await session.list_tools()
        print(f"Server is up with {len(tools.tools)} tools; storage: {storage}")
        demo = Demo(session)
        uris = await data_preparation.run(demo, storage, raw_uri)
        print(f"Prepared data: train {uris['train_uri']}, test {uris['test_uri']}")
        models = await training.run(demo, uris)
        print(f"Trained: {', '.join(models['model_uris'])}")
        evaluated = await evaluation.run(demo, uris, models)
        print(f"Best model: {evaluated['best_model_uri']}; report: {evaluated['report_uri']}")
        registered = await registry.run(demo, evaluated["best_model_uri"])
        print(f"Registered {registered['model_name']}: production version {registered['production_version']}")
        rl = await reinforcement.run(demo)
        print(f"Trained and evaluated an RL policy: {rl['policy_uri']}")
        ran = await pipeline.run(demo, loopback)
        print(f"Pipeline {ran['run_id']}: registered {ran['registered']}, issue labels {ran['labels']}")
    print(f"\nDone: {demo.step} tool calls succeeded. Artifacts are under {storage}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", type=Path, help="local storage root (default: a fresh temp dir)")
    args = parser.parse_args()
    storage = args.storage or Path(tempfile.mkdtemp(prefix="mlops-demo-"))
    anyio.run(run, storage.resolve())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
