"""PyTorch multilayer perceptron: the network, prediction, and safe bundle save/load (training is in
`capabilities/ml_training/nets/torch_fit.py`).

Bundles hold the weights as `model.safetensors` (plain tensors, nothing executable) plus
`architecture.json`; loading rebuilds the network from the JSON and checks every tensor's name
and shape against it before use. `torch.load` is never called.

torch is imported inside functions only, so importing this module (the "torch" codec of
`bundles.CODECS` calls it) stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.mlp import MLPClassifierModel, MLPModel, check_architecture
from mcp_server.common.s3_utils import json_bytes, parse_json

FRAMEWORK = "torch"
ARCHITECTURE_FILE = "architecture.json"


def build_module(architecture: dict[str, Any]) -> Any:
    """nn.Sequential of Linear+ReLU(+Dropout) blocks and a final Linear (logits or one value)."""
    from torch import nn

    layers: list[nn.Module] = []
    width_in = architecture["input_dim"]
    dropout = float(architecture.get("dropout") or 0.0)
    for width in architecture["hidden_layers"]:
        layers += [nn.Linear(width_in, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, architecture["output_dim"]))
    return nn.Sequential(*layers)


class TorchMLP(MLPModel):
    """A trained torch MLP (regression, and base of the classifier)."""

    framework = FRAMEWORK

    def __init__(self, module: Any, architecture: dict[str, Any], **info: Any) -> None:
        super().__init__(architecture, **info)
        self.module = module.eval()

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


class TorchMLPClassifier(TorchMLP, MLPClassifierModel):
    """A trained torch MLP classifier: also `predict_proba`."""


def wrap(module: Any, architecture: dict[str, Any], **info: Any) -> TorchMLP:
    cls = TorchMLPClassifier if architecture["task_type"] == "classification" else TorchMLP
    return cls(module, architecture, **info)


# ---------------------------------------------------------------------------- bundle family
def save_torch_model(model: Any, path: Path, metadata: dict[str, Any]) -> dict[str, bytes]:
    """Write the weights to `path` (safetensors); return `architecture.json` for the bundle."""
    from safetensors.torch import save_file

    if not isinstance(model, TorchMLP):
        raise InvalidInputError(f"expected a TorchMLP from fit_torch_mlp, got {type(model).__name__}")
    tensors = {k: v.detach().contiguous() for k, v in model.module.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})
    return {ARCHITECTURE_FILE: json_bytes(model.architecture)}


def load_torch_model(path: Path, metadata: dict[str, Any], extra_files: dict[str, bytes]) -> TorchMLP:
    """Rebuild the network from architecture.json and load the safetensors weights into it."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if ARCHITECTURE_FILE not in extra_files:
        raise BadFormatError(f"the torch bundle has no {ARCHITECTURE_FILE}", field="model_s3_uri")
    arch = check_architecture(parse_json(extra_files[ARCHITECTURE_FILE], ARCHITECTURE_FILE), FRAMEWORK)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise BadFormatError(f"cannot read the torch weights: {exc}", field="model_s3_uri") from exc
    # Built on the meta device: the expected names and shapes cost no memory, and a forged
    # architecture cannot make us allocate a huge network before the check.
    with torch.device("meta"):
        skeleton = build_module(arch)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found or any(t.dtype != torch.float32 for t in tensors.values()):
        raise BadFormatError(
            "the torch weights do not match architecture.json (tensor names, shapes or dtypes differ)",
            field="model_s3_uri",
        )
    skeleton.load_state_dict(tensors, strict=True, assign=True)
    return wrap(skeleton, arch)
