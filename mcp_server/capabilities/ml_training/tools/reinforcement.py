"""train_ppo, train_dqn and train_a3c: reinforcement learning on Ray, written as policy bundles.

The tool functions check everything they can before a job exists (environment, spaces, extras,
hyperparameters, resume bundle). When the job starts, `connect_ray` (the trainers' setup, in the
server) starts or joins the server's one Ray; the fit then runs in the job's worker process like
every other fit, as a Ray driver of its own connected to that Ray (`connect_driver`): the RLlib
learner or the A3C driver runs there, its env runners and actors in Ray's workers. A cancel or a
killed worker ends the driver's process, and Ray ends its actors with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_server.capabilities.ml_training.data import resolve_seed
from mcp_server.capabilities.ml_training.rl.common import STOP_REASONS, RLRun, RunControl, StartState, StopRule
from mcp_server.capabilities.ml_training.schemas import (
    A3CHyperparameters,
    DQNHyperparameters,
    PPOHyperparameters,
    RLTrainInput,
    TrainA3CInput,
    TrainDQNInput,
    TrainPPOInput,
)
from mcp_server.common.bundles import library_versions, read_bundle, write_bundle
from mcp_server.common.exceptions import InvalidInputError, MLOpsError
from mcp_server.common.jobs import Job
from mcp_server.common.rl_env import env_spec_for
from mcp_server.common.s3_utils import Location, S3Utils, json_bytes
from mcp_server.config import Config

if TYPE_CHECKING:
    from mcp_server.capabilities.ml_training.rl.ray_runtime import RayHandle

ENV_SPEC_FILE = "env_spec.json"
HISTORY_LIMIT = 50
_HP_MODELS: dict[str, type[Any]] = {"ppo": PPOHyperparameters, "dqn": DQNHyperparameters, "a3c": A3CHyperparameters}
_ATARI_HINT = (
    "Atari environments need the ale-py extra, which this server does not install; use CartPole-v1 or Acrobot-v1."
)


@dataclass
class RLPlan:
    """Everything a fit needs, checked up front."""

    algorithm: str
    spec: dict[str, Any]
    hp: Any
    stop: StopRule
    num_workers: int
    seed: int
    start: StartState
    resumed_from: str | None = None


def _environment_spec(storage: S3Utils, params: RLTrainInput) -> dict[str, Any]:
    env_id = params.environment or ""
    if env_id.startswith("ALE/"):
        import importlib.util

        if importlib.util.find_spec("ale_py") is None:
            raise InvalidInputError(
                f"{env_id} needs ale-py, which is not installed", field="environment", hint=_ATARI_HINT
            )
    return env_spec_for(storage, params.environment, params.env_spec_s3_uri)


def _check_spaces(algorithm: str, spec: dict[str, Any], field: str) -> None:
    obs, action = spec.get("observation_space") or {}, spec.get("action_space") or {}
    if obs.get("type") != "Box":
        raise InvalidInputError(
            f"{spec['environment']} has a {obs.get('type')} observation space; the RL trainers need a Box (vector) one",
            field=field,
        )
    if action.get("type") not in ("Discrete", "Box"):
        raise InvalidInputError(
            f"{spec['environment']} has a {action.get('type')} action space; supported: Discrete, Box", field=field
        )
    if algorithm in ("dqn", "a3c") and action["type"] != "Discrete":
        raise InvalidInputError(
            f"{algorithm.upper()} needs a discrete action space and {spec['environment']} has a continuous (Box) one",
            field=field,
            hint="Use train_ppo for continuous actions (e.g. Pendulum-v1).",
        )


def _check_workers(config: Config, num_workers: int) -> None:
    """Each worker (env runner) takes one CPU of the server's own Ray: more could never start."""
    cpus = config.ray_num_cpus or os.cpu_count() or 1
    if config.ray_address is None and num_workers > cpus:
        raise InvalidInputError(
            f"num_workers={num_workers} needs {num_workers} CPUs and the server's Ray has {cpus} (MLOPS_RAY_NUM_CPUS)",
            field="num_workers",
            hint=f"Use at most {cpus} workers.",
        )


