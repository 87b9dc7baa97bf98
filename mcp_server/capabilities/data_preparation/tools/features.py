"""feature_engineering: derive new columns (polynomial, interaction, log, bins, date parts, one-hot).

Operations run in order on the whole dataset, so a later one may use a column an earlier one
made. Nothing is fitted for reuse: the output is a new dataset, to be preprocessed like raw data.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import (
    BinOp,
    DatetimeOp,
    FeatureEngineeringInput,
    FeatureEngineeringOutput,
    InteractionOp,
    LogOp,
    OneHotOp,
    PolynomialOp,
)
from mcp_server.capabilities.data_preparation.tools.common import MIME, json_values, output_location
from mcp_server.common.datasets import read_frame, require_columns
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.s3_utils import data_format_of

_MAX_NEW_COLUMNS = 1000
# What an operation returns: the new columns (in order) and the columns it removed.
Derived = tuple[dict[str, pd.Series], list[str]]


def feature_engineering(ctx: ToolContext, params: FeatureEngineeringInput) -> ToolOutput:
    loc, frame = read_frame(ctx.storage, params.dataset_s3_uri, "dataset_s3_uri", params.file_format)
    out_loc = output_location(ctx, params.output_s3_uri, loc, "features.parquet")
    fmt = data_format_of(out_loc, None, "output_s3_uri")
    original = list(frame.columns)
    created: list[str] = []
    for index, op in enumerate(params.operations):
        field = f"operations[{index}]"
        new, removed = _OPERATIONS[op.type](frame, op, field)
        clashes = [name for name in new if name in frame.columns and name not in removed]
        if clashes:
            raise InvalidInputError(
                f"{op.type} would create column {clashes[0]!r}, which already exists",
                field=field,
                hint="Rename or drop the existing column first.",
            )
        if len(created) + len(new) > _MAX_NEW_COLUMNS:
            raise InvalidInputError(
                f"the operations would add more than {_MAX_NEW_COLUMNS} columns", field=field, hint="Use fewer."
            )
        frame = pd.concat([frame.drop(columns=removed), pd.DataFrame(new, index=frame.index)], axis=1)
        created = [c for c in created if c not in removed] + list(new)
        ctx.check_cancelled()
    lineage = {"source_s3_uri": loc.uri, "created_by": "feature_engineering", "new_columns": created}
    ctx.storage.write_dataframe(frame, out_loc, fmt, lineage=lineage)
    data = FeatureEngineeringOutput(
        output_s3_uri=out_loc.uri,
        rows=len(frame),
        new_columns=created,
        removed_columns=[c for c in original if c not in frame.columns],
        column_names=list(frame.columns),
    )
    return ToolOutput(
        data=data,
        artifacts=[Artifact(out_loc.uri, out_loc.name, MIME[fmt], "dataset with engineered features")],
        summary=f"Added {len(created)} columns; wrote {len(frame)} rows to {out_loc.uri}",
    )


def _numeric(frame: pd.DataFrame, column: str, field: str) -> pd.Series:
    require_columns(frame, [column], field)
    values = frame[column]
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(float)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        raise InvalidInputError(
            f"column {column!r} is not numeric ({values.dtype})",
            field=field,
            hint="Use one_hot for text columns, or datetime for dates.",
        )
    return values.astype(float)


def _polynomial(frame: pd.DataFrame, op: PolynomialOp, field: str) -> Derived:
    values = {c: _numeric(frame, c, f"{field}.columns") for c in op.columns}
    combine = itertools.combinations if op.interaction_only else itertools.combinations_with_replacement
    new: dict[str, pd.Series] = {}
    for degree in range(2, op.degree + 1):
        for combo in combine(op.columns, degree):
            name = "*".join(c if n == 1 else f"{c}^{n}" for c, n in Counter(combo).items())
            product = values[combo[0]].copy()
            for column in combo[1:]:
                product = product * values[column]
            new[name] = product
            if len(new) > _MAX_NEW_COLUMNS:
                raise InvalidInputError(
                    f"degree {op.degree} on {len(op.columns)} columns makes over {_MAX_NEW_COLUMNS} columns",
                    field=field,
                    hint="Use fewer columns or a lower degree.",
                )
    return new, []


def _interaction(frame: pd.DataFrame, op: InteractionOp, field: str) -> Derived:
    new = {}
    for a, b in op.pairs:
        new[f"{a}*{b}"] = _numeric(frame, a, f"{field}.pairs") * _numeric(frame, b, f"{field}.pairs")
    return new, []


def _log(frame: pd.DataFrame, op: LogOp, field: str) -> Derived:
    new = {}
    for column in op.columns:
        values = _numeric(frame, column, f"{field}.columns")
        bad = values[values < 0] if op.log1p else values[values <= 0]
        if not bad.empty:
            need = ">= 0 for log1p" if op.log1p else "> 0 for log"
            raise InvalidInputError(
                f"column {column!r} has {len(bad)} values not {need} (e.g. {json_values(bad[:3])})",
                field=f"{field}.columns",
                hint="Shift or clip the column first, or use log1p for zeros.",
            )
        new[f"log1p_{column}" if op.log1p else f"log_{column}"] = np.log1p(values) if op.log1p else np.log(values)
    return new, []


def _bin(frame: pd.DataFrame, op: BinOp, field: str) -> Derived:
    values = _numeric(frame, op.column, f"{field}.column")
    if values.notna().sum() < 2:
        raise InvalidInputError(f"column {op.column!r} has fewer than 2 values to bin", field=f"{field}.column")
    if op.strategy == "quantile":
        codes, edges = pd.qcut(values, q=op.bins, labels=False, retbins=True, duplicates="drop")
    else:
        codes, edges = pd.cut(values, bins=op.bins, labels=False, retbins=True)
    made = len(edges) - 1
    if op.labels is not None and made != op.bins:
        raise InvalidInputError(
            f"{op.column!r} has only {made} distinct quantile bins, not {op.bins} (too many repeated values)",
            field=f"{field}.bins",
            hint="Use fewer bins or strategy uniform.",
        )
    binned = pd.Series(codes, index=frame.index).astype("Int64")
    if op.labels is not None:
        labels = np.asarray(op.labels, dtype=object)
        binned = pd.Series([labels[c] if c is not pd.NA else None for c in binned], index=frame.index, dtype=object)
    return {f"{op.column}_bin": binned}, []


def _datetime(frame: pd.DataFrame, op: DatetimeOp, field: str) -> Derived:
    require_columns(frame, [op.column], f"{field}.column")
    values = frame[op.column]
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        if pd.api.types.is_numeric_dtype(values.dtype):
            raise InvalidInputError(
                f"column {op.column!r} holds numbers, not dates", field=f"{field}.column", hint="Use a date column."
            )
        values = _parse_dates(values)
        bad = frame[op.column][values.isna() & frame[op.column].notna()]
        if not bad.empty:
            raise InvalidInputError(
                f"column {op.column!r} has {len(bad)} values that are not dates (e.g. {json_values(bad[:3])})",
                field=f"{field}.column",
                hint="Fix or remove those values; ISO dates like 2024-01-31 10:00 work.",
            )
    parts = values.dt
    attribute = {"dayofweek": "day_of_week"}
    return {f"{op.column}_{p}": getattr(parts, attribute.get(p, p)).astype("Int64") for p in op.parts}, []


def _parse_dates(values: pd.Series) -> pd.Series:
    try:
        return pd.to_datetime(values, errors="coerce", format="mixed")
    except (ValueError, TypeError):  # mixed time zones: compare them in UTC
        return pd.to_datetime(values, errors="coerce", format="mixed", utc=True)


def _one_hot(frame: pd.DataFrame, op: OneHotOp, field: str) -> Derived:
    require_columns(frame, op.columns, f"{field}.columns")
    new: dict[str, pd.Series] = {}
    for column in op.columns:
        distinct = int(frame[column].nunique())
        if distinct > op.max_categories:
            raise InvalidInputError(
                f"column {column!r} has {distinct} distinct values, over max_categories={op.max_categories}",
                field=f"{field}.columns",
                hint="Raise max_categories or bin the column first.",
            )
        dummies = pd.get_dummies(frame[column], prefix=column, prefix_sep="_", dtype="int64")
        new.update({str(name): dummies[name] for name in dummies.columns})
    return new, list(op.columns) if op.drop_original else []


_OPERATIONS: dict[str, Callable[[pd.DataFrame, Any, str], Derived]] = {
    "polynomial": _polynomial,
    "interaction": _interaction,
    "log": _log,
    "bin": _bin,
    "datetime": _datetime,
    "one_hot": _one_hot,
}
