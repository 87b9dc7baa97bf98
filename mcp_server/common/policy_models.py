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
before use. Two optional companions, hashed in `metadata.json` like every artifact:

- `obs_norm.safetensors`: the running observation statistics (`mean`, `var`, `count`) learned by
  the env spec's `normalize_observation` wrapper. The policy only makes sense on observations
  normalised with them, so evaluation and a resumed training apply them, frozen.
- `optimizer.safetensors` + `optimizer.json`: the optimizer state (Adam moments and step counts)
  for a resumed training. Any nested state is stored as its arrays (safetensors) and a JSON
  layout naming them (`{"$t": name}`; `{"$d": [[key, value], ...]}` for a dict with non-text
  keys, `{"$tuple": [...]}`), so reading it back builds only plain data, never runs code.
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
OBS_NORM_FILE = "obs_norm.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_LAYOUT_FILE = "optimizer.json"
_OBS_NORM_KEYS = ("mean", "var", "count")
_STATE_DTYPES = frozenset({"float16", "float32", "float64", "int32", "int64", "bool"})
_MAX_LAYOUT_DEPTH = 16
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
    """A greedy policy: `act(observation)` returns the action the network prefers (on observations
    of the environment its spec builds, normalised with `observation_stats` when it has them)."""

    def __init__(
        self,
        network: dict[str, Any],
        tensors: Mapping[str, np.ndarray],
        observation_stats: dict[str, np.ndarray] | None = None,
        optimizer_state: Any = None,
    ) -> None:
        self.network = network
        self.tensors = dict(tensors)
        self.observation_stats = observation_stats
        self.optimizer_state = optimizer_state
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


# ---------------------------------------------------------------------------- observation statistics
def check_observation_stats(stats: Mapping[str, Any], width: int) -> dict[str, np.ndarray]:
    """mean/var of `width` floats (var >= 0) and a positive count, all finite."""
    try:
        mean = np.asarray(stats["mean"], dtype=np.float32).reshape(-1)
        var = np.asarray(stats["var"], dtype=np.float32).reshape(-1)
        count = np.asarray(stats["count"], dtype=np.float64).reshape(())
    except (KeyError, TypeError, ValueError):
        raise BadFormatError(f"{OBS_NORM_FILE} needs mean, var and count", field="model_s3_uri") from None
    values = np.concatenate([mean, var, count.reshape(1)])
    if mean.shape != (width,) or var.shape != (width,) or not np.isfinite(values).all() or (var < 0).any():
        raise BadFormatError(
            f"{OBS_NORM_FILE} does not hold finite statistics for {width} observation values", field="model_s3_uri"
        )
    if count <= 0:
        raise BadFormatError(f"{OBS_NORM_FILE} has a count of {float(count)}", field="model_s3_uri")
    return {"mean": mean, "var": var, "count": count}


# ---------------------------------------------------------------------------- optimizer state
def pack_state(state: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """A nested state (dicts, lists, tuples, numbers, text, arrays) as a JSON layout + its arrays."""
    arrays: dict[str, np.ndarray] = {}

    def encode(value: Any) -> Any:
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            key = f"t{len(arrays)}"
            arrays[key] = np.array(value, order="C")  # (ascontiguousarray would make a 0-d step 1-d)
            return {"$t": key}
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in value):
                return {k: encode(v) for k, v in value.items()}
            if not all(isinstance(k, str | int) and not isinstance(k, bool) for k in value):
                raise InvalidInputError("optimizer state keys must be text or integers")
            return {"$d": [[k, encode(v)] for k, v in value.items()]}
        if isinstance(value, tuple):
            return {"$tuple": [encode(v) for v in value]}
        if isinstance(value, list):
            return [encode(v) for v in value]
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise InvalidInputError(f"cannot store optimizer state of type {type(value).__name__}")

    return encode(state), arrays


