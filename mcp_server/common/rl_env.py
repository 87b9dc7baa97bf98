"""Gymnasium environment specs: validated JSON documents that say how to build an RL environment.

`preprocess_reinforcement` writes one; the RL trainers and `evaluate_reinforcement` read it back
(`read_env_spec`) or build one from a bare id (`env_spec_for`), then call `make_env(spec)`, so every
tool wraps the environment exactly the same way. A spec looks like::

    {"format_version": 1, "environment": "CartPole-v1", "env_kwargs": {},
     "wrappers": [{"type": "normalize_observation", "epsilon": 1e-08},
                  {"type": "time_limit", "max_episode_steps": 200}],
     "observation_space": {...}, "action_space": {...},
     "max_episode_steps": 200, "reward_threshold": 475.0}

Only environments already in Gymnasium's registry are built: an id naming a module
(`some.module:Env-v0`) would make Gymnasium import arbitrary code, so it is refused, as are the
compatibility environments that load other environments by name.
"""

from __future__ import annotations

import difflib
import functools
import operator
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mcp_server.common.exceptions import BadFormatError, InvalidInputError, NotFoundError
from mcp_server.common.s3_utils import parse_json

if TYPE_CHECKING:
    import gymnasium

    from mcp_server.common.s3_utils import S3Utils

SPEC_FORMAT_VERSION = 1
_REFUSED_IDS = ("GymV21Environment", "GymV26Environment")
_MAX_LISTED_BOUNDS = 64  # larger Box spaces are described by their overall min/max only
EnvKwarg = str | int | float | bool | None


class _Wrapper(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NormalizeObservationWrapper(_Wrapper):
    """Running mean/std of observations (Box spaces)."""

    type: Literal["normalize_observation"]
    epsilon: float = Field(1e-8, gt=0, le=1)


class NormalizeRewardWrapper(_Wrapper):
    """Scales rewards by the running return's std."""

    type: Literal["normalize_reward"]
    gamma: float = Field(0.99, gt=0, le=1)
    epsilon: float = Field(1e-8, gt=0, le=1)


class ScaleRewardWrapper(_Wrapper):
    """Multiplies every reward by a constant."""

    type: Literal["scale_reward"]
    scale: float = Field(gt=0, le=1e6)


class FrameStackWrapper(_Wrapper):
    """Stacks the last `stack_size` observations."""

    type: Literal["frame_stack"]
    stack_size: int = Field(4, ge=2, le=64)


class TimeLimitWrapper(_Wrapper):
    """Truncates episodes (replaces the own limit)."""

    type: Literal["time_limit"]
    max_episode_steps: int = Field(ge=1, le=10_000_000)


EnvWrapper = Annotated[
    NormalizeObservationWrapper | NormalizeRewardWrapper | ScaleRewardWrapper | FrameStackWrapper | TimeLimitWrapper,
    Field(discriminator="type"),
]
_WRAPPERS = TypeAdapter(list[EnvWrapper])


def check_environment_id(environment: str, field: str = "environment") -> Any:
    """The registered `EnvSpec` of `environment`, or an error listing close matches."""
    import gymnasium

    if not environment or ":" in environment or environment.split("/")[-1].split("-v")[0] in _REFUSED_IDS:
        raise InvalidInputError(
            f"{environment!r} is not an environment id this server builds",
            field=field,
            hint="Pass a registered Gymnasium id such as CartPole-v1 (module:id forms are refused).",
        )
    found = gymnasium.registry.get(environment)
    if found is None:
        close = difflib.get_close_matches(environment, list(gymnasium.registry), n=5, cutoff=0.5)
        hint = f"Did you mean {', '.join(close)}?" if close else "Pass a registered id such as CartPole-v1."
        raise NotFoundError(f"unknown Gymnasium environment {environment!r}", field=field, hint=hint)
    return found


def validate_wrappers(wrappers: Any, field: str = "wrappers") -> list[dict[str, Any]]:
    """Wrapper settings as plain dicts, validated; each wrapper type may appear once."""
    try:
        parsed = _WRAPPERS.validate_python(list(wrappers or []))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInputError(f"{where}: {first.get('msg')}", field=field) from None
    types = [w.type for w in parsed]
    repeated = sorted({t for t in types if types.count(t) > 1})
    if repeated:
        raise InvalidInputError(f"wrapper {repeated[0]!r} is given more than once", field=field)
    return [w.model_dump() for w in parsed]


def describe_space(space: Any) -> dict[str, Any]:
    """A JSON description of a Gymnasium space (infinite bounds become null)."""
    import numpy as np
    from gymnasium import spaces

    def bound(values: Any, overall: Any) -> Any:
        array = np.asarray(values, dtype=float)
        if array.size > _MAX_LISTED_BOUNDS:
            finite = array[np.isfinite(array)]
            return float(overall(finite)) if finite.size else None
        cleaned = [float(v) if np.isfinite(v) else None for v in array.ravel()]
        return np.asarray(cleaned, dtype=object).reshape(array.shape).tolist()

    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": bound(space.low, np.min),
            "high": bound(space.high, np.max),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [describe_space(s) for s in space.spaces]}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: describe_space(s) for k, s in space.spaces.items()}}
    return {"type": type(space).__name__, "shape": list(space.shape or ())}


