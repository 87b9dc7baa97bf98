"""Training the PyTorch multilayer perceptron (the network and its bundle codec are in
`common/torch_models.py`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mcp_server.capabilities.ml_training.nets.fitting import CheckCancelled, OnEpoch, prepare_fit, run_epochs, seeds
from mcp_server.common.torch_models import FRAMEWORK, TorchMLP, build_module, wrap


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
        module = build_module(arch)
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
    model = wrap(
        module, arch, best_epoch=summary.best_epoch, stopped_early=summary.stopped_early, random_state=data.seed
    )
    return model, summary.history
