"""RL policy bundles without Ray or torch: safetensors + network.json round trip, greedy actions,
descriptions that do not match their weights refused even when the hashes were updated too, and
the observation statistics and optimizer state stored as safetensors + plain JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mcp_server.common.bundles import read_bundle, write_bundle
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.policy_models import (
    NETWORK_FILE,
    OBS_NORM_FILE,
    OPTIMIZER_FILE,
    OPTIMIZER_LAYOUT_FILE,
    Policy,
    PolicyArtifacts,
    pack_state,
    unpack_state,
)
from mcp_server.common.s3_utils import S3Utils, sha256_file
from mcp_server.config import Config

DISCRETE = {"type": "Discrete", "n": 2, "start": 0}


def network(action_space: dict[str, Any] = DISCRETE, output: str = "logits") -> dict[str, Any]:
    return {
        "format": "mlp_policy",
        "format_version": 1,
        "observation_shape": [3],
        "action_space": action_space,
        "output": output,
        "layers": [
            {"weight": "pi.0.weight", "bias": "pi.0.bias", "activation": "tanh"},
            {"weight": "pi.2.weight", "bias": "pi.2.bias", "activation": None},
        ],
        "action_transform": "unsquash" if action_space["type"] == "Box" else None,
    }


def tensors(outputs: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "pi.0.weight": rng.normal(size=(4, 3)).astype(np.float32),
        "pi.0.bias": np.zeros(4, np.float32),
        "pi.2.weight": rng.normal(size=(outputs, 4)).astype(np.float32),
        "pi.2.bias": np.zeros(outputs, np.float32),
        "vf.0.weight": np.ones((1, 3), np.float32),  # travels along, unused by the forward pass
    }


@pytest.fixture
def storage(local_config: Config) -> S3Utils:
    return S3Utils(local_config)


def test_policy_round_trip_acts_greedily(storage: S3Utils) -> None:
    weights = tensors()
    meta = write_bundle(storage, storage.resolve("models/p"), PolicyArtifacts(network(), weights), "policy", {})
    assert set(meta["artifacts"]) == {"policy.safetensors", NETWORK_FILE}
    policy = read_bundle(storage, "models/p").model
    assert isinstance(policy, Policy) and set(policy.tensors) == set(weights)
    obs = np.array([0.1, -0.2, 0.3], np.float32)
    hidden = np.tanh(weights["pi.0.weight"] @ obs)
    assert policy.act(obs) == int(np.argmax(weights["pi.2.weight"] @ hidden))


def test_gaussian_policy_maps_its_mean_onto_the_box_bounds() -> None:
    box = {"type": "Box", "shape": [1], "low": [-2.0], "high": [2.0]}
    policy = Policy(network(box, "gaussian"), tensors(outputs=2))
    action = policy.act(np.zeros(3, np.float32))
    assert action.shape == (1,) and -2.0 <= float(action[0]) <= 2.0


def test_description_that_does_not_match_the_weights_is_refused(storage: S3Utils, storage_root: Path) -> None:
    write_bundle(storage, storage.resolve("models/p"), PolicyArtifacts(network(), tensors()), "policy", {})
    folder = storage_root / "models" / "p"
    forged = network({"type": "Discrete", "n": 5, "start": 0})
    (folder / NETWORK_FILE).write_text(json.dumps(forged))
    meta = json.loads((folder / "metadata.json").read_text())
    meta["artifacts"][NETWORK_FILE] = sha256_file(folder / NETWORK_FILE)  # hashes "fixed" by the forger
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(BadFormatError, match="needs 5"):
        read_bundle(storage, "models/p")


def test_unknown_activation_is_refused() -> None:
    bad = network()
    bad["layers"][0]["activation"] = "__import__('os')"
    with pytest.raises(BadFormatError, match="invalid layer"):
        PolicyArtifacts(bad, tensors())


def adam_state() -> dict[str, Any]:
    """A torch-like Adam state_dict, as NumPy: integer keys, tuples, scalar step tensors."""
    rng = np.random.default_rng(1)
    return {
        "state": {
            0: {"step": np.asarray(7.0, np.float32), "exp_avg": rng.normal(size=(4, 3)).astype(np.float32)},
            1: {"step": np.asarray(7.0, np.float32), "exp_avg": rng.normal(size=4).astype(np.float32)},
        },
        "param_groups": [{"lr": 3e-4, "betas": (0.9, 0.999), "eps": 1e-8, "foreach": None, "params": [0, 1]}],
    }


def test_optimizer_state_and_observation_stats_round_trip_hashed(storage: S3Utils) -> None:
    stats = {"mean": np.array([0.5, -1.0, 2.0], np.float32), "var": np.array([1.0, 4.0, 0.25], np.float32)}
    stats["count"] = np.asarray(1234.0)
    state = adam_state()
    artifacts = PolicyArtifacts(network(), tensors(), observation_stats=stats, optimizer_state=state)
    meta = write_bundle(storage, storage.resolve("models/p"), artifacts, "policy", {})
    assert set(meta["artifacts"]) == {
        "policy.safetensors",
        NETWORK_FILE,
        OBS_NORM_FILE,
        OPTIMIZER_FILE,
        OPTIMIZER_LAYOUT_FILE,
    }
    policy = read_bundle(storage, "models/p").model
    assert policy.observation_stats is not None
    for key in ("mean", "var", "count"):
        np.testing.assert_array_equal(policy.observation_stats[key], stats[key])
    got = policy.optimizer_state
    assert set(got["state"]) == {0, 1} and got["param_groups"][0]["betas"] == (0.9, 0.999)
    assert got["param_groups"][0]["params"] == [0, 1] and got["param_groups"][0]["foreach"] is None
    np.testing.assert_array_equal(got["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert float(got["state"][1]["step"]) == 7.0


def test_tampered_observation_stats_are_refused_by_their_hash(storage: S3Utils, storage_root: Path) -> None:
    from safetensors.numpy import save_file

    stats = {"mean": np.zeros(3, np.float32), "var": np.ones(3, np.float32), "count": np.asarray(10.0)}
    write_bundle(storage, storage.resolve("models/p"), PolicyArtifacts(network(), tensors(), stats), "policy", {})
    save_file({**stats, "mean": np.full(3, 9.0, np.float32)}, str(storage_root / "models" / "p" / OBS_NORM_FILE))
    with pytest.raises(BadFormatError, match=r"obs_norm\.safetensors .*sha256"):
        read_bundle(storage, "models/p")


@pytest.mark.parametrize(
    "layout",
    [{"$t": "missing"}, {"$import": "os.system"}, {"$d": [[True, 1]]}, {"$tuple": "x"}, {"a": {"$t": "t0", "x": 1}}],
)
def test_optimizer_layouts_that_name_anything_but_plain_data_are_refused(layout: Any) -> None:
    with pytest.raises(BadFormatError, match=r"optimizer\.json"):
        unpack_state(layout, {"t0": np.zeros(2, np.float32)})


def test_optimizer_state_of_an_unknown_type_is_not_stored() -> None:
    with pytest.raises(InvalidInputError, match="cannot store optimizer state of type object"):
        pack_state({"x": object()})
