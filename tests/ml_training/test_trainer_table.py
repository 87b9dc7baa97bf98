"""Trainers are data: every row names functions that exist, and becomes one tool."""

from __future__ import annotations

import inspect
from pathlib import Path

from mcp_server.capabilities.base import import_tool_function
from mcp_server.capabilities.ml_training.capability import TRAINERS
from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router


def test_every_trainer_names_a_fit_and_prepare_that_import() -> None:
    for trainer in TRAINERS:
        fit = import_tool_function(trainer.fit)
        assert list(inspect.signature(fit).parameters)[:4] == ["job", "storage", "params", "model_loc"], trainer.name
        if trainer.prepare:
            prepare = import_tool_function(trainer.prepare)
            assert list(inspect.signature(prepare).parameters) == ["storage", "params", "model_loc"], trainer.name


def test_each_trainer_row_is_one_tool_with_its_models(router: ToolRouter) -> None:
    for trainer in TRAINERS:
        spec = router.spec(trainer.name)
        assert (spec.input_model, spec.output_model) == (trainer.input_model, trainer.output_model)
        assert spec.description.endswith(f"A job; progress per {trainer.unit}.")
        assert spec.destructive and not spec.read_only


def test_worker_trainers_name_their_fit_module_for_the_fork_server(router: ToolRouter) -> None:
    # The fork server imports these once, so a job does not import its fit module (and models).
    # RL fits (heavy `preload`: RLlib) are not: a spare worker imports theirs after an RL job.
    expected = {t.fit.partition(":")[0] for t in TRAINERS if not t.preload}
    assert set(router.worker_modules()) == expected
    assert "mcp_server.capabilities.ml_training.tools.supervised" in expected
    assert "mcp_server.capabilities.ml_training.tools.reinforcement" not in expected
    for trainer in TRAINERS:
        assert bool(router.spec(trainer.name).worker_modules) == (not trainer.preload), trainer.name


def test_a_read_only_server_names_no_worker_modules(storage_root: Path) -> None:
    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(storage_root), "MLOPS_READ_ONLY": "1"})
    assert make_router(config).worker_modules() == []


async def test_a_prepare_check_fails_before_any_job_exists(router: ToolRouter) -> None:
    result = await router.call(
        "train_kmeans",
        {"train_data_s3_uri": "d.parquet", "model_output_s3_uri": "m/k", "min_clusters": 5, "max_clusters": 3},
    )
    assert result.is_error and "min_clusters" in result.content[0].text  # type: ignore[union-attr]
    assert router.services._jobs is None or not router.services.jobs._jobs  # no job was ever submitted


def test_rl_trainers_connect_their_worker_to_the_servers_ray() -> None:
    # Every fit runs in a worker process; the RL ones get the server's Ray handle from a setup
    # that runs in the server, and name a setup function that exists.
    with_setup = {trainer.name for trainer in TRAINERS if trainer.setup}
    assert with_setup == {"train_ppo", "train_dqn", "train_a3c"}
    for trainer in TRAINERS:
        if trainer.setup:
            setup = import_tool_function(trainer.setup)
            assert list(inspect.signature(setup).parameters) == ["job", "storage"], trainer.name
