from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mcp_server.common.s3_utils import sha256_bytes
from mcp_server.router import ToolRouter
from tests.helpers import call, call_error


def labelled(n_a: int = 60, n_b: int = 30, n_c: int = 10) -> pd.DataFrame:
    labels = ["a"] * n_a + ["b"] * n_b + ["c"] * n_c
    return pd.DataFrame({"row": np.arange(len(labels)), "x": np.linspace(0, 1, len(labels)), "y": labels})


def read(router: ToolRouter, uri: str) -> pd.DataFrame:
    return router.storage.read_dataframe(router.storage.resolve(uri))


async def test_split_keeps_class_ratio(any_router: ToolRouter) -> None:
    frame = labelled()
    any_router.storage.write_dataframe(frame, any_router.storage.resolve("d/data.csv"))
    out = await call(any_router, "split_dataset", dataset_s3_uri="d/data.csv", stratify_column="y", random_state=7)
    assert out["train_s3_uri"].endswith("d/data.train.parquet")
    assert out["validation_s3_uri"].endswith("d/data.validation.parquet")
    assert out["test_s3_uri"].endswith("d/data.test.parquet")
    parts = {p: read(any_router, out[f"{p}_s3_uri"]) for p in ("train", "validation", "test")}
    ratios = {"train": 0.7, "validation": 0.15, "test": 0.15}
    totals = frame["y"].value_counts()
    for part, piece in parts.items():
        counts = piece["y"].value_counts()
        for label, total in totals.items():
            assert abs(counts.get(label, 0) - total * ratios[part]) <= 1, (part, label)
        assert out[f"{part}_rows"] == len(piece)
    together = pd.concat(parts.values())
    assert sorted(together["row"]) == list(range(len(frame)))  # every row once, none lost or repeated
    assert out["class_counts"]["train"] == {
        k: int(v) for k, v in parts["train"]["y"].value_counts().sort_index().items()
    }
    # Shuffled, and classes interleaved rather than grouped.
    assert parts["train"]["row"].tolist() != sorted(parts["train"]["row"])
    assert parts["train"]["y"].iloc[:20].nunique() > 1


async def test_split_same_call_gives_identical_files(any_router: ToolRouter) -> None:
    storage = any_router.storage
    storage.write_dataframe(labelled(), storage.resolve("d/data.parquet"))
    args = {"dataset_s3_uri": "d/data.parquet", "stratify_column": "y", "random_state": 3}
    first = await call(any_router, "split_dataset", **args)
    hashes = [sha256_bytes(storage.read_bytes(storage.resolve(first[f"{p}_s3_uri"]))) for p in ("train", "test")]
    second = await call(any_router, "split_dataset", **args)
    again = [sha256_bytes(storage.read_bytes(storage.resolve(second[f"{p}_s3_uri"]))) for p in ("train", "test")]
    assert hashes == again
    other = await call(any_router, "split_dataset", **{**args, "random_state": 4}, output_prefix="other")
    assert (
        read(any_router, other["train_s3_uri"])["row"].tolist()
        != read(any_router, first["train_s3_uri"])["row"].tolist()
    )


async def test_split_without_validation_writes_no_validation_file(router: ToolRouter) -> None:
    router.storage.write_dataframe(labelled(), router.storage.resolve("d/data.csv"))
    out = await call(router, "split_dataset", dataset_s3_uri="d/data.csv", train_ratio=0.8, test_ratio=0.2)
    assert out["validation_s3_uri"] is None and out["validation_rows"] == 0
    assert (out["train_rows"], out["test_rows"]) == (80, 20)
    assert out["ratios"] == {"train": 0.8, "validation": 0.0, "test": 0.2}
    names = [loc.name for loc in router.storage.list_objects(router.storage.resolve("d"))]
    assert "data.validation.parquet" not in names and "data.train.parquet" in names