def _checked_spec(spec: Mapping[str, Any], field: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("environment"), str):
        raise BadFormatError("an environment spec needs an 'environment' id", field=field)
    kwargs = spec.get("env_kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str | int | float | bool)) for k, v in kwargs.items()
    ):
        raise InvalidInputError("env_kwargs must map names to plain values (text, numbers, booleans)", field=field)
    if "render_mode" in kwargs:
        raise InvalidInputError("env_kwargs may not set render_mode", field=field)
    return spec["environment"], dict(kwargs), validate_wrappers(spec.get("wrappers"), field)


def make_env(
    spec: Mapping[str, Any],
    render_mode: str | None = None,
    field: str = "env_spec",
    observation_stats: Mapping[str, Any] | None = None,
) -> gymnasium.Env[Any, Any]:
    """Build the environment a spec describes, wrappers applied in the listed order.

    A `time_limit` wrapper replaces the environment's own step limit (it is passed to
    `gymnasium.make`), whatever its position in the list. With `observation_stats` (those a policy
    was trained with), a `normalize_observation` wrapper starts from them and is frozen.
    """
    import gymnasium
    from gymnasium import spaces
    from gymnasium import wrappers as gw

    environment, kwargs, wrappers = _checked_spec(spec, field)
    check_environment_id(environment, field)
    limit = next((w["max_episode_steps"] for w in wrappers if w["type"] == "time_limit"), None)
    try:
        env = gymnasium.make(environment, max_episode_steps=limit, render_mode=render_mode, **kwargs)
    except gymnasium.error.DependencyNotInstalled as exc:
        raise InvalidInputError(f"{environment} needs a package that is not installed: {exc}", field=field) from None
    except (TypeError, ValueError, gymnasium.error.Error) as exc:
        raise InvalidInputError(f"cannot create {environment}: {exc}", field=field) from None
    try:
        for wrapper in wrappers:
            kind = wrapper["type"]
            if kind == "normalize_observation":
                if not isinstance(env.observation_space, spaces.Box):
                    raise InvalidInputError(
                        f"normalize_observation needs a Box observation space; {environment} has "
                        f"{type(env.observation_space).__name__}",
                        field=field,
                    )
                env = gw.NormalizeObservation(env, epsilon=wrapper["epsilon"])
                if observation_stats is not None:
                    _freeze(env, observation_stats)
            elif kind == "normalize_reward":
                env = gw.NormalizeReward(env, gamma=wrapper["gamma"], epsilon=wrapper["epsilon"])
            elif kind == "scale_reward":
                # A partial (not a lambda) keeps the env picklable for process-based vector envs.
                env = gw.TransformReward(env, functools.partial(operator.mul, wrapper["scale"]))
            elif kind == "frame_stack":
                env = gw.FrameStackObservation(env, stack_size=wrapper["stack_size"])
    except BaseException:
        env.close()
        raise
    return env


