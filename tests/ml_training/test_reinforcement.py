"""RL training through the router on a real local Ray: PPO, DQN and A3C learn CartPole-v1 (judged
against a random policy on the same seeds), policies are bundled without pickle, jobs can be
polled and cancelled, and bad calls fail before any job starts.

Budgets are CI-sized: one Ray for the whole module, each algorithm trained once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest

from mcp_server.config import Config
from mcp_server.router import ToolRouter
from tests.conftest import make_router
from tests.helpers import call, call_error, poll_job, router_caller

pytestmark = pytest.mark.slow


def random_policy_returns(environment: str, n_episodes: int, seed: int) -> list[float]:
    """Returns of uniformly random actions on the seeds evaluate_reinforcement uses."""
    import gymnasium

    env = gymnasium.make(environment)
    env.action_space.seed(seed)
    returns = []
    for episode in range(n_episodes):
        env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return returns


RANDOM_MEAN = float(np.mean(random_policy_returns("CartPole-v1", 20, 0)))


@pytest.fixture(scope="module")
def rl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rl-storage")


@pytest.fixture(scope="module")
def rl_router(rl_root: Path) -> Iterator[ToolRouter]:
    from mcp_server.capabilities.ml_training.rl.ray_runtime import shutdown_ray

    config = Config.from_env({"MLOPS_STORAGE_ROOT": str(rl_root), "MLOPS_RAY_NUM_CPUS": "2", "LOG_LEVEL": "WARNING"})
    try:
        yield make_router(config)
    finally:
        shutdown_ray()


async def train(router: ToolRouter, tool: str, out: str, **args: Any) -> dict[str, Any]:
    return await call(
        router, tool, environment="CartPole-v1", model_output_s3_uri=out, random_state=0, max_wait_seconds=900, **args
    )


async def evaluate(router: ToolRouter, model: str, **args: Any) -> dict[str, Any]:
    return await call(router, "evaluate_reinforcement", model_s3_uri=model, **{"n_episodes": 20, **args})


# Trained once per module, in a loop of their own (nothing in the router is bound to a loop).
@pytest.fixture(scope="module")
def ppo(rl_router: ToolRouter) -> dict[str, Any]:
    return anyio.run(lambda: train(rl_router, "train_ppo", "models/ppo", stop={"max_timesteps": 16000}, num_workers=1))


@pytest.fixture(scope="module")
def a3c(rl_router: ToolRouter) -> dict[str, Any]:
    return anyio.run(lambda: train(rl_router, "train_a3c", "models/a3c", stop={"max_timesteps": 24000}, num_workers=2))


# ---------------------------------------------------------------------------- learning
async def test_ppo_beats_a_random_policy_on_cartpole(rl_router: ToolRouter, ppo: dict[str, Any]) -> None:
    assert ppo["status"] == "succeeded"
    assert ppo["stopped_by"] == "max_timesteps"
    assert ppo["metrics"]["timesteps"] >= 16000
    assert [h["iteration"] for h in ppo["history"]] == list(range(1, len(ppo["history"]) + 1))
    result = await evaluate(rl_router, "models/ppo")
    assert result["metrics"]["episode_return_mean"] >= 3 * RANDOM_MEAN, (result["metrics"], RANDOM_MEAN)


async def test_a3c_learns_cartpole_with_asynchronous_updates(rl_router: ToolRouter, a3c: dict[str, Any]) -> None:
    stats = a3c["async_stats"]
    assert stats["workers"] == 2
    assert stats["updates"] == sum(stats["updates_per_worker"])
    assert all(n > 0 for n in stats["updates_per_worker"])
    # Without a barrier, a worker's gradient is often applied after the other worker's: stale by >= 1.
    assert stats["max_staleness"] >= 1 and stats["mean_staleness"] > 0
    result = await evaluate(rl_router, "models/a3c")
    assert result["metrics"]["episode_return_mean"] >= 3 * RANDOM_MEAN, (result["metrics"], RANDOM_MEAN)


async def test_dqn_beats_a_random_policy_on_cartpole(rl_router: ToolRouter, rl_root: Path) -> None:
    out = await train(rl_router, "train_dqn", "models/dqn", stop={"max_timesteps": 8000})
    assert out["stopped_by"] == "max_timesteps" and out["metrics"]["timesteps"] >= 8000
    import json

    network = json.loads((rl_root / "models" / "dqn" / "network.json").read_text())
    assert network["output"] == "q_values" and network["layers"][-1]["weight"].startswith("af.")
    result = await evaluate(rl_router, "models/dqn")
    assert result["metrics"]["episode_return_mean"] >= 3 * RANDOM_MEAN, (result["metrics"], RANDOM_MEAN)


# ---------------------------------------------------------------------------- bundle and evaluation
async def test_policy_bundle_holds_safetensors_and_json_only(rl_root: Path, ppo: dict[str, Any]) -> None:
    folder = rl_root / "models" / "ppo"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    files = ["env_spec.json", "network.json", "optimizer.json", "optimizer.safetensors", "policy.safetensors"]
    assert names == sorted([*files, "metadata.json"])  # no obs_norm.safetensors: nothing normalised
    import json

    meta = json.loads((folder / "metadata.json").read_text())
    assert set(meta["artifacts"]) == set(files)
    assert meta["family"] == "policy" and meta["algorithm"] == "ppo"
    assert meta["env_spec"]["environment"] == "CartPole-v1"


async def test_evaluation_is_repeatable_with_the_same_seed(rl_router: ToolRouter, ppo: dict[str, Any]) -> None:
    first = await evaluate(rl_router, "models/ppo", random_state=7, n_episodes=5)
    again = await evaluate(rl_router, "models/ppo", random_state=7, n_episodes=5)
    assert first["returns"] == again["returns"] and first["metrics"] == again["metrics"]
    assert len(first["returns"]) == 5 and first["success_threshold"] == 475.0
    assert first["metrics"]["success_rate"] == np.mean(np.asarray(first["returns"]) >= 475.0)


async def test_tampered_policy_is_refused_by_its_hash(
    rl_router: ToolRouter, rl_root: Path, a3c: dict[str, Any]
) -> None:
    import shutil

    shutil.copytree(rl_root / "models" / "a3c", rl_root / "models" / "a3c-tampered")
    weights = rl_root / "models" / "a3c-tampered" / "policy.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    text = await call_error(rl_router, "evaluate_reinforcement", model_s3_uri="models/a3c-tampered")
    assert "policy.safetensors" in text and "sha256" in text


async def test_reward_curve_plots_the_training_history_and_an_evaluation(
    rl_router: ToolRouter, ppo: dict[str, Any]
) -> None:
    plain = await call(rl_router, "visualization", model_s3_uri="models/ppo", plot_type="reward_curve")
    assert plain["bytes"] > 1000 and plain["image_s3_uri"].endswith("reward_curve.png")
    evaluation = await evaluate(rl_router, "models/ppo", n_episodes=3)
    both = await call(
        rl_router,
        "visualization",
        model_s3_uri="models/ppo",
        plot_type="reward_curve",
        evaluation_s3_uri=evaluation["evaluation_s3_uri"],
        output_s3_uri="plots/with-evaluation.png",
    )
    assert both["sha256"] != plain["sha256"]


# ---------------------------------------------------------------------------- jobs
async def poll(router: ToolRouter, job_id: str, until: set[str], timeout: float = 300) -> dict[str, Any]:
    return await poll_job(router_caller(router), job_id, until, timeout, interval=0.2)


async def test_wait_false_job_on_an_env_spec_runs_its_wrappers_in_the_workers(rl_router: ToolRouter) -> None:
    spec = await call(
        rl_router,
        "preprocess_reinforcement",
        environment="CartPole-v1",
        wrappers=[{"type": "time_limit", "max_episode_steps": 40}],
        output_s3_uri="specs/cartpole-40.json",
    )
    out = await call(
        rl_router,
        "train_a3c",
        env_spec_s3_uri=spec["env_spec_s3_uri"],
        model_output_s3_uri="models/a3c-job",
        stop={"max_iterations": 3},
        hyperparameters={"train_batch_size": 1000},
        random_state=0,
        wait=False,
    )
    assert out["status"] in ("queued", "running") and out["model_s3_uri"] is None
    final = await poll(rl_router, out["job_id"], {"succeeded", "failed", "cancelled"})
    assert final["status"] == "succeeded", final
    assert [h["iteration"] for h in final["history"]] == [1, 2, 3]
    assert final["result"]["stopped_by"] == "max_iterations"
    recorded = await call(rl_router, "get_training_metrics", model_s3_uri="models/a3c-job")
    assert recorded["metrics"]["timesteps"] == final["result"]["metrics"]["timesteps"]
    # The time limit of the spec cut every episode the workers ran at 40 steps (the bundle keeps
    # each iteration's full record).
    assert max(h["episode_return_max"] for h in recorded["history"]) <= 40
    evaluation = await evaluate(rl_router, "models/a3c-job", n_episodes=3)
    assert max(evaluation["lengths"]) <= 40


def returns_by_hand(folder: Path, env: Any, n_episodes: int, seed: int, normalize: Any) -> list[float]:
    """Greedy episodes of a stored policy (NumPy forward pass written here), observations passed
    through `normalize`, on the seeds evaluate_reinforcement uses."""
    import json

    from safetensors.numpy import load_file

    network = json.loads((folder / "network.json").read_text())
    weights = load_file(str(folder / "policy.safetensors"))
    act = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0), None: lambda x: x}
    returns = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            x = normalize(obs)
            for layer in network["layers"]:
                x = act[layer["activation"]](weights[layer["weight"]] @ x + weights[layer["bias"]])
            obs, reward, terminated, truncated, _ = env.step(int(np.argmax(x)))
            total += float(reward)
            done = terminated or truncated
        returns.append(round(total, 6))
    return returns


async def test_observation_statistics_are_stored_and_applied_frozen(rl_router: ToolRouter, rl_root: Path) -> None:
    import gymnasium
    from safetensors.numpy import load_file

    spec = await call(
        rl_router,
        "preprocess_reinforcement",
        environment="CartPole-v1",
        wrappers=[{"type": "normalize_observation"}],
        output_s3_uri="specs/cartpole-normalized.json",
    )
    await call(
        rl_router,
        "train_ppo",
        env_spec_s3_uri=spec["env_spec_s3_uri"],
        model_output_s3_uri="models/ppo-norm",
        stop={"max_iterations": 4},
        hyperparameters={"train_batch_size": 1000},
        num_workers=1,
        random_state=0,
    )
    folder = rl_root / "models" / "ppo-norm"
    stats = load_file(str(folder / "obs_norm.safetensors"))
    assert float(stats["count"]) >= 4000 and stats["mean"].shape == (4,) and (stats["var"] > 0).all()
    evaluated = (await evaluate(rl_router, "models/ppo-norm", n_episodes=8, random_state=3))["returns"]

    def frozen(obs: Any) -> Any:  # what the env runners' wrapper computed, with the learnt statistics
        return np.float32((obs - stats["mean"]) / np.sqrt(stats["var"] + 1e-8))

    env = gymnasium.make("CartPole-v1")
    assert evaluated == returns_by_hand(folder, env, 8, 3, frozen)
    assert evaluated != returns_by_hand(folder, env, 8, 3, lambda obs: obs)  # statistics dropped
    fresh = gymnasium.wrappers.NormalizeObservation(gymnasium.make("CartPole-v1"))  # statistics started afresh
    assert evaluated != returns_by_hand(folder, fresh, 8, 3, lambda obs: obs)
    assert len(set(evaluated)) > 1, evaluated  # the policy acts on what it observes

    # A resumed training runs on the stored statistics, frozen: its bundle carries them unchanged.
    await call(
        rl_router,
        "train_ppo",
        resume_from="models/ppo-norm",
        model_output_s3_uri="models/ppo-norm-resumed",
        stop={"max_iterations": 1},
        num_workers=1,
        random_state=1,
    )
    again = load_file(str(rl_root / "models" / "ppo-norm-resumed" / "obs_norm.safetensors"))
    assert all(np.array_equal(again[k], stats[k]) for k in ("mean", "var", "count"))


async def test_ppo_acts_in_a_continuous_action_space(rl_router: ToolRouter) -> None:
    out = await call(
        rl_router,
        "train_ppo",
        environment="Pendulum-v1",
        model_output_s3_uri="models/ppo-pendulum",
        stop={"max_iterations": 1},
        hyperparameters={"train_batch_size": 400, "batch_size": 100, "num_epochs": 1},
        num_workers=0,
        random_state=0,
    )
    assert out["metrics"]["timesteps"] >= 400
    loaded = await call(rl_router, "load_model", model_s3_uri="models/ppo-pendulum")
    assert loaded["family"] == "policy" and loaded["model_class"] == "Policy"
    result = await evaluate(rl_router, "models/ppo-pendulum", n_episodes=2)
    assert result["lengths"] == [200, 200] and result["metrics"]["success_rate"] is None


async def _cluster_cpus_free() -> bool:
    import ray

    return ray.available_resources().get("CPU", 0.0) == ray.cluster_resources().get("CPU", -1.0)


@pytest.mark.parametrize("tool", ["train_ppo", "train_a3c"])
async def test_cancel_stops_the_run_within_two_seconds(rl_router: ToolRouter, rl_root: Path, tool: str) -> None:
    out_dir = f"models/cancelled-{tool}"
    quick = {"train_batch_size": 500} | ({"batch_size": 100} if tool == "train_ppo" else {})  # a first iteration soon
    out = await train(rl_router, tool, out_dir, stop={"max_seconds": 600}, hyperparameters=quick, wait=False)
    running = await poll(rl_router, out["job_id"], {"running"})
    deadline = time.monotonic() + 120
    while not running["history"]:  # mid-run: at least one iteration done
        assert time.monotonic() < deadline
        await anyio.sleep(0.2)
        running = await call(rl_router, "get_training_metrics", job_id=out["job_id"])
    started = time.monotonic()
    cancelled = await call(rl_router, "cancel_training_job", job_id=out["job_id"], wait_seconds=10)
    assert cancelled["status"] == "cancelled"
    assert time.monotonic() - started < 2.5
    assert not (rl_root / out_dir / "metadata.json").exists()
    deadline = time.monotonic() + 20
    while not await _cluster_cpus_free():  # the env runners / workers are gone, their CPUs free
        assert time.monotonic() < deadline, "actors of the cancelled run are still holding CPUs"
        await anyio.sleep(0.2)


def live_drivers() -> dict[int, str]:
    """Driver pid -> Ray job id of every Ray job still running on the server's Ray."""
    from ray._private import state

    return {int(j["DriverPid"]): j["JobID"] for j in state.jobs() if not j.get("IsDead")}


