"""validate_data: check a dataset against column rules and report every violation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import (
    ColumnRule,
    ValidateDataInput,
    ValidateDataOutput,
    Violation,
)
from mcp_server.capabilities.data_preparation.tools.common import json_values
from mcp_server.common.datasets import read_frame
from mcp_server.common.exceptions import InvalidInputError

_HIGH_MISSING = 0.5  # warned about when no max_missing_ratio is given
_BOOL_TEXT = {"true", "false"}


class _Report:
    """Collects check outcomes: every failure becomes one error, every check is counted."""

    def __init__(self, max_examples: int) -> None:
        self.max_examples = max_examples
        self.errors: list[Violation] = []
        self.warnings: list[Violation] = []
        self.passed = 0

    def check(
        self, offending: pd.Series | None, column: str | None, check: str, message: str, as_rows: bool = False
    ) -> None:
        """`offending`: the values (or rows, with `as_rows`) that break the rule; empty means it holds."""
        if offending is None or offending.empty:
            self.passed += 1
            return
        shown = offending.index[: self.max_examples] if as_rows else offending.iloc[: self.max_examples]
        examples = [int(i) for i in shown] if as_rows else json_values(shown)
        self.errors.append(
            Violation(column=column, check=check, message=message, count=len(offending), examples=examples)
        )

    def fail(self, column: str | None, check: str, message: str, count: int = 1) -> None:
        self.errors.append(Violation(column=column, check=check, message=message, count=count))

    def warn(self, column: str | None, check: str, message: str, count: int = 1, examples: Any = ()) -> None:
        self.warnings.append(Violation(column=column, check=check, message=message, count=count, examples=examples))


def validate_data(ctx: ToolContext, params: ValidateDataInput) -> ToolOutput:
    loc, frame = read_frame(ctx.storage, params.data_s3_uri, "data_s3_uri", params.file_format)
    report = _Report(params.max_examples)
    schema = params.schema_ or {}

    for column in params.required_columns:
        if column in frame.columns:
            report.passed += 1
        else:
            report.fail(column, "required_column", f"required column {column!r} is missing")

    for column, rule in schema.items():
        if column not in frame.columns:
            if rule.required and column not in params.required_columns:
                report.fail(column, "missing_column", f"column {column!r} from the schema is missing")
            continue
        _check_column(report, column, frame[column], rule)

    missing_ratio = frame.isna().mean() if len(frame) else pd.Series(0.0, index=frame.columns)
    for column in frame.columns:
        ratio = float(missing_ratio[column])
        if params.max_missing_ratio is not None:
            offending = frame[column][frame[column].isna()] if ratio > params.max_missing_ratio else None
            report.check(
                offending,
                column,
                "max_missing_ratio",
                f"{ratio:.1%} of {column!r} is missing, over the allowed {params.max_missing_ratio:.1%}",
                as_rows=True,
            )
        elif ratio > _HIGH_MISSING:
            report.warn(
                column, "missing_ratio", f"{ratio:.1%} of {column!r} is missing", int(frame[column].isna().sum())
            )
    _general_warnings(report, frame, schema, params.required_columns)

    checks = {"total": report.passed + len(report.errors), "passed": report.passed, "failed": len(report.errors)}
    data = ValidateDataOutput(
        data_s3_uri=loc.uri,
        is_valid=not report.errors,
        rows=len(frame),
        columns=frame.shape[1],
        errors=report.errors,
        warnings=report.warnings,
        checks=checks,
    )
    verdict = "valid" if data.is_valid else f"INVALID ({len(report.errors)} violations)"
    return ToolOutput(data=data, summary=f"{loc.uri} is {verdict}: {checks['passed']}/{checks['total']} checks passed")


def _check_column(report: _Report, column: str, series: pd.Series, rule: ColumnRule) -> None:
    present = series.dropna()
    if not rule.nullable:
        report.check(
            series[series.isna()], column, "nullable", f"{column!r} has missing values but is not nullable", True
        )
    if rule.dtype is not None:
        offending, expected = _dtype_offenders(series, present, rule.dtype)
        report.check(offending, column, "dtype", f"{column!r} should hold {expected} (it is {series.dtype})")
    for check, bound in (("min", rule.min), ("max", rule.max)):
        if bound is not None:
            _check_bound(report, column, present, rule, check, bound)
    if rule.allowed_values is not None:
        offending = present[~present.isin(rule.allowed_values)]
        report.check(offending, column, "allowed_values", f"{column!r} has values outside {rule.allowed_values}")
    if rule.unique:
        offending = present[present.duplicated(keep="first")]
        report.check(offending, column, "unique", f"{column!r} has repeated values but must be unique")


def _dtype_offenders(series: pd.Series, present: pd.Series, dtype: str) -> tuple[pd.Series, str]:
    """The non-missing values that are not of `dtype`, and how to describe what was expected."""
    is_bool = pd.api.types.is_bool_dtype(series.dtype)
    if dtype in ("int", "float"):
        if is_bool:
            return present, "numbers"
        numbers = pd.to_numeric(present, errors="coerce")
        bad = numbers.isna()
        if dtype == "int":
            bad |= (numbers % 1).fillna(0) != 0
            return present[bad], "whole numbers"
        return present[bad], "numbers"
    if dtype == "string":
        return present[~present.map(lambda v: isinstance(v, str))], "text"
    if dtype == "bool":
        ok = present.map(
            lambda v: (
                isinstance(v, bool | np.bool_)
                or (isinstance(v, int | float | np.number) and v in (0, 1))
                or (isinstance(v, str) and v.strip().lower() in _BOOL_TEXT)
            )
        )
        return present[~ok.astype(bool)], "booleans"
    if dtype == "datetime":
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            return present.iloc[:0], "dates"
        parsed = _to_datetime(present.map(lambda v: v if isinstance(v, str) else None))
        return present[parsed.isna()], "dates"
    # category: any discrete values; fractional floats are continuous measurements, not categories.
    if pd.api.types.is_float_dtype(series.dtype):
        return present[(present % 1) != 0], "discrete values"
    return present.iloc[:0], "discrete values"


def _to_datetime(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", format="mixed", utc=True)


def _check_bound(report: _Report, column: str, present: pd.Series, rule: ColumnRule, check: str, bound: Any) -> None:
    dated = rule.dtype == "datetime" or isinstance(bound, str)
    values: pd.Series | None
    if dated:
        limit = _to_datetime(pd.Series([bound])).iloc[0]
        if pd.isna(limit):
            raise InvalidInputError(
                f"{bound!r} is not a date", field=f"schema.{column}.{check}", hint="Use an ISO date like 2024-01-31."
            )
        values = _to_datetime(present if pd.api.types.is_datetime64_any_dtype(present.dtype) else present.astype(str))
    else:
        limit = float(bound)
        values = pd.to_numeric(present, errors="coerce") if not pd.api.types.is_bool_dtype(present.dtype) else None
    if values is None or (len(present) and values.isna().all()):
        kind = "dates" if dated else "numbers"
        report.fail(column, check, f"{column!r} holds no {kind}; cannot check {check}={bound}", len(present))
        return
    outside = values < limit if check == "min" else values > limit
    word = "below the minimum" if check == "min" else "above the maximum"
    report.check(present[outside.fillna(False)], column, check, f"{column!r} has values {word} {bound}")


def _general_warnings(report: _Report, frame: pd.DataFrame, schema: dict[str, ColumnRule], required: list[str]) -> None:
    if frame.empty:
        report.warn(None, "empty", "the dataset has no rows", 0)
        return
    if schema:
        undescribed = [c for c in frame.columns if c not in schema and c not in required]
        if undescribed:
            report.warn(
                None, "unknown_columns", f"columns not described by the schema: {undescribed[:20]}", len(undescribed)
            )
    for column in frame.columns:
        values = frame[column]
        if values.isna().all():
            report.warn(column, "all_missing", f"{column!r} has no values at all", len(values))
        elif len(values) > 1 and _distinct(values) == 1:
            report.warn(column, "constant", f"{column!r} has a single value", examples=json_values(values.dropna()[:1]))
    try:
        duplicates = int(frame.duplicated().sum())
    except TypeError:  # nested JSON values (lists, dicts) cannot be compared row by row
        duplicates = 0
    if duplicates:
        report.warn(None, "duplicate_rows", f"{duplicates} rows repeat an earlier row", duplicates)


def _distinct(values: pd.Series) -> int:
    try:
        return int(values.nunique(dropna=True))
    except TypeError:
        return int(values.dropna().astype(str).nunique())
