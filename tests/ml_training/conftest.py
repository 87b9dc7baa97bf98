"""Datasets scikit-learn ships, written once per test into the router's storage."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from mcp_server.router import ToolRouter


@cache
def frames() -> dict[str, pd.DataFrame]:
    from sklearn import datasets

    out = {}
    for name, loader in (
        ("breast_cancer", datasets.load_breast_cancer),
        ("wine", datasets.load_wine),
        ("iris", datasets.load_iris),
        ("diabetes", datasets.load_diabetes),
    ):
        out[name] = loader(as_frame=True).frame
    digits = datasets.load_digits(as_frame=True).frame
    out["digits"] = digits.sample(600, random_state=0).reset_index(drop=True)
    x, y = datasets.make_blobs(n_samples=300, centers=3, cluster_std=0.5, random_state=1)
    out["blobs"] = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "label": y})
    rng = np.random.default_rng(0)
    big = rng.normal(size=(3000, 8))
    out["big"] = pd.DataFrame(big, columns=[f"f{i}" for i in range(8)]).assign(
        target=(big[:, 0] + big[:, 1] > 0).astype(int)
    )
    return out


@pytest.fixture
def data(router: ToolRouter) -> dict[str, str]:
    """name -> storage key of a Parquet copy (breast_cancer, wine, iris, diabetes, digits, blobs, big)."""
    storage = router.storage
    uris = {}
    for name, frame in frames().items():
        key = f"data/{name}.parquet"
        storage.write_dataframe(frame, storage.resolve(key))
        uris[name] = key
    return uris
