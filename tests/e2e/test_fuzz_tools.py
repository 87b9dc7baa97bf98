"""Every tool called with inputs generated from its own inputSchema (hypothesis-jsonschema), over
the real stdio server: each call must end in a result or a clear `isError`, never a crash, a
protocol error, a non-JSON line on stdout or a configured secret in the text.

Generic over `tools/list`, so tools added later are fuzzed too. Long tools run with
`wait: false` and their jobs are cancelled at once; outbound capabilities point at a closed
loopback port. About ten examples per tool under one overall deadline.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from mcp_server.client import server_env
from mcp_server.config import Config
from mcp_server.server import UnifiedMLOpsMCPServer
from tests.e2e.test_server_stdio import RawServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EXAMPLES_PER_TOOL = 10
DEADLINE_SECONDS = 240.0  # for the whole module; about a minute on a developer machine
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: outbound calls fail at once, locally
# Configured secrets the fuzzed calls must never echo; every destination they name is loopback.
SECRETS = {
    "GITHUB_TOKEN": "ghp_" + "F4zzS3cr3tT0kenValue0123456789abcd",
    "SLACK_WEBHOOK_URL": CLOSED_PORT + "/services/T0/B0/" + "fuzzsecretvalue",
    "SLACK_BOT_TOKEN": "xoxb-" + "000000000000-fuzzsecret",
    "TEAMS_WEBHOOK_URL": CLOSED_PORT + "/workflows/" + "fuzzteamssecret",
    "DISCORD_WEBHOOK_URL": CLOSED_PORT + "/api/webhooks/1/" + "fuzzdiscordsecret",
    "SMTP_PASSWORD": "fuzz-" + "smtp-password-value",
    "GITHUB_WEBHOOK_SECRET": "fuzz-" + "webhook-secret-value",
    "MLOPS_HTTP_TOKEN": "fuzz-" + "http-token-value-123",
}


def _tool_names() -> list[str]:
    # Collected from the server's own table, so every tool (also ones added later) is fuzzed.
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(Path(os.environ.get("TMPDIR", "/tmp")) / "mlops-fuzz-list")})
    return UnifiedMLOpsMCPServer(config).router.tool_names


def _seed_storage(root: Path) -> None:
    """A dataset and a model bundle the generated calls are pointed at half of the time, so the
    fuzz reaches past "does not exist" into the tools' real work."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    from mcp_server.common.bundles import write_bundle
    from mcp_server.common.s3_utils import S3Utils

    storage = S3Utils(Config.from_env({"MLOPS_STORAGE_ROOT": str(root)}))
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "label": [0, 1] * 30})
    storage.write_dataframe(frame, storage.resolve("data/seed.csv"))
    storage.write_dataframe(frame, storage.resolve("data/seed.parquet"))
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(frame[["a", "b"]], frame["label"])
    meta = {"algorithm": "random_forest", "task_type": "classification", "feature_names": ["a", "b"]}
    write_bundle(
        storage, storage.resolve("models/seed"), model, "sklearn", {**meta, "target_column": "label", "classes": [0, 1]}
    )


# Outputs aimed where no tool may write for a caller: a server-owned prefix, the inside of a bundle.
FORBIDDEN_OUTPUTS = {4: "registry/fuzz-planted", 5: "models/seed/fuzz-planted"}


def _planted(tool: str, arguments: dict[str, Any], plant: int) -> dict[str, Any]:
    """`arguments` with its URIs (and target) pointed at the seeded objects when `plant` says so."""
    if not plant:
        return arguments
    out = dict(arguments)
    for name, value in arguments.items():
        if name == "model_s3_uris" and isinstance(value, list):
            out[name] = ["models/seed"] * max(1, len(value))
        elif not (name.endswith("_uri") or name == "output_prefix") or not isinstance(value, str):
            continue
        elif "output" in name:
            base = FORBIDDEN_OUTPUTS.get(plant, "out")
            out[name] = f"{base}/{tool}-{plant}" + (
                "" if name in ("model_output_s3_uri", "output_prefix") else ".parquet"
            )
        elif "model" in name:
            out[name] = "models/seed"
        else:
            out[name] = "data/seed.parquet" if plant % 2 else "data/seed.csv"
    if "target_column" in arguments:
        out["target_column"] = "label"
    return out


