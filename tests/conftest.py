"""Shared fixtures: local storage, moto S3 and Secrets Manager, tool contexts, and a way to call
tools through the router exactly as the MCP server does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Keep tests hermetic: no real AWS credentials or endpoints can leak in.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "MLOPS_S3_BUCKET"):
    os.environ.pop(_var, None)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("RLLIB_TEST_NO_TF_IMPORT", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from mcp_server.capabilities.base import ToolContext  # noqa: E402
from mcp_server.config import Config  # noqa: E402
from mcp_server.router import ToolRouter  # noqa: E402
from mcp_server.server import UnifiedMLOpsMCPServer  # noqa: E402

BUCKET = "mlops-test-bucket"


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    root = tmp_path / "storage"
    root.mkdir()
    return root


@pytest.fixture
def local_config(storage_root: Path) -> Config:
    return Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root)})


@pytest.fixture
def aws() -> Iterator[Any]:
    """moto's in-process AWS with one bucket; yields the boto3 S3 client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@contextmanager
def threaded_moto_server() -> Iterator[str]:
    """moto's AWS over real HTTP on 127.0.0.1, for spawned servers and other processes; yields
    the endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def http_s3_client(endpoint: str, key: str = "testing") -> Any:
    """A boto3 S3 client for a `threaded_moto_server` endpoint."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=key
    )


@pytest.fixture
def s3_config(aws: Any, storage_root: Path) -> Config:
    return Config.from_env({"MLOPS_S3_BUCKET": BUCKET, "MLOPS_STORAGE_ROOT": str(storage_root)})


@pytest.fixture(params=["local", "s3"])
def any_config(request: pytest.FixtureRequest) -> Config:
    """Runs a test once on local storage and once on a moto bucket."""
    name = "local_config" if request.param == "local" else "s3_config"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def make_router(config: Config) -> ToolRouter:
    return UnifiedMLOpsMCPServer(config).router


@pytest.fixture
def router(local_config: Config) -> ToolRouter:
    return make_router(local_config)


@pytest.fixture
def any_router(any_config: Config) -> ToolRouter:
    return make_router(any_config)


@pytest.fixture
def ctx(router: ToolRouter) -> ToolContext:
    """A tool context on local storage, for calling tool functions directly."""
    return router.make_context()


@pytest.fixture(autouse=True)
def _results_match_their_output_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tool result any test produces is checked against the tool's listed `outputSchema`.

    The TypeScript SDK (Claude Desktop, VS Code, Cursor, the Inspector) validates structured
    content on success and error results alike; a mismatch would hide the result from its user.
    """
    import jsonschema

    original = ToolRouter.call

    async def checked(self: ToolRouter, name: str, arguments: Any = None, progress_sender: Any = None) -> Any:
        result = await original(self, name, arguments, progress_sender)
        schema = next((tool.output_schema for tool in self.list_tools() if tool.name == name), None)
        if result.is_error:
            assert result.structured_content is None, f"{name}: an error result carries structured content"
        elif schema is not None:
            assert result.structured_content is not None, f"{name}: no structured content"
            jsonschema.Draft202012Validator(schema).validate(result.structured_content)
        return result

    monkeypatch.setattr(ToolRouter, "call", checked)
