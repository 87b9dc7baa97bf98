"""preprocess_reinforcement: validate a Gymnasium environment and its wrappers, save the spec."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import (
    PreprocessReinforcementInput,
    PreprocessReinforcementOutput,
)
from mcp_server.common.rl_env import build_env_spec
from mcp_server.common.s3_utils import json_bytes


def preprocess_reinforcement(ctx: ToolContext, params: PreprocessReinforcementInput) -> ToolOutput:
    wrappers = [w.model_dump() for w in params.wrappers]
    spec = build_env_spec(params.environment, wrappers, params.env_kwargs)
    if params.output_s3_uri:
        out_loc = ctx.storage.resolve_output(params.output_s3_uri, "output_s3_uri")
    else:
        name = _default_name(params.environment, wrappers, params.env_kwargs)
        out_loc = ctx.storage.resolve(f"env_specs/{name}", "environment")
    ctx.check_cancelled()
    ctx.storage.write_bytes(out_loc, json_bytes(spec), "application/json")
    data = PreprocessReinforcementOutput(
        env_spec_s3_uri=out_loc.uri,
        environment=spec["environment"],
        wrappers=spec["wrappers"],
        observation_space=spec["observation_space"],
        action_space=spec["action_space"],
        max_episode_steps=spec["max_episode_steps"],
        reward_threshold=spec["reward_threshold"],
    )
    return ToolOutput(
        data=data,
        artifacts=[Artifact(out_loc.uri, out_loc.name, "application/json", "Gymnasium environment spec")],
        summary=f"{params.environment} with {len(wrappers)} wrapper(s); spec at {out_loc.uri}",
    )


def _default_name(environment: str, wrappers: list[dict[str, Any]], env_kwargs: Mapping[str, Any]) -> str:
    """`CartPole-v1.json`, or with a hash of the settings so different configurations never collide."""
    base = environment.replace("/", "_")
    if not wrappers and not env_kwargs:
        return f"{base}.json"
    settings = json.dumps({"wrappers": wrappers, "env_kwargs": env_kwargs}, sort_keys=True)
    return f"{base}-{hashlib.sha256(settings.encode()).hexdigest()[:8]}.json"
