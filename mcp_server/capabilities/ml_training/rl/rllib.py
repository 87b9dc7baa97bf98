"""PPO and DQN through RLlib's new API stack (Ray 2.60, torch), driven one `algo.train()` at a time.

The algorithm is built from a validated hyperparameter model, trained until the stop rule says
so (the job's cancel flag is checked between iterations, which are kept short), and its policy
exported as NumPy tensors + a network description, with the learner's optimizer state and the
env runners' observation statistics (when the spec normalises observations). RLlib checkpoints
(pickles) are never made. Runs in the job's worker process, the Ray driver of the run.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mcp_server.capabilities.ml_training.rl.common import (
    Clock,
    RLRun,
    RunControl,
    StartState,
    env_creator,
    env_dims,
    finite,
    run_interruptibly,
)
from mcp_server.capabilities.ml_training.rl.policy_export import network_description, sequential_layers
from mcp_server.common.rl_env import merge_observation_stats, observation_stats

ENV_NAME = "mlops-env"
_LEARNER_MODULE = "learner/rl_module/default_policy"
_LEARNER_OPTIMIZER = "learner/optimizer"


def _register_env() -> None:
    from ray.tune.registry import register_env

    register_env(ENV_NAME, env_creator)


def _model_config(hp: Any) -> Any:
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    heads = list(getattr(hp, "head_hidden_layers", []))
    return DefaultModelConfig(
        fcnet_hiddens=list(hp.hidden_layers),
        fcnet_activation=hp.activation,
        head_fcnet_hiddens=heads,
        head_fcnet_activation=hp.activation,
        vf_share_layers=False,
    )


def build_config(
    algorithm: str,
    spec: dict[str, Any],
    hp: Any,
    num_workers: int,
    seed: int,
    observation_stats: dict[str, Any] | None = None,
) -> Any:
    """The RLlib AlgorithmConfig for `algorithm` (ppo or dqn) with our hyperparameter names."""
    if algorithm == "ppo":
        from ray.rllib.algorithms.ppo import PPOConfig

        config: Any = PPOConfig().training(
            lr=hp.learning_rate,
            gamma=hp.gamma,
            train_batch_size_per_learner=hp.train_batch_size,
            minibatch_size=hp.batch_size,
            num_epochs=hp.num_epochs,
            vf_loss_coeff=hp.vf_loss_coeff,
            entropy_coeff=hp.entropy_coeff,
            clip_param=hp.clip_param,
            lambda_=hp.gae_lambda,
            grad_clip=hp.grad_clip,
        )
    else:
        from ray.rllib.algorithms.dqn import DQNConfig

        config = (
            DQNConfig()
            .training(
                lr=hp.learning_rate,
                gamma=hp.gamma,
                train_batch_size_per_learner=hp.batch_size,
                n_step=hp.n_step,
                double_q=hp.double_q,
                dueling=hp.dueling,
                target_network_update_freq=hp.target_network_update_freq,
                num_steps_sampled_before_learning_starts=hp.learning_starts,
                epsilon=[(0, hp.epsilon_start), (hp.epsilon_timesteps, hp.epsilon_end)],
                replay_buffer_config={
                    "type": "PrioritizedEpisodeReplayBuffer" if hp.prioritized_replay else "EpisodeReplayBuffer",
                    "capacity": hp.replay_buffer_capacity,
                    **({"alpha": 0.6, "beta": 0.4} if hp.prioritized_replay else {}),
                },
                grad_clip=hp.grad_clip,
            )
            .reporting(min_sample_timesteps_per_iteration=hp.train_batch_size)
        )
        # One gradient step per `rollout_fragment_length` sampled steps: RLlib's default (1) trains
        # 32 samples per env step, far too slow on a few CPUs for no better result on small envs.
        config = config.env_runners(rollout_fragment_length=hp.rollout_fragment_length)
    return (
        config.environment(ENV_NAME, env_config={"spec": spec, "observation_stats": observation_stats})
        .framework("torch")
        .env_runners(num_env_runners=num_workers, num_envs_per_env_runner=1, num_cpus_per_env_runner=1)
        .learners(num_learners=0)
        .rl_module(model_config=_model_config(hp))
        .debugging(seed=seed, log_level="ERROR")
        .reporting(metrics_num_episodes_for_smoothing=20)
    )


def _policy_network(algo: Any, algorithm: str, spec: dict[str, Any], obs_dim: int) -> dict[str, Any]:
    module = algo.get_module()
    if algorithm == "ppo":
        parts = [
            ("encoder.actor_encoder.net.mlp", module.encoder.actor_encoder.net.mlp),
            ("pi.net.mlp", module.pi.net.mlp),
        ]
        output = "logits" if spec["action_space"]["type"] == "Discrete" else "gaussian"
    else:
        parts = [("encoder.net.mlp", module.encoder.net.mlp), ("af.net.mlp", module.af.net.mlp)]
        output = "q_values"  # dueling: argmax of the advantages is argmax of Q
    return network_description(sequential_layers(parts), [obs_dim], spec["action_space"], output, algorithm)


def learner_tensors(algo: Any) -> dict[str, Any]:
    from mcp_server.capabilities.ml_training.rl.policy_export import numpy_tensors

    state = algo.learner_group.get_state(components=_LEARNER_MODULE)
    return numpy_tensors(state["learner"]["rl_module"]["default_policy"])


def learner_optimizer_state(algo: Any) -> Any:
    """The learner's optimizer state (Adam moments and step counts, as NumPy)."""
    return algo.learner_group.get_state(components=_LEARNER_OPTIMIZER)["learner"]["optimizer"]