def plan_run(storage: S3Utils, algorithm: str, params: RLTrainInput) -> RLPlan:
    """Check the call and gather what the fit needs (no job exists yet, so errors are immediate)."""
    resume_uri = getattr(params, "resume_from", None)
    hp_given = getattr(params, "hyperparameters", None)
    start = StartState()
    if resume_uri:
        bundle = read_bundle(storage, resume_uri, "resume_from")
        meta = bundle.metadata
        if meta.get("family") != "policy" or meta.get("algorithm") != algorithm:
            raise InvalidInputError(
                f"{bundle.uri} is a {meta.get('algorithm')} model, not a {algorithm} policy", field="resume_from"
            )
        if hp_given is not None:
            raise InvalidInputError(
                "a resumed training reuses the bundle's hyperparameters", field="hyperparameters", hint="Leave it out."
            )
        spec = dict(meta.get("env_spec") or {})
        if params.environment or params.env_spec_s3_uri:
            given = _environment_spec(storage, params)
            if given.get("environment") != spec.get("environment") or given.get("wrappers") != spec.get("wrappers"):
                raise InvalidInputError(
                    f"the bundle was trained on {spec.get('environment')} with other settings", field="environment"
                )
        hp = _HP_MODELS[algorithm].model_validate(meta.get("hyperparameters") or {})
        policy = bundle.model
        start = StartState(policy.tensors, policy.optimizer_state, policy.observation_stats)
    else:
        spec = _environment_spec(storage, params)
        hp = hp_given or _HP_MODELS[algorithm]()
    _check_spaces(algorithm, spec, "env_spec_s3_uri" if params.env_spec_s3_uri else "environment")
    num_workers = int(getattr(params, "num_workers", 1))
    _check_workers(storage.config, num_workers)
    return RLPlan(
        algorithm=algorithm,
        spec=spec,
        hp=hp,
        stop=StopRule.from_params(params.stop, spec.get("reward_threshold")),
        num_workers=num_workers,
        seed=resolve_seed(params.random_state),
        start=start,
        resumed_from=resume_uri,
    )


# The trainers' prepare steps (tools/common.py): everything checked before a job exists.
def prepare_ppo(storage: S3Utils, params: TrainPPOInput, model_loc: Location) -> tuple[RLPlan]:
    return (plan_run(storage, "ppo", params),)


def prepare_dqn(storage: S3Utils, params: TrainDQNInput, model_loc: Location) -> tuple[RLPlan]:
    return (plan_run(storage, "dqn", params),)


def prepare_a3c(storage: S3Utils, params: TrainA3CInput, model_loc: Location) -> tuple[RLPlan]:
    return (plan_run(storage, "a3c", params),)


