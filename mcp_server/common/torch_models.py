"""PyTorch multilayer perceptron: training, prediction, and safe bundle save/load.

Bundles hold the weights as `model.safetensors` (plain tensors, nothing executable) plus
`architecture.json`; loading rebuilds the network from the JSON and checks every tensor's name
and shape against it before use. `torch.load` is never called.

torch is imported inside functions only, so importing this module (which registers the "torch"
bundle family) stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcp_server.common import bundles
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.mlp_common import (
    CheckCancelled,
    MLPClassifierModel,
    MLPModel,
    OnEpoch,
    check_architecture,
    prepare_fit,
    run_epochs,
    seeds,
)
from mcp_server.common.s3_utils import json_bytes, parse_json

FRAMEWORK = "torch"
ARCHITECTURE_FILE = "architecture.json"


def _build_module(architecture: dict[str, Any]) -> Any:
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


def _init_weights(module: Any, generator: Any) -> None:
    """PyTorch's default Linear initialisation, drawn from our own generator.

    The global RNG is shared by every thread of the server, so seeding it would not make a fit
    reproducible while another training runs.
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(layer.in_features)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)


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


def _wrap(module: Any, architecture: dict[str, Any], **info: Any) -> TorchMLP:
    cls = TorchMLPClassifier if architecture["task_type"] == "classification" else TorchMLP
    return cls(module, architecture, **info)


def fit_torch_mlp(
    x_train: Any,
    y_train: Any,
    task_type: str,
    *,
    x_val: Any = None,
    y_val: Any = None,
    hidden_layers: Sequence[int] = (64, 32),
    epochs: int = 50,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    random_state: int | None = None,
    n_classes: int | None = None,
    early_stopping_patience: int | None = None,
    on_epoch: OnEpoch | None = None,
    check_cancelled: CheckCancelled | None = None,
    dropout: float = 0.0,
) -> tuple[TorchMLP, list[dict[str, Any]]]:
    """Train an MLP with Adam on shuffled mini-batches; returns (model, per-epoch history).

    Classification: `y` holds class indices 0..n_classes-1, cross-entropy on logits.
    Regression: MSE on internally standardised targets (predictions come back in the original
    units; reported losses are in those units too). The same `random_state` gives identical
    weights and history. `check_cancelled` runs between batches; whatever it raises propagates.
    """
    import torch

    data = prepare_fit(
        FRAMEWORK,
        x_train,
        y_train,
        task_type,
        x_val=x_val,
        y_val=y_val,
        hidden_layers=hidden_layers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        random_state=random_state,
        n_classes=n_classes,
        early_stopping_patience=early_stopping_patience,
        dropout=dropout,
    )
    arch = data.architecture
    init_seed, shuffle_seed, dropout_seed = seeds(data.seed, 3)
    with torch.device("meta"):
        module = _build_module(arch)
    module = module.to_empty(device="cpu")
    _init_weights(module, torch.Generator().manual_seed(init_seed))
    shuffle = torch.Generator().manual_seed(shuffle_seed)
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    classification = task_type == "classification"
    loss_fn = torch.nn.CrossEntropyLoss() if classification else torch.nn.MSELoss()
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    n = x.shape[0]
    step = int(batch_size)

    def train_epoch(epoch: int) -> float:
        module.train()
        order = torch.randperm(n, generator=shuffle)
        total = 0.0
        with torch.enable_grad():
            for start in range(0, n, step):
                if check_cancelled:
                    check_cancelled()
                idx = order[start : start + step]
                optimizer.zero_grad(set_to_none=True)
                out = module(x[idx])
                loss = loss_fn(out if classification else out.squeeze(-1), y[idx])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
        return total / n

    def val_outputs(features: np.ndarray) -> np.ndarray:
        module.eval()
        with torch.inference_mode():
            return module(torch.from_numpy(features)).numpy()

    def get_weights() -> dict[str, Any]:
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    # Dropout draws from torch's global RNG (it takes no generator): fork it so a seeded fit
    # neither depends on nor disturbs what other code did with it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(dropout_seed)
        summary = run_epochs(
            data,
            epochs,
            train_epoch=train_epoch,
            val_outputs=val_outputs,
            get_weights=get_weights,
            set_weights=module.load_state_dict,
            early_stopping_patience=early_stopping_patience,
            on_epoch=on_epoch,
            check_cancelled=check_cancelled,
        )
    model = _wrap(
        module, arch, best_epoch=summary.best_epoch, stopped_early=summary.stopped_early, random_state=data.seed
    )
    return model, summary.history


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
        skeleton = _build_module(arch)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != found or any(t.dtype != torch.float32 for t in tensors.values()):
        raise BadFormatError(
            "the torch weights do not match architecture.json (tensor names, shapes or dtypes differ)",
            field="model_s3_uri",
        )
    skeleton.load_state_dict(tensors, strict=True, assign=True)
    return _wrap(skeleton, arch)


bundles.register_family(FRAMEWORK, save_torch_model, load_torch_model)