async def test_a_killed_driver_fails_its_job_and_ray_ends_its_actors(rl_router: ToolRouter, rl_root: Path) -> None:
    import os
    import signal

    quick = {"train_batch_size": 500, "batch_size": 100}
    out = await train(
        rl_router, "train_ppo", "models/killed", stop={"max_seconds": 600}, hyperparameters=quick, wait=False
    )
    running = await poll(rl_router, out["job_id"], {"running"})
    deadline = time.monotonic() + 120
    while not running["history"]:  # mid-run: the env runner has sampled and the learner trained
        assert time.monotonic() < deadline
        await anyio.sleep(0.2)
        running = await call(rl_router, "get_training_metrics", job_id=out["job_id"])
    job = rl_router.services.jobs.get(out["job_id"])
    assert job is not None
    worker = int(job.info["worker_pid"])
    # The driver of the run is the job's worker process, not the server (which is a driver of its own).
    assert worker != os.getpid() and worker in live_drivers() and os.getpid() in live_drivers()
    assert not await _cluster_cpus_free()  # the env runner holds its CPU
    os.kill(worker, signal.SIGKILL)
    final = await poll(rl_router, out["job_id"], {"succeeded", "failed", "cancelled"}, timeout=30)
    assert final["status"] == "failed" and "killed by SIGKILL" in str(final["error"]), final
    assert not (rl_root / "models" / "killed" / "metadata.json").exists()
    deadline = time.monotonic() + 20
    while not await _cluster_cpus_free() or worker in live_drivers():
        assert time.monotonic() < deadline, "the killed driver's Ray job or its env runner outlived it"
        await anyio.sleep(0.2)


