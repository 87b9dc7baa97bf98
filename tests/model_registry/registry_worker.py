"""A second (and third) server process for the cross-process registry tests.

    python -m tests.model_registry.registry_worker MODEL BUNDLE_URI COUNT

Builds the server's router from the environment (the same bucket or storage root as the test),
prints `ready` and waits for a line on stdin (the test sends it once every process is ready, so
they start together), registers COUNT versions concurrently, then promotes each of them to
production concurrently, and prints the results as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from mcp_server.client import result_text, structured
from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer


async def main(model: str, bundle_uri: str, count: int) -> dict[str, Any]:
    router = UnifiedMLOpsMCPServer(Config.from_env()).router

    async def call(tool: str, **arguments: Any) -> dict[str, Any]:
        result = await router.call(tool, arguments)
        if result.is_error:
            raise SystemExit(f"{tool} failed: {result_text(result)}")
        return structured(result)

    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    registered = await asyncio.gather(
        *(call("register_model", model_name=model, model_s3_uri=bundle_uri) for _ in range(count))
    )
    versions = [r["version"] for r in registered]
    promoted = await asyncio.gather(
        *(call("update_model_status", model_name=model, version=v, status="production") for v in versions)
    )
    return {"versions": versions, "promotions": promoted}


if __name__ == "__main__":
    name, uri, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(main(name, uri, n))))