class FuzzServer:
    def __init__(self, root: Path) -> None:
        _seed_storage(root)
        self.root = root
        env = {
            **server_env(
                {
                    "MLOPS_STORAGE_ROOT": str(root),
                    "AWS_ENDPOINT_URL": CLOSED_PORT,  # Secrets Manager look-ups fail fast, locally
                    "MLOPS_MAX_WAIT_SECONDS": "0",
                    "MLOPS_MAX_DATASET_MB": "64",
                    "GITHUB_API_URL": CLOSED_PORT,
                    "SLACK_API_URL": CLOSED_PORT + "/api/",
                    "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": "9",
                    "MLOPS_OUTBOUND_ALLOW": f"{CLOSED_PORT},smtp://127.0.0.1:9",
                    **SECRETS,
                }
            ),
            "PATH": os.environ.get("PATH", ""),
        }
        self.raw = RawServer(env)
        self.next_id = 0
        self.started = time.monotonic()
        init = self.request(
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "0"}},
        )
        assert init["result"]["serverInfo"]["name"] == "unified-mlops"
        self.raw.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        tools = self.request("tools/list")["result"]["tools"]
        self.schemas: dict[str, dict[str, Any]] = {t["name"]: t["inputSchema"] for t in tools}

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        return self.raw.request(self.next_id, method, params)

    def check_call(self, tool: str, arguments: dict[str, Any]) -> None:
        assert time.monotonic() - self.started < DEADLINE_SECONDS, "the fuzz pass is over its deadline"
        if "wait" in self.schemas[tool].get("properties", {}):
            arguments = {**arguments, "wait": False}
        answer = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert "error" not in answer, f"{tool}: protocol error {answer['error']} for {arguments!r}"
        result = answer["result"]
        text = "\n".join(c.get("text", "") for c in result["content"] if c.get("type") == "text")
        assert isinstance(result.get("isError", False), bool)
        for secret in SECRETS.values():
            assert secret not in json.dumps(result), f"{tool} leaked a configured secret"
        if result.get("isError"):
            assert text.strip(), f"{tool}: an error without a message"
            assert "Traceback" not in text and "unexpectedly" not in text, f"{tool}: {text[:500]} for {arguments!r}"
        for forbidden in FORBIDDEN_OUTPUTS.values():
            assert not (self.root / forbidden).exists(), f"{tool} wrote into {forbidden} for {arguments!r}"
        job_id = (result.get("structuredContent") or {}).get("job_id")
        if job_id and "cancel_training_job" in self.schemas:
            self.request(
                "tools/call", {"name": "cancel_training_job", "arguments": {"job_id": job_id, "wait_seconds": 0}}
            )


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    server = FuzzServer(tmp_path_factory.mktemp("fuzz-storage"))
    yield server
    server.raw.close()


@pytest.mark.parametrize("tool", _tool_names())
def test_fuzz_every_tool_with_inputs_from_its_own_schema(fuzz_server: FuzzServer, tool: str) -> None:
    @settings(
        max_examples=EXAMPLES_PER_TOOL,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(arguments=from_schema(fuzz_server.schemas[tool]), plant=st.integers(0, 5))
    def call(arguments: dict[str, Any], plant: int) -> None:
        fuzz_server.check_call(tool, _planted(tool, arguments, plant))

    call()


def test_fuzz_left_the_server_serving_with_only_json_rpc_on_stdout(fuzz_server: FuzzServer) -> None:
    assert fuzz_server.raw.proc.poll() is None, "the server died during the fuzz pass"
    assert fuzz_server.request("tools/list")["result"]["tools"]
    for line in fuzz_server.raw.stdout_lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    for line in fuzz_server.raw.stderr_lines:
        for secret in SECRETS.values():
            assert secret not in line, "a configured secret reached the log"