def stored_optimizer(folder: Path) -> Any:
    import json

    from safetensors.numpy import load_file

    from mcp_server.common.policy_models import unpack_state

    layout = json.loads((folder / "optimizer.json").read_text())
    return unpack_state(layout, load_file(str(folder / "optimizer.safetensors")))


def adam_steps(folder: Path) -> set[float]:
    """The Adam step counts stored in a bundle's optimizer state (one per parameter tensor)."""
    found: set[float] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "step":
                    found.add(float(np.asarray(item)))
                else:
                    walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(stored_optimizer(folder))
    return found


async def test_ppo_resumes_from_its_bundle(rl_router: ToolRouter, rl_root: Path, ppo: dict[str, Any]) -> None:
    out = await call(
        rl_router,
        "train_ppo",
        resume_from="models/ppo",
        model_output_s3_uri="models/ppo-resumed",
        stop={"max_iterations": 1},
        num_workers=0,
        random_state=1,
    )
    # A fresh network samples returns near a random policy's; the resumed one keeps what it learnt.
    assert out["history"][0]["episode_return_mean"] >= 2 * RANDOM_MEAN, out["history"]
    # Adam went on counting from the stored state: a fresh optimizer would have counted only this
    # one iteration's steps (an eighth of the stored run's).
    stored, resumed = adam_steps(rl_root / "models" / "ppo"), adam_steps(rl_root / "models" / "ppo-resumed")
    assert min(resumed) > max(stored) > 0, (stored, resumed)