def _runner_observation_stats(runner: Any) -> dict[str, Any] | None:
    """Runs in each env runner: its environments' observation statistics, merged."""
    env = getattr(runner, "env", None)
    while env is not None and not hasattr(env, "envs"):  # vector wrappers around the vector env
        env = getattr(env, "env", None)
    return merge_observation_stats([observation_stats(e) for e in getattr(env, "envs", [])])


def runner_observation_stats(algo: Any) -> dict[str, Any] | None:
    """The observation statistics the env runners learnt, merged (None: the spec normalises nothing)."""
    group = algo.env_runner_group
    return merge_observation_stats(group.foreach_env_runner(_runner_observation_stats, healthy_only=False))


def load_learner_tensors(algo: Any, tensors: dict[str, Any], optimizer: Any = None) -> None:
    """Put stored weights into the learner (the full module: value function, target network), and
    the stored optimizer state when there is one, and send the weights to the env runners."""
    import torch

    state = algo.learner_group.get_state(components=_LEARNER_MODULE)
    current = state["learner"]["rl_module"]["default_policy"]
    missing = sorted(set(current) - set(tensors))
    if missing:
        from mcp_server.common.exceptions import InvalidInputError

        raise InvalidInputError(
            f"the stored policy lacks {missing[:3]} for this network",
            field="resume_from",
            hint="Resume with the same hyperparameters.",
        )
    new = {k: torch.from_numpy(tensors[k].copy()) for k in current}
    learner: dict[str, Any] = {"rl_module": {"default_policy": new}}
    if optimizer is not None:
        learner["optimizer"] = optimizer
    algo.learner_group.set_state({"learner": learner})
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)


def train_rllib(
    algorithm: str, spec: dict[str, Any], hp: Any, control: RunControl, start: StartState | None = None
) -> RLRun:
    """Train PPO or DQN in a driver thread; a cancel ends the job at once (see `run_interruptibly`)."""
    return run_interruptibly(
        lambda check: _train(algorithm, spec, hp, replace(control, check_cancelled=check), start or StartState()),
        control.check_cancelled,
    )


def _train(algorithm: str, spec: dict[str, Any], hp: Any, control: RunControl, start: StartState) -> RLRun:
    """Train PPO or DQN; `check_cancelled` runs between iterations and whatever it raises propagates
    after the algorithm (and its env-runner actors) has been stopped."""
    stop, check_cancelled, on_iteration = control.stop, control.check_cancelled, control.on_iteration
    _register_env()
    obs_dim, _ = env_dims(spec)
    clock = Clock()
    config = build_config(algorithm, spec, hp, control.num_workers, control.seed, start.observation_stats)
    algo = config.build_algo()
    try:
        if start.tensors is not None:
            load_learner_tensors(algo, start.tensors, start.optimizer)
        history: list[dict[str, Any]] = []
        best: float | None = None
        while True:
            check_cancelled()
            result = algo.train()
            runners = result.get("env_runners") or {}
            timesteps = int(
                result.get("num_env_steps_sampled_lifetime") or runners.get("num_env_steps_sampled_lifetime") or 0
            )
            ret = finite(runners.get("episode_return_mean"))
            best = ret if best is None or (ret is not None and ret > best) else best
            entry: dict[str, Any] = {
                "iteration": int(result.get("training_iteration") or len(history) + 1),
                "timesteps": timesteps,
                "episode_return_mean": ret,
                "episode_return_min": finite(runners.get("episode_return_min")),
                "episode_return_max": finite(runners.get("episode_return_max")),
                "episode_len_mean": finite(runners.get("episode_len_mean")),
                "seconds": clock.seconds(),
            }
            history.append(entry)
            on_iteration(entry)
            reason = stop.reason(entry["iteration"], timesteps, ret, entry["seconds"])
            if reason is not None:
                break
        check_cancelled()
        return RLRun(
            tensors=learner_tensors(algo),
            network=_policy_network(algo, algorithm, spec, obs_dim),
            history=history,
            stopped_by=reason,
            timesteps=timesteps,
            iterations=entry["iteration"],
            seconds=clock.seconds(),
            optimizer_state=learner_optimizer_state(algo),
            # Frozen when resumed: the runners still hold the stats they were given.
            observation_stats=start.observation_stats or runner_observation_stats(algo),
        )
    finally:
        algo.stop()
