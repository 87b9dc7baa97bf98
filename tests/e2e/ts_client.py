"""Drive the server with the official TypeScript SDK client (tests/e2e/ts/client.mjs).

The node project is installed by `.ci/setup` (`npm ci` in tests/e2e/ts); tests skip only when
node itself is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TS_DIR = Path(__file__).resolve().parent / "ts"
REPO = TS_DIR.parents[2]


def node_path() -> str | None:
    return shutil.which("node")


def run_ts_client(command: str, env: Mapping[str, str], plan: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `node client.mjs COMMAND` against a freshly spawned server; its JSON output."""
    node = node_path()
    if node is None:
        raise RuntimeError("node is not installed")
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        raise RuntimeError(f"the TypeScript client is not installed: run `npm ci` in {TS_DIR} (bash .ci/setup does)")
    full_env = {
        **os.environ,
        "MLOPS_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    with tempfile.TemporaryDirectory(prefix="ts-plan-") as tmp:
        args = [node, str(TS_DIR / "client.mjs"), command]
        if plan is not None:
            plan_path = Path(tmp) / "plan.json"
            plan_path.write_text(json.dumps(plan))
            args.append(str(plan_path))
        done = subprocess.run(args, env=full_env, capture_output=True, text=True, timeout=600, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"client.mjs {command} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout))