async def test_split_unspecified_ratios_share_the_rest(router: ToolRouter) -> None:
    router.storage.write_dataframe(labelled(), router.storage.resolve("d/data.csv"))
    out = await call(router, "split_dataset", dataset_s3_uri="d/data.csv", test_ratio=0.2, output_prefix="p")
    assert out["ratios"]["test"] == 0.2
    assert out["ratios"]["train"] == pytest.approx(0.8 * 0.7 / 0.85)
    assert out["train_s3_uri"].endswith("/p/train.parquet")
    assert out["train_rows"] + out["validation_rows"] + out["test_rows"] == 100


async def test_split_without_shuffle_keeps_row_order(router: ToolRouter) -> None:
    router.storage.write_dataframe(labelled(), router.storage.resolve("d/data.csv"))
    out = await call(router, "split_dataset", dataset_s3_uri="d/data.csv", shuffle=False)
    assert read(router, out["train_s3_uri"])["row"].tolist() == list(range(70))
    assert read(router, out["test_s3_uri"])["row"].tolist() == list(range(85, 100))


async def test_split_preserves_lineage(any_router: ToolRouter) -> None:
    storage = any_router.storage
    lineage = {"pipeline_s3_uri": "s3://b/p.skops", "target_column": "y", "feature_names": ["x"]}
    storage.write_dataframe(labelled(), storage.resolve("d/proc.parquet"), lineage=lineage)
    out = await call(any_router, "split_dataset", dataset_s3_uri="d/proc.parquet", stratify_column="y")
    for part in ("train", "validation", "test"):
        got = storage.read_lineage(storage.resolve(out[f"{part}_s3_uri"]))
        assert {k: got[k] for k in lineage} == lineage
        assert got["split"]["part"] == part


@pytest.mark.parametrize(
    ("ratios", "expected"),
    [
        ({"train_ratio": 0.6, "validation_ratio": 0.15, "test_ratio": 0.15}, "= 0.9, not 1"),
        ({"train_ratio": 0.9, "test_ratio": 0.3}, "more than 1"),
        ({"train_ratio": -0.1}, "train_ratio"),
        ({"test_ratio": 1.0}, "test_ratio"),
        ({"train_ratio": 0.0, "validation_ratio": 0.5, "test_ratio": 0.5}, "train_ratio must be above 0"),
    ],
)
async def test_split_refuses_wrong_ratios(router: ToolRouter, ratios: dict[str, float], expected: str) -> None:
    router.storage.write_dataframe(labelled(), router.storage.resolve("d/data.csv"))
    text = await call_error(router, "split_dataset", dataset_s3_uri="d/data.csv", **ratios)
    assert expected in text


async def test_split_refuses_class_with_too_few_rows(router: ToolRouter) -> None:
    router.storage.write_dataframe(labelled(n_c=2), router.storage.resolve("d/rare.csv"))
    text = await call_error(router, "split_dataset", dataset_s3_uri="d/rare.csv", stratify_column="y")
    assert "stratify_column" in text and "class 'c'" in text and "2 row(s)" in text
    assert router.storage.list_objects(router.storage.resolve("d")) == [router.storage.resolve("d/rare.csv")]
    # Two parts are enough for two rows.
    out = await call(router, "split_dataset", dataset_s3_uri="d/rare.csv", stratify_column="y", validation_ratio=0)
    assert out["class_counts"]["test"]["c"] == 1


async def test_split_names_missing_stratify_column(router: ToolRouter) -> None:
    router.storage.write_dataframe(labelled(), router.storage.resolve("d/data.csv"))
    text = await call_error(router, "split_dataset", dataset_s3_uri="d/data.csv", stratify_column="label")
    assert "stratify_column" in text and "'label'" in text and "['row', 'x', 'y']" in text


async def test_split_refuses_missing_labels_when_stratifying(router: ToolRouter) -> None:
    frame = labelled()
    frame.loc[3, "y"] = None
    router.storage.write_dataframe(frame, router.storage.resolve("d/gap.csv"))
    text = await call_error(router, "split_dataset", dataset_s3_uri="d/gap.csv", stratify_column="y")
    assert "1 missing values" in text
