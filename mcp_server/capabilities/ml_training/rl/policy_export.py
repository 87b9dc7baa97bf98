"""From a trained torch network to the bundle's policy: tensors as NumPy plus `network.json`.

Only the greedy forward path is described (encoder layers then the action head); the tensors of
every other part (value function, ...) travel along for a resumed training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mcp_server.common.exceptions import MLOpsError
from mcp_server.common.policy_models import NETWORK_FORMAT, NETWORK_FORMAT_VERSION

_ACTIVATION_NAMES = {"Tanh": "tanh", "ReLU": "relu", "ELU": "elu", "Sigmoid": "sigmoid", "SiLU": "silu"}


def sequential_layers(parts: Sequence[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Layer entries of `nn.Sequential` blocks in order: each Linear with the activation after it."""
    from torch import nn

    layers: list[dict[str, Any]] = []
    for prefix, block in parts:
        for index, child in block.named_children():
            if isinstance(child, nn.Linear):
                layers.append(
                    {"weight": f"{prefix}.{index}.weight", "bias": f"{prefix}.{index}.bias", "activation": None}
                )
            elif type(child).__name__ in _ACTIVATION_NAMES and layers:
                layers[-1]["activation"] = _ACTIVATION_NAMES[type(child).__name__]
            elif not isinstance(child, nn.Identity | nn.Dropout):
                raise MLOpsError(f"cannot export a policy layer of type {type(child).__name__}")
    return layers


def network_description(
    layers: list[dict[str, Any]],
    observation_shape: Sequence[int],
    action_space: dict[str, Any],
    output: str,
    algorithm: str,
) -> dict[str, Any]:
    return {
        "format": NETWORK_FORMAT,
        "format_version": NETWORK_FORMAT_VERSION,
        "algorithm": algorithm,
        "observation_shape": [int(np.prod(observation_shape))],
        "action_space": action_space,
        "output": output,
        "layers": layers,
        "action_transform": "unsquash" if _finite_box(action_space) else None,
    }


def _finite_box(space: dict[str, Any]) -> bool:
    """RLlib (normalize_actions) and our A3C map outputs in [-1, 1] onto a Box with finite bounds."""
    if space.get("type") != "Box":
        return False
    bounds = np.asarray([space.get("low"), space.get("high")], dtype=object).ravel()
    return all(b is not None for b in bounds)


def numpy_tensors(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Float arrays of a module state (torch tensors or NumPy), keyed by their names."""
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if array.dtype.kind == "f":
            out[name] = np.ascontiguousarray(array, dtype=np.float32)
    return out