def unpack_state(layout: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The nested state `pack_state` stored, rebuilt from plain JSON and arrays (checked as read)."""

    def bad(what: str) -> BadFormatError:
        return BadFormatError(f"{OPTIMIZER_LAYOUT_FILE} {what}", field="model_s3_uri")

    def decode(value: Any, depth: int) -> Any:
        if depth > _MAX_LAYOUT_DEPTH:
            raise bad("is nested too deeply")
        if isinstance(value, list):
            return [decode(v, depth + 1) for v in value]
        if not isinstance(value, dict):
            if value is None or isinstance(value, bool | int | float | str):
                return value
            raise bad(f"holds a {type(value).__name__}")
        if "$t" in value:
            array = arrays.get(value["$t"]) if isinstance(value["$t"], str) else None
            if array is None or len(value) != 1:
                raise bad(f"names a missing tensor {value['$t']!r:.40}")
            if str(array.dtype) not in _STATE_DTYPES:
                raise bad(f"names a tensor of type {array.dtype}")
            return array
        if "$tuple" in value:
            if len(value) != 1 or not isinstance(value["$tuple"], list):
                raise bad("has a malformed tuple")
            return tuple(decode(v, depth + 1) for v in value["$tuple"])
        if "$d" in value:
            pairs = value["$d"]
            if len(value) != 1 or not isinstance(pairs, list):
                raise bad("has a malformed mapping")
            out: dict[Any, Any] = {}
            for pair in pairs:
                ok = isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str | int)
                if not ok or isinstance(pair[0], bool):
                    raise bad("has a malformed mapping entry")
                out[pair[0]] = decode(pair[1], depth + 1)
            return out
        if any(k.startswith("$") for k in value):
            raise bad("has an unknown tag")
        return {k: decode(v, depth + 1) for k, v in value.items()}

    return decode(layout, 0)


# ---------------------------------------------------------------------------- bundle family
class PolicyArtifacts:
    """What an RL trainer hands to `write_bundle`: every tensor of the module plus the description,
    and, when it has them, the observation statistics and the optimizer state."""

    def __init__(
        self,
        network: dict[str, Any],
        tensors: Mapping[str, np.ndarray],
        observation_stats: Mapping[str, Any] | None = None,
        optimizer_state: Any = None,
    ) -> None:
        self.network = check_network(network)
        self.tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}
        check_tensors(self.network, self.tensors)
        width = int(np.prod(self.network["observation_shape"]))
        self.observation_stats = None
        if observation_stats is not None:
            self.observation_stats = check_observation_stats(observation_stats, _stats_width(observation_stats, width))
        self.optimizer_state = optimizer_state


def _stats_width(stats: Mapping[str, Any], width: int) -> int:
    # A frame stack after the normalisation gives the network several frames of the stats' width.
    size = int(np.asarray(stats.get("mean")).size)
    return size if size and width % size == 0 else width


def save_policy(model: Any, path: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    from safetensors.numpy import save, save_file

    if not isinstance(model, PolicyArtifacts):
        raise InvalidInputError(f"expected PolicyArtifacts, got {type(model).__name__}")
    save_file(model.tensors, str(path), metadata={"format": NETWORK_FORMAT})
    files = {NETWORK_FILE: json_bytes(model.network)}
    if model.observation_stats is not None:
        files[OBS_NORM_FILE] = save(dict(model.observation_stats))
    if model.optimizer_state is not None:
        layout, arrays = pack_state(model.optimizer_state)
        files[OPTIMIZER_FILE] = save(arrays)
        files[OPTIMIZER_LAYOUT_FILE] = json_bytes(layout)
    return files


def _read_tensors(data: bytes, name: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return load(data)
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadFormatError(f"cannot read {name}: {exc}", field="model_s3_uri") from exc


def load_policy(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> Policy:
    if NETWORK_FILE not in extra_files:
        raise BadFormatError(f"the policy bundle has no {NETWORK_FILE}", field="model_s3_uri")
    network = check_network(parse_json(extra_files[NETWORK_FILE], NETWORK_FILE))
    tensors = _read_tensors(path.read_bytes(), "the policy weights")
    check_tensors(network, tensors)
    stats = None
    if OBS_NORM_FILE in extra_files:
        raw = _read_tensors(extra_files[OBS_NORM_FILE], OBS_NORM_FILE)
        stats = check_observation_stats(raw, _stats_width(raw, int(np.prod(network["observation_shape"]))))
    optimizer = None
    if OPTIMIZER_FILE in extra_files and OPTIMIZER_LAYOUT_FILE in extra_files:
        arrays = _read_tensors(extra_files[OPTIMIZER_FILE], OPTIMIZER_FILE)
        optimizer = unpack_state(parse_json(extra_files[OPTIMIZER_LAYOUT_FILE], OPTIMIZER_LAYOUT_FILE), arrays)
    return Policy(network, tensors, stats, optimizer)
