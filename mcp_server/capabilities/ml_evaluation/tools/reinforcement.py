"""evaluate_reinforcement: run a stored policy greedily for N seeded episodes.

The policy is rebuilt from its safetensors weights and network.json (hashes verified, NumPy
forward pass, nothing unpickled), on the environment it was trained on (its spec is in the bundle)
or on one given. A `normalize_observation` wrapper uses the statistics learnt in training, frozen
(fresh running statistics would feed the policy observations it was never trained on). The same
seed gives the same episodes and numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.ml_evaluation import engine as ev
from mcp_server.capabilities.ml_evaluation.schemas import EvaluateReinforcementInput, EvaluateReinforcementOutput
from mcp_server.common import bundles
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.rl_env import env_spec_for, make_env

TOOL = "evaluate_reinforcement"


def _spec(ctx: ToolContext, params: EvaluateReinforcementInput, bundle: bundles.Bundle) -> dict[str, Any]:
    if params.environment or params.env_spec_s3_uri:
        return env_spec_for(ctx.storage, params.environment, params.env_spec_s3_uri)
    return dict(bundle.metadata["env_spec"])


def run_episodes(
    policy: Any, spec: dict[str, Any], n_episodes: int, seed: int, check: Any
) -> tuple[list[float], list[int]]:
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
            check()
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


def evaluate_reinforcement(ctx: ToolContext, params: EvaluateReinforcementInput) -> ToolOutput:
    bundle = bundles.read_bundle(ctx.storage, params.model_s3_uri, "model_s3_uri")
    if bundle.family != "policy":
        raise InvalidInputError(
            f"{bundle.uri} is a {bundle.metadata.get('algorithm')} model, not an RL policy",
            field="model_s3_uri",
            hint="Use evaluate_classifier, evaluate_regressor or evaluate_clustering for it.",
        )
    spec = _spec(ctx, params, bundle)
    threshold = params.success_threshold
    if threshold is None:
        threshold = spec.get("reward_threshold")
    returns, lengths = run_episodes(bundle.model, spec, params.n_episodes, params.random_state, ctx.check_cancelled)
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
    data = EvaluateReinforcementOutput.model_validate(result)
    artifacts = []
    if params.save_result:
        uri = ev.save_evaluation(ctx.storage, bundle.uri, TOOL, data.model_dump(mode="json"))
        data = EvaluateReinforcementOutput.model_validate({**result, "evaluation_s3_uri": uri})
        artifacts.append(Artifact(uri=uri, name=uri.rsplit("/", 1)[-1], mime_type="application/json"))
    summary = (
        f"{TOOL}: {result['algorithm']} on {spec['environment']}, {params.n_episodes} episodes: "
        f"return {metrics['episode_return_mean']:.1f} ± {metrics['episode_return_std']:.1f}"
    )
    return ToolOutput(data=data, artifacts=artifacts, summary=summary)