# ---------------------------------------------------------------------------- the job
def thin_history(history: list[dict[str, Any]], limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """At most `limit` entries, evenly spread, always with the first, the best and the last."""
    if len(history) <= limit:
        return list(history)
    best = max(range(len(history)), key=lambda i: history[i].get("episode_return_mean") or float("-inf"))
    step = (len(history) - 1) / (limit - 2)
    keep = {round(i * step) for i in range(limit - 1)} | {0, best, len(history) - 1}
    while len(keep) > limit:
        keep.discard(next(i for i in sorted(keep) if i not in (0, best, len(history) - 1)))
    return [history[i] for i in sorted(keep)]


def connect_ray(job: Job, storage: S3Utils) -> tuple[RayHandle]:
    """The RL trainers' setup, in the server: start (or join) the server's Ray before the fit's
    worker gets the job, and hand the worker the handle it connects with."""
    from mcp_server.capabilities.ml_training.rl.ray_runtime import ensure_ray

    job.report(0, None, "starting Ray")
    return (ensure_ray(storage.config),)


def _run_engine(job: Job, plan: RLPlan, ray: RayHandle) -> tuple[RLRun, str]:
    from mcp_server.capabilities.ml_training.rl.ray_runtime import connect_driver

    job.report(0, plan.stop.max_timesteps, "connecting to Ray")
    connect_driver(ray)
    job.mark("ray")
    job.check_cancelled()

    def on_iteration(entry: dict[str, Any]) -> None:
        small = {k: entry[k] for k in ("iteration", "timesteps", "episode_return_mean", "seconds")}
        job.add_history(small)
        ret = entry["episode_return_mean"]
        shown = "n/a" if ret is None else f"{ret:.1f}"
        job.report(entry["timesteps"], plan.stop.max_timesteps, f"iteration {entry['iteration']}: return {shown}")

    control = RunControl(plan.num_workers, plan.seed, plan.stop, job.check_cancelled, on_iteration)
    if plan.algorithm == "a3c":
        from mcp_server.capabilities.ml_training.rl.a3c import train_a3c as run_a3c

        return run_a3c(plan.spec, plan.hp, control, plan.start), ray.address
    from mcp_server.capabilities.ml_training.rl.rllib import train_rllib

    return train_rllib(plan.algorithm, plan.spec, plan.hp, control, plan.start), ray.address


def fit_rl(
    job: Job, storage: S3Utils, params: RLTrainInput, model_loc: Location, plan: RLPlan, ray: RayHandle
) -> dict[str, Any]:
    """Runs in the job's worker process (a Ray driver of its own)."""
    from mcp_server.common.policy_models import PolicyArtifacts

    run, ray_address = _run_engine(job, plan, ray)
    job.mark("fit")
    normalized = any(w.get("type") == "normalize_observation" for w in plan.spec.get("wrappers") or [])
    if normalized and run.observation_stats is None:
        # A policy without the statistics it was trained on would be evaluated on other inputs.
        raise MLOpsError("the observation statistics could not be read from the env runners; nothing was published")
    returns = [h["episode_return_mean"] for h in run.history if h["episode_return_mean"] is not None]
    metrics = {
        "episode_return_mean": returns[-1] if returns else None,
        "best_episode_return_mean": max(returns) if returns else None,
        "timesteps": float(run.timesteps),
        "iterations": float(run.iterations),
    }
    meta = {
        "algorithm": plan.algorithm,
        "task_type": "reinforcement_learning",
        "environment": plan.spec["environment"],
        "env_spec": plan.spec,
        "hyperparameters": plan.hp.model_dump(),
        "metrics": metrics,
        "history": run.history,
        "stopped_by": run.stopped_by,
        "stop": plan.stop.as_dict(),
        "num_workers": plan.num_workers,
        "random_state": plan.seed,
        "resumed_from": plan.resumed_from,
        "feature_names": [],
        "job_id": job.job_id,
        "library_versions": library_versions("ray", "gymnasium", "torch"),
        **({"async_stats": run.extra["async_stats"]} if "async_stats" in run.extra else {}),
    }
    final = write_bundle(
        storage,
        model_loc,
        PolicyArtifacts(run.network, run.tensors, run.observation_stats, run.optimizer_state),
        "policy",
        meta,
        extra_files={ENV_SPEC_FILE: json_bytes(plan.spec)},
        check_cancelled=job.begin_publish,  # the commit point: no kill past it
    )
    job.mark("write")
    assert run.stopped_by in STOP_REASONS
    return {
        "model_s3_uri": final["model_s3_uri"],
        "algorithm": plan.algorithm,
        "environment": plan.spec["environment"],
        "metrics": metrics,
        "history": thin_history(run.history),
        "history_total": len(run.history),
        "stopped_by": run.stopped_by,
        "random_state": plan.seed,
        "ray_address": ray_address,
        **run.extra,
    }
