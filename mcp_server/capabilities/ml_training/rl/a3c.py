"""A real A3C (Mnih et al. 2016): asynchronous advantage actor-critic on Ray actors.

- `ParameterHolder` (one actor) owns the shared weights and the optimiser. `apply(worker, grads,
  version)` applies one worker's gradient the moment it arrives, bumps the weight version, records
  how stale the gradient was (versions applied since the worker fetched its weights) and answers
  with fresh weights. Actor calls run one at a time, so each update is atomic; there is no barrier:
  workers never wait for each other, only for their own turn at the holder.
- `A3CWorker` (N actors) each run their own copy of the environment and of the network: an n-step
  rollout with the current policy, the actor-critic loss (policy gradient with the n-step advantage,
  value loss, entropy bonus), gradients on its own copy, sent to the holder; repeat with the weights
  it gets back.
- The driver only watches: it polls the holder's counters for progress, the stop rule and the job's
  cancel flag, then tells the holder to stop and kills every actor (also on error or cancel). It
  runs in the job's worker process: the actors are its Ray job's and die with that process.
- A resumed run loads the stored weights and Adam state into the holder; the workers get the
  stored observation statistics, frozen. A fresh run returns the workers' statistics, merged.

Unlike RLlib's APPO and IMPALA, which ship *experience* from the workers to a central learner that
computes the gradients (with V-trace correcting for the lag), here the workers compute the
gradients themselves and the holder only applies them, as in the A3C paper.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.rl.common import (
    Clock,
    RLRun,
    RunControl,
    StartState,
    env_dims,
    make_rl_env,
)
from mcp_server.capabilities.ml_training.rl.policy_export import network_description, numpy_tensors, sequential_layers
from mcp_server.common.rl_env import merge_observation_stats, observation_stats

_POLL_SECONDS = 0.2
_ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU"}


def build_networks(obs_dim: int, n_actions: int, hidden: list[int], activation: str, seed: int) -> Any:
    """Separate actor (`pi`) and critic (`vf`) MLPs in one module."""
    import torch
    from torch import nn

    torch.manual_seed(seed)

    def mlp(out: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        width = obs_dim
        for units in hidden:
            layers += [nn.Linear(width, units), getattr(nn, _ACTIVATIONS[activation])()]
            width = units
        layers.append(nn.Linear(width, out))
        return nn.Sequential(*layers)

    module = nn.Module()
    module.pi = mlp(n_actions)
    module.vf = mlp(1)
    return module


class ParameterHolder:
    """The shared weights: applies each gradient as it arrives and hands back the new weights."""

    def __init__(
        self, obs_dim: int, n_actions: int, hp: dict[str, Any], seed: int, num_workers: int, start: StartState
    ) -> None:
        import torch

        torch.set_num_threads(1)
        self.net = build_networks(obs_dim, n_actions, hp["hidden_layers"], hp["activation"], seed)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=hp["learning_rate"])
        if start.tensors is not None:
            current = self.net.state_dict()
            missing = sorted(set(current) - set(start.tensors))
            if missing:
                raise ValueError(f"the stored policy lacks {missing[:3]}")
            self.net.load_state_dict({k: torch.from_numpy(np.array(start.tensors[k])) for k in current})
        if start.optimizer is not None:
            optimizer = dict(start.optimizer)
            optimizer["state"] = {
                int(k): {n: torch.from_numpy(np.array(v)) for n, v in entry.items()}
                for k, entry in dict(optimizer.get("state") or {}).items()
            }
            self.optimizer.load_state_dict(optimizer)
        self.version = 0
        self.updates_per_worker = [0] * num_workers
        self.staleness: list[int] = []
        self.timesteps = 0
        self.episode_returns: list[float] = []
        self.stopped = False

    def weights(self) -> tuple[list[np.ndarray], int]:
        return [p.detach().numpy().copy() for p in self.net.parameters()], self.version

    def apply(
        self, worker: int, grads: list[np.ndarray], version: int, steps: int, returns: list[float]
    ) -> tuple[list[np.ndarray] | None, int]:
        import torch

        if self.stopped:
            return None, self.version
        for param, grad in zip(self.net.parameters(), grads, strict=True):
            param.grad = torch.from_numpy(grad)
        self.optimizer.step()
        self.staleness.append(self.version - version)
        self.version += 1
        self.updates_per_worker[worker] += 1
        self.timesteps += steps
        self.episode_returns.extend(returns)
        return self.weights()

    def progress(self) -> dict[str, Any]:
        return {"version": self.version, "timesteps": self.timesteps, "episode_returns": list(self.episode_returns)}

    def stats(self) -> dict[str, Any]:
        staleness = self.staleness or [0]
        return {
            "workers": len(self.updates_per_worker),
            "updates": self.version,
            "updates_per_worker": list(self.updates_per_worker),
            "mean_staleness": round(float(np.mean(staleness)), 4),
            "max_staleness": int(np.max(staleness)),
        }

    def state(self) -> dict[str, np.ndarray]:
        return numpy_tensors(self.net.state_dict())

    def optimizer_state(self) -> dict[str, Any]:
        state = self.optimizer.state_dict()
        moments = {k: {n: v.detach().numpy().copy() for n, v in entry.items()} for k, entry in state["state"].items()}
        return {"state": moments, "param_groups": state["param_groups"]}

    def stop(self) -> None:
        self.stopped = True


class A3CWorker:
    """One asynchronous learner: its own environment and network copy, n-step actor-critic gradients."""

    def __init__(
        self,
        index: int,
        spec: dict[str, Any],
        hp: dict[str, Any],
        seed: int,
        holder: Any,
        stats: dict[str, Any] | None = None,
    ) -> None:
        import torch

        torch.set_num_threads(1)
        self.index = index
        self.hp = hp
        self.holder = holder
        self.env = make_rl_env(spec, stats)
        obs_dim = int(self.env.observation_space.shape[0])
        self.net = build_networks(obs_dim, int(self.env.action_space.n), hp["hidden_layers"], hp["activation"], seed)
        self.generator = torch.Generator().manual_seed(seed + 1000 + index)
        self.obs, _ = self.env.reset(seed=seed + 1000 + index)
        self.episode_return = 0.0

    def _load(self, weights: list[np.ndarray]) -> None:
        import torch

        with torch.no_grad():
            for param, value in zip(self.net.parameters(), weights, strict=True):
                param.copy_(torch.from_numpy(value))

    def _gradients(self) -> tuple[list[np.ndarray], int, list[float]]:
        import torch

        hp = self.hp
        log_probs, values, entropies, rewards = [], [], [], []
        finished: list[float] = []
        terminated = truncated = False
        for _ in range(hp["n_step"]):
            obs = torch.as_tensor(np.asarray(self.obs, dtype=np.float32))
            logits = self.net.pi(obs)
            dist = torch.distributions.Categorical(logits=logits)
            action = torch.multinomial(dist.probs, 1, generator=self.generator).squeeze(-1)
            self.obs, reward, terminated, truncated, _ = self.env.step(int(action))
            log_probs.append(dist.log_prob(action))
            entropies.append(dist.entropy())
            values.append(self.net.vf(obs).squeeze(-1))
            rewards.append(float(reward))
            self.episode_return += float(reward)
            if terminated or truncated:
                finished.append(self.episode_return)
                self.episode_return = 0.0
                break
        # Bootstrap from the critic unless the episode really ended (a time limit is not an end).
        with torch.no_grad():
            last_obs = torch.as_tensor(np.asarray(self.obs, dtype=np.float32))
            ret = 0.0 if terminated else float(self.net.vf(last_obs).squeeze(-1))
        if terminated or truncated:
            self.obs, _ = self.env.reset()
        targets = []
        for reward in reversed(rewards):
            ret = reward + hp["gamma"] * ret
            targets.append(ret)
        target = torch.tensor(targets[::-1], dtype=torch.float32)
        value = torch.stack(values)
        advantage = target - value
        loss = (
            -(torch.stack(log_probs) * advantage.detach()).mean()
            + hp["vf_loss_coeff"] * advantage.pow(2).mean()
            - hp["entropy_coeff"] * torch.stack(entropies).mean()
        )
        self.net.zero_grad(set_to_none=False)
        loss.backward()
        if hp.get("grad_clip"):
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), hp["grad_clip"])
        grads = [p.grad.detach().numpy().copy() for p in self.net.parameters()]
        return grads, len(rewards), finished

    def env_observation_stats(self) -> dict[str, Any] | None:
        return observation_stats(self.env)

    def run(self) -> int:
        """Loop until the holder says stop: rollout, gradient, send, load what comes back."""
        import ray

        weights, version = ray.get(self.holder.weights.remote())
        updates = 0
        while weights is not None:
            self._load(weights)
            grads, steps, finished = self._gradients()
            weights, version = ray.get(self.holder.apply.remote(self.index, grads, version, steps, finished))
            updates += 1
        return updates


def train_a3c(spec: dict[str, Any], hp: Any, control: RunControl, start: StartState | None = None) -> RLRun:
    num_workers, seed, stop = control.num_workers, control.seed, control.stop
    check_cancelled, on_iteration = control.check_cancelled, control.on_iteration
    import ray as ray_module

    ray: Any = ray_module  # actor handles are untyped for mypy
    settings = hp.model_dump()
    obs_dim, actions = env_dims(spec)
    n_actions = int(actions or 0)
    start = start or StartState()
    clock = Clock()
    holder = ray.remote(num_cpus=0)(ParameterHolder).remote(obs_dim, n_actions, settings, seed, num_workers, start)
    stats = start.observation_stats
    workers = [
        ray.remote(num_cpus=1)(A3CWorker).remote(i, spec, settings, seed, holder, stats) for i in range(num_workers)
    ]
    actors = [holder, *workers]
    try:
        runs = [w.run.remote() for w in workers]
        history: list[dict[str, Any]] = []
        seen_returns = 0
        next_report = hp.train_batch_size
        reason: str | None = None
        while reason is None:
            check_cancelled()
            done, _ = ray.wait(runs, timeout=_POLL_SECONDS, num_returns=len(runs))
            if done:
                ray.get(done)  # a worker that stopped early has crashed: raise its error
            progress = ray.get(holder.progress.remote())
            timesteps = int(progress["timesteps"])
            if timesteps < next_report:
                if stop.max_seconds is not None and clock.seconds() >= stop.max_seconds:
                    reason = "max_seconds"
                continue
            next_report = timesteps + hp.train_batch_size
            returns = progress["episode_returns"]
            recent = returns[-20:]  # the last 20 episodes, as RLlib smooths its return mean
            new = returns[seen_returns:]
            seen_returns = len(returns)
            entry: dict[str, Any] = {
                "iteration": len(history) + 1,
                "timesteps": timesteps,
                "episode_return_mean": float(np.mean(recent)) if recent else None,
                "episode_return_min": float(np.min(new)) if new else None,
                "episode_return_max": float(np.max(new)) if new else None,
                "updates": int(progress["version"]),
                "seconds": clock.seconds(),
            }
            history.append(entry)
            on_iteration(entry)
            reason = stop.reason(entry["iteration"], timesteps, entry["episode_return_mean"], entry["seconds"])
        ray.get(holder.stop.remote())
        ray.wait(runs, timeout=5.0, num_returns=len(runs))
        check_cancelled()
        tensors = ray.get(holder.state.remote())
        optimizer = ray.get(holder.optimizer_state.remote())
        async_stats = ray.get(holder.stats.remote())
        if stats is None:  # frozen when resumed; else what the workers' environments learnt
            stats = merge_observation_stats(ray.get([w.env_observation_stats.remote() for w in workers], timeout=30))
        # torch's state_dict names a plain Module's children pi.* and vf.*; rebuild the skeleton
        # locally (no weights needed) to describe the forward path.
        skeleton = build_networks(obs_dim, n_actions, settings["hidden_layers"], settings["activation"], seed)
        network = network_description(
            sequential_layers([("pi", skeleton.pi)]), [obs_dim], spec["action_space"], "logits", "a3c"
        )
        last: dict[str, Any] = history[-1] if history else {"timesteps": 0, "iteration": 0}
        return RLRun(
            tensors=tensors,
            network=network,
            history=history,
            stopped_by=reason,
            timesteps=int(last["timesteps"]),
            iterations=int(last["iteration"]),
            seconds=clock.seconds(),
            extra={"async_stats": async_stats},
            optimizer_state=optimizer,
            observation_stats=stats,
        )
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