async def test_a3c_resumes_with_its_adam_state(rl_router: ToolRouter, rl_root: Path, a3c: dict[str, Any]) -> None:
    out = await call(
        rl_router,
        "train_a3c",
        resume_from="models/a3c",
        model_output_s3_uri="models/a3c-resumed",
        stop={"max_iterations": 1},
        num_workers=2,
        random_state=1,
    )
    stored, resumed = adam_steps(rl_root / "models" / "a3c"), adam_steps(rl_root / "models" / "a3c-resumed")
    # One Adam step per applied gradient, counted on from the stored state.
    assert stored == {float(a3c["async_stats"]["updates"])}
    assert resumed == {float(a3c["async_stats"]["updates"] + out["async_stats"]["updates"])}
    assert out["history"][0]["episode_return_mean"] >= 2 * RANDOM_MEAN, out["history"]


# ---------------------------------------------------------------------------- bad calls
@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("train_ppo", {"environment": "CartPol-v1"}, "unknown Gymnasium environment 'CartPol-v1'"),
        ("train_ppo", {"environment": "LunarLander-v3"}, "Box2D"),
        ("train_ppo", {"environment": "ALE/Pong-v5"}, "ale-py"),
        ("train_dqn", {"environment": "Pendulum-v1"}, "DQN needs a discrete action space"),
        ("train_a3c", {"environment": "Pendulum-v1"}, "A3C needs a discrete action space"),
        ("train_ppo", {"environment": "CartPole-v1", "hyperparameters": {"lr": 0.1}}, "hyperparameters.lr"),
        (
            "train_ppo",
            {"environment": "CartPole-v1", "hyperparameters": {"batch_size": 4000}},
            "batch_size (the SGD minibatch) must not exceed train_batch_size",
        ),
        ("train_dqn", {"environment": "CartPole-v1", "hyperparameters": {"gamma": 1.5}}, "hyperparameters.gamma"),
        ("train_a3c", {"environment": "CartPole-v1", "num_workers": 8}, "num_workers"),
        ("train_ppo", {}, "environment"),
    ],
)
async def test_bad_calls_fail_clearly_before_any_job(
    router: ToolRouter, tool: str, args: dict[str, Any], expected: str
) -> None:
    config_router = make_router(
        Config.from_env({"MLOPS_STORAGE_ROOT": str(router.config.storage_root), "MLOPS_RAY_NUM_CPUS": "2"})
    )
    text = await call_error(config_router, tool, model_output_s3_uri="models/bad", **args)
    assert expected in text, text


async def test_evaluate_refuses_a_non_policy_bundle(router: ToolRouter, storage_root: Path) -> None:
    import pandas as pd

    (storage_root / "d.csv").write_text(pd.DataFrame({"x": [0, 1, 2, 3] * 5, "y": [0, 1] * 10}).to_csv(index=False))
    await call(
        router, "train_random_forest", train_data_s3_uri="d.csv", target_column="y", model_output_s3_uri="models/rf"
    )
    text = await call_error(router, "evaluate_reinforcement", model_s3_uri="models/rf")
    assert "not an RL policy" in text
