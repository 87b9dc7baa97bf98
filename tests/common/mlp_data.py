"""Small data sets and bundle-forging helpers shared by the torch and Keras MLP tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def breast_cancer_split() -> Split:
    """Breast cancer, standardised on the training part (the networks get preprocessed input)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va


def diabetes_split() -> Split:
    """Diabetes with its raw targets (~25..346): the networks must cope with the target scale."""
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_diabetes(return_X_y=True)
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.25, random_state=2)
    scaler = StandardScaler().fit(x_tr)
    return scaler.transform(x_tr), scaler.transform(x_va), y_tr, y_va


def noise_split(seed: int = 0) -> Split:
    """Random labels: a big network overfits at once, so validation loss soon rises."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(160, 20))
    y = rng.integers(0, 2, size=160)
    return x[:100], x[100:], y[:100], y[100:]


def forge_artifact(bundle_dir: Path, name: str, data: bytes) -> None:
    """Replace a bundle file AND its recorded sha256: an attacker with write access to storage."""
    (bundle_dir / name).write_bytes(data)
    meta_path = bundle_dir / "metadata.json"
    metadata = json.loads(meta_path.read_text())
    metadata["artifacts"][name] = hashlib.sha256(data).hexdigest()
    meta_path.write_text(json.dumps(metadata))


def bundle_files(bundle_dir: Path) -> set[str]:
    return {p.name for p in bundle_dir.iterdir()}
