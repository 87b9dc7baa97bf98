from __future__ import annotations

import json

import numpy as np
import pytest

from mcp_server.common.exceptions import BadFormatError, InvalidInputError, NotFoundError
from mcp_server.common.rl_env import build_env_spec, env_spec_for, make_env, read_env_spec
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error

WRAPPERS = [
    {"type": "normalize_observation"},
    {"type": "scale_reward", "scale": 0.5},
    {"type": "frame_stack", "stack_size": 3},
    {"type": "time_limit", "max_episode_steps": 20},
]


async def test_reinforcement_writes_a_spec_that_builds_and_steps(router: ToolRouter) -> None:
    out = await call(router, "preprocess_reinforcement", environment="CartPole-v1", wrappers=WRAPPERS)
    assert out["env_spec_s3_uri"].startswith(router.storage.resolve("env_specs").uri)
    assert out["observation_space"]["type"] == "Box" and out["observation_space"]["shape"] == [3, 4]
    assert out["action_space"] == {"type": "Discrete", "n": 2, "start": 0}
    assert out["max_episode_steps"] == 20 and out["reward_threshold"] == 475.0
    spec = read_env_spec(router.storage, out["env_spec_s3_uri"])
    assert spec["environment"] == "CartPole-v1" and [w["type"] for w in spec["wrappers"]] == [
        w["type"] for w in WRAPPERS
    ]

    env = make_env(spec)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (3, 4)
        steps, rewards, truncated = 0, [], False
        while True:
            obs, reward, terminated, truncated, _ = env.step(0 if steps % 2 else 1)
            rewards.append(reward)
            steps += 1
            if terminated or truncated:
                break
        assert steps <= 20
        assert set(rewards) == {0.5}  # CartPole's reward of 1, scaled
        assert np.isfinite(obs).all()
    finally:
        env.close()


async def test_reinforcement_default_name_depends_on_settings(any_router: ToolRouter) -> None:
    plain = await call(any_router, "preprocess_reinforcement", environment="CartPole-v1")
    assert plain["env_spec_s3_uri"].endswith("env_specs/CartPole-v1.json")
    assert plain["max_episode_steps"] == 500 and plain["wrappers"] == []
    wrapped = await call(any_router, "preprocess_reinforcement", environment="CartPole-v1", wrappers=WRAPPERS[:1])
    assert wrapped["env_spec_s3_uri"] != plain["env_spec_s3_uri"]
    kwargs = await call(
        any_router,
        "preprocess_reinforcement",
        environment="FrozenLake-v1",
        env_kwargs={"is_slippery": False},
        output_s3_uri="rl/lake.json",
    )
    assert kwargs["observation_space"] == {"type": "Discrete", "n": 16, "start": 0}
    spec = json.loads(any_router.storage.read_text(any_router.storage.resolve("rl/lake.json")))
    assert spec["env_kwargs"] == {"is_slippery": False}


async def test_reinforcement_unknown_environment_lists_close_matches(router: ToolRouter) -> None:
    text = await call_error(router, "preprocess_reinforcement", environment="CartPol-v1")
    assert "environment" in text and "unknown Gymnasium environment 'CartPol-v1'" in text and "CartPole-v1" in text


async def test_reinforcement_refuses_module_import_ids(router: ToolRouter) -> None:
    text = await call_error(router, "preprocess_reinforcement", environment="os:System-v0")
    assert "module:id forms are refused" in text
    text = await call_error(router, "preprocess_reinforcement", environment="GymV26Environment-v0")
    assert "not an environment id this server builds" in text


@pytest.mark.parametrize(
    ("wrappers", "expected"),
    [
        ([{"type": "frame_stack", "stack_size": 1}], "wrappers.0.frame_stack.stack_size"),
        ([{"type": "time_limit", "max_episode_steps": 0}], "wrappers.0.time_limit.max_episode_steps"),
        ([{"type": "scale_reward", "scale": -1}], "wrappers.0.scale_reward.scale"),
        ([{"type": "normalize_observation", "clip": 5}], "wrappers.0.normalize_observation.clip: unknown field"),
        ([{"type": "grayscale"}], "wrappers.0"),
        ([{"type": "time_limit", "max_episode_steps": 5}] * 2, "given more than once"),
    ],
)
async def test_reinforcement_validates_each_wrapper(router: ToolRouter, wrappers: list, expected: str) -> None:
    text = await call_error(router, "preprocess_reinforcement", environment="CartPole-v1", wrappers=wrappers)
    assert expected in text


async def test_reinforcement_refuses_wrappers_the_env_cannot_take(router: ToolRouter) -> None:
    text = await call_error(
        router,
        "preprocess_reinforcement",
        environment="FrozenLake-v1",
        wrappers=[{"type": "normalize_observation"}],
    )
    assert "needs a Box observation space" in text and "Discrete" in text
    text = await call_error(router, "preprocess_reinforcement", environment="CartPole-v1", env_kwargs={"gravity": 3})
    assert "cannot create CartPole-v1" in text
    assert router.storage.list_objects(router.storage.resolve("env_specs")) == []


def test_read_env_spec_refuses_a_tampered_spec(router: ToolRouter) -> None:
    loc = router.storage.resolve("bad.json")
    router.storage.write_bytes(loc, json.dumps({"environment": "evil.module:Env-v0"}).encode())
    with pytest.raises(InvalidInputError):
        make_env(read_env_spec(router.storage, "bad.json"))
    router.storage.write_bytes(loc, b"[1, 2]")
    with pytest.raises(BadFormatError):
        read_env_spec(router.storage, "bad.json")


def test_env_spec_for_takes_an_id_or_a_stored_spec(router: ToolRouter) -> None:
    bare = env_spec_for(router.storage, "Acrobot-v1", None)
    assert bare["action_space"]["n"] == 3 and bare["wrappers"] == []
    loc = router.storage.resolve("s.json")
    router.storage.write_bytes(loc, json.dumps(build_env_spec("CartPole-v1", WRAPPERS[3:])).encode())
    assert env_spec_for(router.storage, None, "s.json")["max_episode_steps"] == 20
    with pytest.raises(InvalidInputError):
        env_spec_for(router.storage, "CartPole-v1", "s.json")
    with pytest.raises(NotFoundError):
        env_spec_for(router.storage, "Nope-v0", None)


async def test_attack_secret_env_kwargs_are_never_echoed_in_results_or_logs(
    router: ToolRouter, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from mcp_server.common.logger import JsonFormatter

    caplog.set_level(logging.INFO)
    secret = "hunter2-" + "s3cr3t"
    result = await router.call(
        "preprocess_reinforcement", {"environment": "CartPole-v1", "env_kwargs": {"password": secret}}
    )
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "password" in text and secret not in text
    assert secret not in json.dumps(result.structured_content)
    formatter = JsonFormatter()
    assert caplog.records and all(secret not in formatter.format(r) for r in caplog.records)
