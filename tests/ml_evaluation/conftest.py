"""Bundles trained once per session (small scikit-learn / XGBoost models) in one storage root."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_server.common.s3_utils import S3Utils
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.ml_evaluation.builders import Trained, build_all


@pytest.fixture(scope="session")
def eval_config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    root = tmp_path_factory.mktemp("eval-storage")
    return Config.from_env({"MLOPS_STORAGE_ROOT": str(root)})


@pytest.fixture(scope="session")
def trained(eval_config: Config) -> dict[str, Trained]:
    return build_all(S3Utils(eval_config))


@pytest.fixture
def eval_router(eval_config: Config, trained: dict[str, Trained]) -> ToolRouter:
    return make_router(eval_config)


@pytest.fixture
def eval_root(eval_config: Config) -> Path:
    return Path(eval_config.storage_root)
