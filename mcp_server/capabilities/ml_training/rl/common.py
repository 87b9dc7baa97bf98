"""What every RL engine shares: the environment for a spec, the stop rule, and the run summary."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mcp_server.common.exceptions import CancelledError
from mcp_server.common.rl_env import make_env

T = TypeVar("T")
_CANCEL_POLL_SECONDS = 0.1

DEFAULT_MAX_TIMESTEPS = 200_000
DEFAULT_MAX_SECONDS = 600.0
STOP_REASONS = ("target_return", "max_iterations", "max_timesteps", "max_seconds")


def make_rl_env(spec: dict[str, Any], observation_stats: dict[str, Any] | None = None) -> Any:
    """The environment of a spec as the learners see it: observations flattened to one vector
    (normalised with frozen `observation_stats` when a resumed training gives them)."""
    from gymnasium import spaces
    from gymnasium.wrappers import FlattenObservation

    env = make_env(spec, observation_stats=observation_stats)
    if isinstance(env.observation_space, spaces.Box) and len(env.observation_space.shape) != 1:
        env = FlattenObservation(env)
    return env


def env_dims(spec: dict[str, Any]) -> tuple[int, int | None]:
    """(observation size, number of discrete actions or None) of the environment a spec builds."""
    env = make_rl_env(spec)
    try:
        n = getattr(env.action_space, "n", None)
        return int(env.observation_space.shape[0]), None if n is None else int(n)
    finally:
        env.close()


def env_creator(env_config: Any) -> Any:
    """RLlib's env factory: the spec (and a resumed run's observation statistics) travel in the env
    config, the wrappers run in the env runners."""
    return make_rl_env(dict(env_config["spec"]), env_config.get("observation_stats"))


@dataclass
class StopRule:
    """When to stop: the first of target return, iterations, timesteps or seconds that is reached."""

    target_return: float | None = None
    max_iterations: int | None = None
    max_timesteps: int | None = None
    max_seconds: float | None = None

    @classmethod
    def from_params(cls, stop: Any, reward_threshold: float | None) -> StopRule:
        """The given limits; none given: the env's reward threshold, 200k timesteps or 10 minutes.

        A run is never unbounded: without any limit on iterations, timesteps or seconds (e.g. only
        a target return), the 10-minute limit applies too.
        """
        given = {k: v for k, v in (stop.model_dump() if stop is not None else {}).items() if v is not None}
        if not given:
            return cls(
                target_return=reward_threshold,
                max_timesteps=DEFAULT_MAX_TIMESTEPS,
                max_seconds=DEFAULT_MAX_SECONDS,
            )
        rule = cls(**given)
        if rule.max_iterations is None and rule.max_timesteps is None and rule.max_seconds is None:
            rule.max_seconds = DEFAULT_MAX_SECONDS
        return rule

    def reason(self, iteration: int, timesteps: int, return_mean: float | None, seconds: float) -> str | None:
        if self.target_return is not None and return_mean is not None and return_mean >= self.target_return:
            return "target_return"
        if self.max_iterations is not None and iteration >= self.max_iterations:
            return "max_iterations"
        if self.max_timesteps is not None and timesteps >= self.max_timesteps:
            return "max_timesteps"
        if self.max_seconds is not None and seconds >= self.max_seconds:
            return "max_seconds"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class RunControl:
    """What an engine is told besides the environment and hyperparameters: how wide, which seed,
    when to stop, how to notice a cancel, and where each iteration's record goes."""

    num_workers: int
    seed: int
    stop: StopRule
    check_cancelled: Callable[[], None]
    on_iteration: Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class StartState:
    """What a resumed training starts from, read from its bundle (all None: a fresh start). The
    observation statistics are applied frozen: the stored policy was trained on them."""

    tensors: dict[str, Any] | None = None
    optimizer: Any = None
    observation_stats: dict[str, Any] | None = None


@dataclass
class RLRun:
    """The outcome of an engine: the policy's tensors and network, per-iteration history, why it
    stopped, and what a later resume needs (optimizer state, observation statistics)."""

    tensors: dict[str, Any]
    network: dict[str, Any]
    history: list[dict[str, Any]]
    stopped_by: str
    timesteps: int
    iterations: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)
    optimizer_state: Any = None
    observation_stats: dict[str, Any] | None = None


class Clock:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)


def run_interruptibly(work: Callable[[Callable[[], None]], T], check_cancelled: Callable[[], None]) -> T:
    """Run `work(check)` in a driver thread of its own and wait for it, checking `check_cancelled`.

    One RLlib iteration can take several seconds on a busy machine and cannot be interrupted, so a
    cancelled job does not wait for it: the job ends at once (within ~0.1 s), and the driver thread
    sees `check()` raise at its next iteration boundary and tears the run down (`algo.stop()`
    kills its env-runner actors). Nothing is published by an abandoned run.
    """
    abandoned = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}

    def check() -> None:
        if abandoned.is_set():
            raise CancelledError("the run was cancelled")

    def target() -> None:
        try:
            box["result"] = work(check)
        except BaseException as exc:  # handed to the waiting job thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="rl-driver", daemon=True).start()
    while not done.wait(_CANCEL_POLL_SECONDS):
        try:
            check_cancelled()
        except BaseException:
            abandoned.set()
            raise
    if "error" in box:
        raise box["error"]
    return box["result"]
