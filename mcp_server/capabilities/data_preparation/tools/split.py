"""split_dataset: reproducible train/validation/test split, optionally stratified.

Rows are shuffled once with `random_state`; each class (or the whole dataset, unstratified) is
cut by largest remainder, so every part holds each class within one row of its exact share
(a class too small for that still gets one row in every part, or the split is refused).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import SplitDatasetInput, SplitDatasetOutput
from mcp_server.capabilities.data_preparation.tools.common import MIME, check_data_output, stem
from mcp_server.common.datasets import read_frame, require_columns
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.s3_utils import Location

PARTS = ("train", "validation", "test")
_DEFAULT_RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}
_TOLERANCE = 1e-6


def split_dataset(ctx: ToolContext, params: SplitDatasetInput) -> ToolOutput:
    ratios = resolve_ratios(params.train_ratio, params.validation_ratio, params.test_ratio)
    loc, frame = read_frame(ctx.storage, params.dataset_s3_uri, "dataset_s3_uri", params.file_format)
    lineage = ctx.storage.read_lineage(loc)
    locations = _locations(ctx, params.output_prefix, loc, ratios)
    parts = [p for p in PARTS if ratios[p] > 0]
    if params.stratify_column:
        if not params.shuffle:
            raise InvalidInputError(
                "a stratified split needs shuffling", field="shuffle", hint="Set shuffle true or drop stratify_column."
            )
        require_columns(frame, [params.stratify_column], "stratify_column")
        labels = frame[params.stratify_column]
        if labels.isna().any():
            raise InvalidInputError(
                f"{params.stratify_column!r} has {int(labels.isna().sum())} missing values",
                field="stratify_column",
                hint="Drop or fill those rows first (preprocess_supervised drops rows without a target).",
            )
    else:
        labels = pd.Series(0, index=frame.index)

    n = len(frame)
    positions = np.random.default_rng(params.random_state).permutation(n) if params.shuffle else np.arange(n)
    assignment = _assign(labels.to_numpy(), positions, [ratios[p] for p in parts], params.stratify_column)
    # Each part keeps the shuffled order, so classes stay interleaved rather than grouped.
    pieces = {part: frame.iloc[positions[assignment[positions] == i]] for i, part in enumerate(parts)}

    ctx.check_cancelled()
    for part, piece in pieces.items():
        split_lineage = {
            **lineage,
            "split": {"part": part, "of": loc.uri, "ratios": ratios, "seed": params.random_state},
        }
        ctx.storage.write_dataframe(piece.reset_index(drop=True), locations[part], "parquet", lineage=split_lineage)

    class_counts = None
    if params.stratify_column:
        class_counts = {
            part: {str(k): int(v) for k, v in piece[params.stratify_column].value_counts().sort_index().items()}
            for part, piece in pieces.items()
        }
    data = SplitDatasetOutput(
        train_s3_uri=locations["train"].uri,
        validation_s3_uri=locations["validation"].uri if "validation" in pieces else None,
        test_s3_uri=locations["test"].uri if "test" in pieces else None,
        train_rows=len(pieces["train"]),
        validation_rows=len(pieces.get("validation", ())),
        test_rows=len(pieces.get("test", ())),
        ratios=ratios,
        class_counts=class_counts,
    )
    counts = ", ".join(f"{p} {len(piece)}" for p, piece in pieces.items())
    return ToolOutput(
        data=data,
        artifacts=[Artifact(locations[p].uri, locations[p].name, MIME["parquet"], f"{p} split") for p in pieces],
        summary=f"Split {len(frame)} rows of {loc.uri}: {counts}",
    )


def resolve_ratios(train: float | None, validation: float | None, test: float | None) -> dict[str, float]:
    """Given ratios as they are; missing ones share the remainder in proportion to the defaults."""
    given = {"train": train, "validation": validation, "test": test}
    fixed = {k: v for k, v in given.items() if v is not None}
    rest = 1.0 - sum(fixed.values())
    if rest < -_TOLERANCE:
        raise InvalidInputError(
            f"the ratios add up to {sum(fixed.values()):.4g}, more than 1",
            field="train_ratio",
            hint="Make them sum to 1.",
        )
    open_keys = [k for k in given if given[k] is None]
    if open_keys:
        weight = sum(_DEFAULT_RATIOS[k] for k in open_keys)
        fixed.update({k: max(rest, 0.0) * _DEFAULT_RATIOS[k] / weight for k in open_keys})
    elif abs(rest) > _TOLERANCE:
        raise InvalidInputError(
            f"train_ratio + validation_ratio + test_ratio = {1 - rest:.4g}, not 1",
            field="train_ratio",
            hint="Make the three ratios sum to 1 (validation and test may be 0).",
        )
    if fixed["train"] <= 0:
        raise InvalidInputError("train_ratio must be above 0", field="train_ratio")
    if fixed["train"] >= 1:
        raise InvalidInputError(
            "nothing is left for validation or test", field="train_ratio", hint="Use a train_ratio below 1."
        )
    return {k: round(fixed[k], 10) for k in PARTS}


def _assign(labels: np.ndarray, positions: np.ndarray, ratios: list[float], column: str | None) -> np.ndarray:
    """For each row, the index of the part it goes to; each class is cut in `positions` order."""
    assignment = np.empty(len(labels), dtype=int)
    keys = np.asarray([str(v) for v in labels[positions]]) if column else np.full(len(positions), "")
    for name in map(str, np.unique(keys)):
        rows = positions[keys == name]
        sizes = _sizes(len(rows), ratios)
        if min(sizes) < 1:
            raise InvalidInputError(
                f"class {name!r} of {column!r} has {len(rows)} row(s); each of the {len(ratios)} parts needs one"
                if column
                else f"the dataset has {len(rows)} row(s); each of the {len(ratios)} parts needs one",
                field="stratify_column" if column else "dataset_s3_uri",
                hint="Use fewer parts (validation_ratio 0), merge rare classes, or split without stratify_column"
                if column
                else "Use a larger dataset or fewer parts",
            )
        assignment[rows] = np.repeat(np.arange(len(ratios)), sizes)
    return assignment


def _sizes(n: int, ratios: list[float]) -> list[int]:
    """Largest-remainder rounding of `n * ratios`, then at least one row per part where possible."""
    exact = [n * r for r in ratios]
    sizes = [math.floor(x) for x in exact]
    for i in sorted(range(len(ratios)), key=lambda i: exact[i] - sizes[i], reverse=True)[: n - sum(sizes)]:
        sizes[i] += 1
    for i in range(len(sizes)):
        if sizes[i] == 0 and n >= len(sizes):
            donor = max(range(len(sizes)), key=lambda j: sizes[j])
            sizes[donor] -= 1
            sizes[i] += 1
    return sizes


def _locations(ctx: ToolContext, prefix: str | None, source: Location, ratios: dict[str, float]) -> dict[str, Location]:
    locations = {}
    for part in PARTS:
        if ratios[part] <= 0:
            continue
        if prefix:
            loc = ctx.storage.join(ctx.storage.resolve(prefix, "output_prefix"), f"{part}.parquet")
        else:
            loc = ctx.storage.sibling(source, f"{stem(source)}.{part}.parquet")
        check_data_output(ctx, loc, source, "output_prefix")
        locations[part] = loc
    return locations
