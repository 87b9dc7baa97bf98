"""RL policies in bundles: safetensors weights plus a JSON network description, run with NumPy.

The RL trainers (RLlib PPO/DQN, our A3C) write the policy network's tensors as
`policy.safetensors` (plain float32 arrays, nothing executable; RLlib checkpoints are pickles
and are never stored) and `network.json`, which says which tensors make up the greedy forward
pass and how actions are read from its output::

    {"format": "mlp_policy", "format_version": 1,
     "observation_shape": [4], "action_space": {"type": "Discrete", "n": 2, "start": 0},
     "output": "logits",            # logits | q_values (argmax) or gaussian (mean of the first half)
     "layers": [{"weight": "pi.0.weight", "bias": "pi.0.bias", "activation": "tanh"}, ...],
     "action_transform": null}      # or "unsquash": actions in [-1, 1] mapped to the Box bounds

The file may hold more tensors than the forward pass needs (value function, target network): a
resumed training loads them all. Evaluation needs only NumPy and safetensors: neither torch nor
Ray is imported here, and every tensor name and shape is checked against the description
before use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.s3_utils import json_bytes, parse_json

FAMILY = "policy"
NETWORK_FILE = "network.json"
NETWORK_FORMAT = "mlp_policy"
NETWORK_FORMAT_VERSION = 1
OUTPUTS = ("logits", "q_values", "gaussian")
_MAX_LAYERS = 32
_ACTIVATIONS: dict[str | None, Any] = {
    None: lambda x: x,
    "linear": lambda x: x,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}
ACTIVATIONS = tuple(a for a in _ACTIVATIONS if a not in (None, "linear"))


class Policy:
    """A greedy policy: `act(observation)` returns the action the network prefers."""

    def __init__(self, network: dict[str, Any], tensors: Mapping[str, np.ndarray]) -> None:
        self.network = network
        self.tensors = dict(tensors)
        self._layers = [
            (self.tensors[layer["weight"]], self.tensors[layer["bias"]], _ACTIVATIONS[layer.get("activation")])
            for layer in network["layers"]
        ]
        space = network["action_space"]
        self._discrete = space["type"] == "Discrete"
        self._start = int(space.get("start", 0)) if self._discrete else 0
        transform = network.get("action_transform")
        self._low = np.asarray(space.get("low"), dtype=np.float64) if transform == "unsquash" else None
        self._high = np.asarray(space.get("high"), dtype=np.float64) if transform == "unsquash" else None

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return tuple(self.network["observation_shape"])

    def forward(self, observation: Any) -> np.ndarray:
        x = np.asarray(observation, dtype=np.float32).reshape(-1)
        for weight, bias, activation in self._layers:
            x = activation(weight @ x + bias)
        return x

    def act(self, observation: Any) -> Any:
        out = self.forward(observation)
        if self._discrete:
            return int(np.argmax(out)) + self._start
        dim = len(out) // 2 if self.network["output"] == "gaussian" else len(out)
        mean = out[:dim].astype(np.float64)
        if self._low is not None and self._high is not None:
            mean = self._low + (np.clip(mean, -1.0, 1.0) + 1.0) * (self._high - self._low) / 2.0
        return mean.astype(np.float32)


def action_count(space: Mapping[str, Any]) -> int:
    """How many outputs a policy head needs per action dimension (Discrete: n; Box: its size)."""
    if space.get("type") == "Discrete":
        return int(space["n"])
    if space.get("type") == "Box":
        return int(np.prod(space.get("shape") or [1]))
    raise InvalidInputError(
        f"action space {space.get('type')} is not supported",
        field="environment",
        hint="Use an environment with a Discrete or Box action space.",
    )


def check_network(network: Any) -> dict[str, Any]:
    """A network description from storage, checked before anything is built from it."""
    if not isinstance(network, dict) or network.get("format") != NETWORK_FORMAT:
        raise BadFormatError(f"{NETWORK_FILE} is not an {NETWORK_FORMAT} description", field="model_s3_uri")
    layers = network.get("layers")
    shape = network.get("observation_shape")
    space = network.get("action_space")
    if (
        network.get("output") not in OUTPUTS
        or not isinstance(layers, list)
        or not 1 <= len(layers) <= _MAX_LAYERS
        or not isinstance(shape, list)
        or not all(isinstance(d, int) and d > 0 for d in shape)
        or not isinstance(space, dict)
        or space.get("type") not in ("Discrete", "Box")
        or network.get("action_transform") not in (None, "unsquash")
    ):
        raise BadFormatError(f"{NETWORK_FILE} has missing or invalid fields", field="model_s3_uri")
    for layer in layers:
        if (
            not isinstance(layer, dict)
            or not isinstance(layer.get("weight"), str)
            or not isinstance(layer.get("bias"), str)
            or layer.get("activation") not in _ACTIVATIONS
        ):
            raise BadFormatError(f"{NETWORK_FILE} lists an invalid layer: {layer!r:.200}", field="model_s3_uri")
    return network


def check_tensors(network: dict[str, Any], tensors: Mapping[str, np.ndarray]) -> None:
    """Every layer's tensors exist, are float32 and chain from the observation to the action outputs."""
    width = int(np.prod(network["observation_shape"]))
    for layer in network["layers"]:
        weight, bias = tensors.get(layer["weight"]), tensors.get(layer["bias"])
        if weight is None or bias is None:
            raise BadFormatError(f"the policy weights lack {layer['weight']} or {layer['bias']}", field="model_s3_uri")
        if weight.dtype != np.float32 or bias.dtype != np.float32:
            raise BadFormatError("the policy weights must be float32", field="model_s3_uri")
        if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
            raise BadFormatError(
                f"the policy weights do not match {NETWORK_FILE} at {layer['weight']} "
                f"(shape {list(weight.shape)}, expected [*, {width}])",
                field="model_s3_uri",
            )
        width = weight.shape[0]
    outputs = action_count(network["action_space"]) * (2 if network["output"] == "gaussian" else 1)
    if width != outputs:
        raise BadFormatError(
            f"the policy network gives {width} outputs; its action space needs {outputs}", field="model_s3_uri"
        )


# ---------------------------------------------------------------------------- bundle family
class PolicyArtifacts:
    """What an RL trainer hands to `write_bundle`: every tensor of the module plus the description."""

    def __init__(self, network: dict[str, Any], tensors: Mapping[str, np.ndarray]) -> None:
        self.network = check_network(network)
        self.tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        check_tensors(self.network, self.tensors)


def save_policy(model: Any, path: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    from safetensors.numpy import save_file

    if not isinstance(model, PolicyArtifacts):
        raise InvalidInputError(f"expected PolicyArtifacts, got {type(model).__name__}")
    save_file(model.tensors, str(path), metadata={"format": NETWORK_FORMAT})
    return {NETWORK_FILE: json_bytes(model.network)}


def load_policy(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Policy:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    if NETWORK_FILE not in extra_files:
        raise BadFormatError(f"the policy bundle has no {NETWORK_FILE}", field="model_s3_uri")
    network = check_network(parse_json(extra_files[NETWORK_FILE], NETWORK_FILE))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadFormatError(f"cannot read the policy weights: {exc}", field="model_s3_uri") from exc
    check_tensors(network, tensors)
    return Policy(network, tensors)
