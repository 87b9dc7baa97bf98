"""GitHub test fixtures: a loopback GitHub REST server with one repository, and a router whose
PyGithub client points at it (token from the environment, pacing off, Secrets Manager on moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.github_integration.loopback_github import LoopbackGitHub

REPO = "octo-org/ml-models"
WEBHOOK_SECRET = "loopback-webhook-secret"


@pytest.fixture
def secrets_manager() -> Iterator[Any]:
    """moto's Secrets Manager (empty unless a test adds secrets): lookups fall back to the env."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def github() -> Iterator[LoopbackGitHub]:
    with LoopbackGitHub(read_only_token="ghp_" + "ReadOnlyLoopbackToken000000000000000") as gh:
        gh.add_repo(REPO, files={"README.md": "# ML models\n", "configs/train.yaml": "algorithm: xgboost\n"})
        yield gh


def github_config(github: LoopbackGitHub, storage_root: Path, **extra: str) -> Config:
    env = {
        **github.env(),
        "MLOPS_STORAGE_ROOT": str(storage_root),
        "MLOPS_CAPABILITIES": "github_integration",
        "MLOPS_ALLOWED_BUCKETS": "mlops-test-bucket",  # the bucket the issue bodies of these tests name
        **extra,
    }
    env.pop("GITHUB_TOKEN")
    return Config.from_env(env)


@pytest.fixture
def gh_router(
    github: LoopbackGitHub, storage_root: Path, secrets_manager: Any, monkeypatch: pytest.MonkeyPatch
) -> ToolRouter:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return make_router(github_config(github, storage_root))