def _freeze(normalizer: Any, stats: Mapping[str, Any]) -> None:
    import numpy as np

    rms = normalizer.obs_rms
    mean = np.asarray(stats["mean"], dtype=rms.mean.dtype)
    if mean.shape != rms.mean.shape:
        raise InvalidInputError(
            f"the policy's observation statistics have shape {list(mean.shape)}; this environment's "
            f"observations {list(rms.mean.shape)}",
            field="environment",
            hint="Evaluate on the environment (and wrappers) the policy was trained on.",
        )
    rms.mean = mean.copy()
    rms.var = np.asarray(stats["var"], dtype=rms.var.dtype).reshape(rms.var.shape).copy()
    rms.count = float(np.asarray(stats["count"]))
    normalizer.update_running_mean = False


def observation_stats(env: Any) -> dict[str, Any] | None:
    """The running statistics of the `normalize_observation` wrapper inside `env`, if it has one."""
    import numpy as np
    from gymnasium.wrappers import NormalizeObservation

    while env is not None and not isinstance(env, NormalizeObservation):
        env = getattr(env, "env", None)
    if env is None:
        return None
    rms = env.obs_rms
    return {
        "mean": np.asarray(rms.mean, dtype=np.float32).copy(),
        "var": np.asarray(rms.var, dtype=np.float32).copy(),
        "count": np.asarray(rms.count, dtype=np.float64),
    }


def merge_observation_stats(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """One set of statistics from several environments' (each env runner or worker keeps its own),
    weighted by how many observations each saw; environments that never stepped are left out."""
    import numpy as np

    seen = [p for p in parts if p is not None and float(p["count"]) >= 1.0]
    if len(seen) <= 1:
        return seen[0] if seen else None
    counts = np.asarray([float(p["count"]) for p in seen])
    means = np.stack([np.asarray(p["mean"], dtype=np.float64) for p in seen])
    variances = np.stack([np.asarray(p["var"], dtype=np.float64) for p in seen])
    total = counts.sum()
    mean = (counts[:, None] * means).sum(0) / total
    var = (counts[:, None] * (variances + (means - mean) ** 2)).sum(0) / total
    return {"mean": mean.astype(np.float32), "var": var.astype(np.float32), "count": np.asarray(total)}


def build_env_spec(
    environment: str,
    wrappers: Any = None,
    env_kwargs: Mapping[str, EnvKwarg] | None = None,
    field: str = "environment",
) -> dict[str, Any]:
    """A complete spec for `environment`: validated by building the env once, then closing it."""
    registered = check_environment_id(environment, field)
    spec: dict[str, Any] = {
        "format_version": SPEC_FORMAT_VERSION,
        "environment": environment,
        "env_kwargs": dict(env_kwargs or {}),
        "wrappers": validate_wrappers(wrappers),
    }
    env = make_env(spec, field=field)
    try:
        spec["observation_space"] = describe_space(env.observation_space)
        spec["action_space"] = describe_space(env.action_space)
        limit = next((w["max_episode_steps"] for w in spec["wrappers"] if w["type"] == "time_limit"), None)
        spec["max_episode_steps"] = limit or registered.max_episode_steps
        spec["reward_threshold"] = registered.reward_threshold
    finally:
        env.close()
    return spec


def read_env_spec(storage: S3Utils, uri: str, field: str = "env_spec_s3_uri") -> dict[str, Any]:
    """A spec written by `preprocess_reinforcement`, checked before anything is built from it."""
    loc = storage.resolve(uri, field)
    spec = parse_json(storage.read_bytes(loc, max_bytes=1024**2), loc.uri)
    if not isinstance(spec, dict):
        raise BadFormatError(f"{loc.uri} is not an environment spec", field=field)
    _checked_spec(spec, field)
    return spec


def env_spec_for(storage: S3Utils, environment: str | None, env_spec_s3_uri: str | None) -> dict[str, Any]:
    """The spec an RL tool should use: from `env_spec_s3_uri`, or a bare one for `environment`."""
    if env_spec_s3_uri and environment:
        raise InvalidInputError("pass either environment or env_spec_s3_uri, not both", field="environment")
    if env_spec_s3_uri:
        return read_env_spec(storage, env_spec_s3_uri)
    if environment:
        return build_env_spec(environment)
    raise InvalidInputError(
        "an environment is required",
        field="environment",
        hint="Pass environment (e.g. CartPole-v1) or env_spec_s3_uri.",
    )
