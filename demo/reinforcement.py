"""Demo section: reinforcement learning. Wraps CartPole-v1 in an env spec, trains a short PPO run
on the server's own Ray (a few iterations: the point is the workflow, not a solved task),
evaluates the greedy policy on seeded episodes and draws its reward curve.

Returns the policy bundle's URI.
"""

from __future__ import annotations

from typing import Any

PPO_STOP = {"max_iterations": 3}
PPO_SETTINGS = {"train_batch_size": 1000, "batch_size": 128}


async def run(demo: Any) -> dict[str, Any]:
    """`demo` is the demo's `Demo` (its `call(tool, show, **arguments)` prints one line per call)."""
    print("\n== Reinforcement learning ==")
    spec = await demo.call(
        "preprocess_reinforcement",
        ("env_spec_s3_uri", "observation_space", "action_space"),
        environment="CartPole-v1",
        output_s3_uri="rl/cartpole-spec.json",
    )
    trained = await demo.call(
        "train_ppo",
        ("model_s3_uri", "metrics", "stopped_by"),
        env_spec_s3_uri=spec["env_spec_s3_uri"],
        model_output_s3_uri="models/ppo-cartpole",
        stop=PPO_STOP,
        hyperparameters=PPO_SETTINGS,
        num_workers=1,
        random_state=0,
    )
    evaluation = await demo.call(
        "evaluate_reinforcement",
        ("metrics", "evaluation_s3_uri"),
        model_s3_uri=trained["model_s3_uri"],
        n_episodes=10,
        random_state=0,
    )
    await demo.call(
        "visualization",
        ("image_s3_uri",),
        model_s3_uri=trained["model_s3_uri"],
        plot_type="reward_curve",
        evaluation_s3_uri=evaluation["evaluation_s3_uri"],
    )
    return {"policy_uri": trained["model_s3_uri"]}
