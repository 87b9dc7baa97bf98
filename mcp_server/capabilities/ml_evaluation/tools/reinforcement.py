"""evaluate_reinforcement: run a stored policy greedily for N seeded episodes.

The policy is rebuilt from its safetensors weights and network.json (hashes verified, NumPy
forward pass, nothing unpickled), on the environment it was trained on (its spec is in the bundle)
or on one given. A `normalize_observation` wrapper uses the statistics learnt in training, frozen
(fresh running statistics would feed the policy observations it was never trained on). The same
seed gives the same episodes and numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation.jobs import finish, run_evaluation
from mcp_server.capabilities.ml_evaluation.schemas import EvaluateReinforcementInput, EvaluateReinforcementOutput
from mcp_server.common import bundles
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.jobs import Job
from mcp_server.common.rl_env import env_spec_for, make_env

TOOL = "evaluate_reinforcement"


def _check(ctx: ToolContext, params: EvaluateReinforcementInput) -> dict[str, Any] | None:
    """What fails at once: no bundle, a bundle that is no policy, an unknown environment or spec.
    Returns the environment spec given in the call (None: the bundle's own)."""
    loc, metadata = bundles.read_metadata(ctx.storage, params.model_s3_uri, "model_s3_uri")
    _require_policy(loc.uri, metadata)
    if params.environment or params.env_spec_s3_uri:
        return env_spec_for(ctx.storage, params.environment, params.env_spec_s3_uri)
    return None


def _require_policy(uri: str, metadata: dict[str, Any]) -> None:
    if metadata.get("family") != "policy":
        raise InvalidInputError(
            f"{uri} is a {metadata.get('algorithm')} model, not an RL policy",
            field="model_s3_uri",
            hint="Use evaluate_classifier, evaluate_regressor or evaluate_clustering for it.",
        )


def run_episodes(
    policy: Any, spec: dict[str, Any], n_episodes: int, seed: int, check: Callable[[int], None]
) -> tuple[list[float], list[int]]:
    """Run `n_episodes` greedy episodes; `check(episodes_done)` is called before each one (it may
    raise to stop)."""
    env = make_env(spec, observation_stats=getattr(policy, "observation_stats", None))
    try:
        shape = int(np.prod(env.observation_space.shape or (0,)))
        if shape != int(np.prod(policy.observation_shape)):
            raise InvalidInputError(
                f"{spec['environment']} gives observations of size {shape}; the policy expects "
                f"{int(np.prod(policy.observation_shape))}",
                field="environment",
                hint="Evaluate on the environment (and wrappers) the policy was trained on.",
            )
        returns: list[float] = []
        lengths: list[int] = []
        env.action_space.seed(seed)
        for episode in range(n_episodes):
            check(episode)
            obs, _ = env.reset(seed=seed + episode)
            total, steps, done = 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(policy.act(obs))
                total += float(reward)
                steps += 1
                done = bool(terminated or truncated)
            returns.append(round(total, 6))
            lengths.append(steps)
    finally:
        env.close()
    return returns, lengths


def _work(
    job: Job, ctx: ToolContext, params: EvaluateReinforcementInput, given: dict[str, Any] | None
) -> dict[str, Any]:
    steps = params.n_episodes + 2  # the bundle, each episode, saving
    job.report(0, steps, "reading the policy bundle")
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri")
    _require_policy(bundle.uri, bundle.metadata)  # the bundle may have changed since the check
    spec = given or dict(bundle.metadata["env_spec"])
    threshold = params.success_threshold
    if threshold is None:
        threshold = spec.get("reward_threshold")

    def episode_done(done: int) -> None:
        job.check_cancelled()
        job.report(done + 1, steps, f"{done} of {params.n_episodes} episodes run")

    returns, lengths = run_episodes(bundle.model, spec, params.n_episodes, params.random_state, episode_done)
    values = np.asarray(returns, dtype=float)
    metrics = {
        "episode_return_mean": float(values.mean()),
        "episode_return_std": float(values.std()),
        "episode_length_mean": float(np.mean(lengths)),
        "success_rate": None if threshold is None else float((values >= threshold).mean()),
    }
    result = {
        "model_s3_uri": bundle.uri,
        "algorithm": bundle.metadata.get("algorithm"),
        "environment": spec["environment"],
        "n_episodes": params.n_episodes,
        "random_state": params.random_state,
        "success_threshold": threshold,
        "metrics": metrics,
        "returns": returns,
        "lengths": lengths,
    }
    return finish(job, ctx, EvaluateReinforcementOutput, result, bundle.uri if params.save_result else None, steps)


def _summary(result: dict[str, Any]) -> str:
    metrics = result["metrics"]
    return (
        f"{TOOL}: {result['algorithm']} on {result['environment']}, {result['n_episodes']} episodes: "
        f"return {metrics['episode_return_mean']:.1f} ± {metrics['episode_return_std']:.1f}"
    )


async def evaluate_reinforcement(ctx: ToolContext, params: EvaluateReinforcementInput) -> ToolOutput:
    return await run_evaluation(
        ctx,
        TOOL,
        params,
        EvaluateReinforcementOutput,
        lambda: _check(ctx, params),
        lambda job, given: _work(job, ctx, params, given),
        _summary,
        {"model_s3_uri": params.model_s3_uri, "environment": params.environment},
    )
