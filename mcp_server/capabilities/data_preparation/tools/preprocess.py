"""preprocess_supervised / preprocess_unsupervised: fit a scikit-learn preprocessing pipeline,
save it (skops), and write the processed data as Parquet with lineage metadata.

The pipeline is a `ColumnTransformer` of standard scikit-learn steps (plus the dtype coercions in
`mcp_server.common.transformers`): numeric columns are imputed and optionally standardised,
text/categorical columns are imputed with the mode and one-hot or ordinal encoded. Because the
same fitted object is saved, training, evaluation and prediction apply exactly the same steps;
unseen categories and missing values at apply time are handled rather than fatal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import (
    PreprocessingConfig,
    PreprocessOutput,
    PreprocessSupervisedInput,
    PreprocessSupervisedOutput,
    PreprocessUnsupervisedInput,
)
from mcp_server.capabilities.data_preparation.tools.common import MIME, check_data_output, output_location, stem
from mcp_server.common.bundles import save_skops
from mcp_server.common.datasets import read_frame, require_columns
from mcp_server.common.exceptions import BadFormatError, InvalidInputError
from mcp_server.common.s3_utils import Location, data_format_of

_IMPUTE = {"drop": "mean", "mean": "mean", "median": "median", "mode": "most_frequent"}
_MANY_CATEGORIES = 50
_MANY_CLASSES = 100


@dataclass
class _Fitted:
    """What fitting produced, before anything is written."""

    pipeline: Any
    processed: pd.DataFrame
    feature_names: list[str]
    raw_features: list[str]
    numeric: list[str]
    categorical: list[str]
    excluded: dict[str, str]
    dropped: dict[str, int]
    warnings: list[str] = field(default_factory=list)


def preprocess_supervised(ctx: ToolContext, params: PreprocessSupervisedInput) -> ToolOutput:
    loc, frame = read_frame(ctx.storage, params.dataset_s3_uri, "dataset_s3_uri", params.file_format)
    target = params.target_column
    require_columns(frame, [target], "target_column")
    require_columns(frame, params.keep_columns, "keep_columns")
    if params.feature_columns:
        require_columns(frame, params.feature_columns, "feature_columns")
        if target in params.feature_columns:
            raise InvalidInputError(
                f"the target {target!r} is also listed as a feature", field="feature_columns", hint="Remove it."
            )
    features = params.feature_columns or [c for c in frame.columns if c != target and c not in params.keep_columns]
    missing_target = frame[target].isna()
    frame = frame.loc[~missing_target]
    dropped = {"missing_target": int(missing_target.sum())}
    passthrough = [c for c in params.keep_columns if c != target] + [target]
    out_loc, pipe_loc = _locations(ctx, params, loc, "processed.parquet")
    fitted = _fit(frame, features, passthrough, params.preprocessing_config, dropped)
    class_counts = _check_target(fitted.processed[target], params.task_type, fitted.warnings)
    lineage_extra = {"target_column": target, "task_type": params.task_type}
    _write(ctx, out_loc, pipe_loc, loc, fitted, lineage_extra, "preprocess_supervised")
    data = PreprocessSupervisedOutput(
        **_common_output(loc, out_loc, pipe_loc, fitted, params.preprocessing_config),
        target_column=target,
        task_type=params.task_type,
        class_counts=class_counts,
    )
    return _result(data, out_loc, pipe_loc)


def preprocess_unsupervised(ctx: ToolContext, params: PreprocessUnsupervisedInput) -> ToolOutput:
    loc, frame = read_frame(ctx.storage, params.dataset_s3_uri, "dataset_s3_uri", params.file_format)
    require_columns(frame, params.keep_columns, "keep_columns")
    if params.columns:
        require_columns(frame, params.columns, "columns")
    features = params.columns or [c for c in frame.columns if c not in params.keep_columns]
    out_loc, pipe_loc = _locations(ctx, params, loc, "unsupervised.parquet")
    fitted = _fit(frame, features, list(params.keep_columns), params.preprocessing_config, {})
    lineage_extra = {"target_column": None, "task_type": None}
    _write(ctx, out_loc, pipe_loc, loc, fitted, lineage_extra, "preprocess_unsupervised")
    data = PreprocessOutput(**_common_output(loc, out_loc, pipe_loc, fitted, params.preprocessing_config))
    return _result(data, out_loc, pipe_loc)


# ---------------------------------------------------------------------------- fitting
def _split_columns(
    frame: pd.DataFrame, features: list[str], config: PreprocessingConfig
) -> tuple[list[str], list[str], dict[str, str]]:
    numeric: list[str] = []
    categorical: list[str] = []
    excluded: dict[str, str] = {}
    for column in features:
        dtype = frame[column].dtype
        if frame[column].isna().all():
            excluded[column] = "has no values"
        elif pd.api.types.is_datetime64_any_dtype(dtype) or isinstance(dtype, pd.PeriodDtype):
            excluded[column] = "is a date/time; extract parts with feature_engineering (datetime) first"
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            numeric.append(column)
        elif config.encoding is None:
            excluded[column] = "is categorical and encode_categorical is false"
        else:
            categorical.append(column)
    return numeric, categorical, excluded


def build_pipeline(numeric: list[str], categorical: list[str], config: PreprocessingConfig) -> Any:
    """The unfitted ColumnTransformer for these columns and settings."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler

    from mcp_server.common.transformers import as_number, as_text

    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        steps: list[tuple[str, Any]] = [
            ("to_number", FunctionTransformer(as_number, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy=_IMPUTE[config.handle_missing])),
        ]
        if config.normalize:
            steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(steps), numeric))
    if categorical:
        encoder: Any = (
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            if config.encoding == "onehot"
            else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        )
        steps = [
            ("to_text", FunctionTransformer(as_text, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("encode", encoder),
        ]
        parts.append(("cat", Pipeline(steps), categorical))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)


def _fit(
    frame: pd.DataFrame,
    features: list[str],
    passthrough: list[str],
    config: PreprocessingConfig,
    dropped: dict[str, int],
) -> _Fitted:
    numeric, categorical, excluded = _split_columns(frame, features, config)
    raw = numeric + categorical
    if not raw:
        reasons = "; ".join(f"{c} {why}" for c, why in excluded.items()) or "no columns were given"
        raise InvalidInputError(f"no usable feature columns: {reasons}", field="dataset_s3_uri")
    warnings = [f"{c} left out: {why}" for c, why in excluded.items()]
    if config.handle_missing == "drop":
        gaps = frame[raw].isna().any(axis=1)
        frame = frame.loc[~gaps]
        dropped["missing_values"] = int(gaps.sum())
    if frame.empty:
        raise InvalidInputError(
            f"no rows left to fit on (dropped: {dropped})",
            field="preprocessing_config",
            hint="Use handle_missing mean, median or mode instead of drop.",
        )
    for column in categorical:
        distinct = int(frame[column].nunique())
        if config.encoding == "onehot" and distinct > _MANY_CATEGORIES:
            warnings.append(f"{column} has {distinct} categories; one-hot makes a column for each")
        if distinct == len(frame) > 20:
            warnings.append(f"{column} is unique on every row and looks like an identifier")

    pipeline = build_pipeline(numeric, categorical, config)
    try:
        matrix = np.asarray(pipeline.fit_transform(frame[raw]), dtype=float)
    except (ValueError, TypeError) as exc:
        raise BadFormatError(f"cannot fit the preprocessing: {exc}", field="dataset_s3_uri") from None
    try:
        names = [str(n) for n in pipeline.get_feature_names_out()]
    except ValueError:  # clean names collide (a column `a_b` and category `b` of `a`): keep prefixes
        pipeline.verbose_feature_names_out = True
        names = [str(n) for n in pipeline.get_feature_names_out()]
    clashes = sorted(set(names) & set(passthrough))
    if clashes:
        raise InvalidInputError(
            f"processed feature names {clashes} clash with kept columns", field="keep_columns", hint="Rename them."
        )
    processed = pd.DataFrame(matrix, columns=names)
    for column in passthrough:
        processed[column] = frame[column].reset_index(drop=True)
    return _Fitted(pipeline, processed, names, raw, numeric, categorical, excluded, dropped, warnings)


def _check_target(target: pd.Series, task_type: str, warnings: list[str]) -> dict[str, int] | None:
    name = target.name
    if task_type == "regression":
        if not pd.api.types.is_numeric_dtype(target.dtype) or pd.api.types.is_bool_dtype(target.dtype):
            raise InvalidInputError(
                f"regression needs a numeric target; {name!r} is {target.dtype}",
                field="task_type",
                hint="Use task_type classification for labels.",
            )
        return None
    if pd.api.types.is_float_dtype(target.dtype) and bool(((target % 1) != 0).any()):
        raise InvalidInputError(
            f"{name!r} holds fractional numbers, which look like a regression target",
            field="task_type",
            hint="Use task_type regression, or bin the target first.",
        )
    counts = target.value_counts(sort=False).sort_index()
    if len(counts) < 2:
        raise InvalidInputError(
            f"classification needs at least 2 classes; {name!r} has {len(counts)}", field="target_column"
        )
    if len(counts) > _MANY_CLASSES:
        warnings.append(f"{name} has {len(counts)} classes; is this a regression target?")
    rare = [_label(k) for k, v in counts.items() if v < 2]
    if rare:
        warnings.append(f"classes with a single row cannot be stratified: {rare[:10]}")
    return {_label(k): int(v) for k, v in counts.items()}


def _label(value: Any) -> str:
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------------------- writing
def _locations(
    ctx: ToolContext,
    params: PreprocessSupervisedInput | PreprocessUnsupervisedInput,
    source: Location,
    default_suffix: str,
) -> tuple[Location, Location]:
    """Where the processed data and the pipeline go, checked before any work is done."""
    out_loc = output_location(ctx, params.output_s3_uri, source, default_suffix)
    if data_format_of(out_loc, None, "output_s3_uri") != "parquet":
        raise InvalidInputError(
            "the processed data must be Parquet (it carries the lineage metadata)",
            field="output_s3_uri",
            hint="Use a .parquet name; convert later with save_processed_data.",
        )
    if params.pipeline_output_s3_uri:
        pipe_loc = ctx.storage.resolve(params.pipeline_output_s3_uri, "pipeline_output_s3_uri")
        if pipe_loc.suffix != ".skops":
            raise InvalidInputError("the pipeline URI must end with .skops", field="pipeline_output_s3_uri")
        check_data_output(ctx, pipe_loc, source, "pipeline_output_s3_uri")
    else:
        base = stem(out_loc).removesuffix(".processed")  # raw/x.processed.parquet -> raw/x.pipeline.skops
        pipe_loc = ctx.storage.sibling(out_loc, f"{base}.pipeline.skops")
        check_data_output(ctx, pipe_loc, source, "output_s3_uri")
    return out_loc, pipe_loc


def _write(
    ctx: ToolContext,
    out_loc: Location,
    pipe_loc: Location,
    source: Location,
    fitted: _Fitted,
    lineage_extra: dict[str, Any],
    tool: str,
) -> None:
    lineage = {
        "pipeline_s3_uri": pipe_loc.uri,
        **lineage_extra,
        "raw_feature_columns": fitted.raw_features,
        "feature_names": fitted.feature_names,
        "source_s3_uri": source.uri,
        "created_by": tool,
    }
    with ctx.storage.scratch("mlops-pipeline-") as tmp:
        path = tmp / pipe_loc.name
        save_skops(fitted.pipeline, path)
        ctx.check_cancelled()
        # The pipeline goes first: the processed file's lineage points at it.
        ctx.storage.upload_file(path, pipe_loc, MIME["skops"])
    ctx.storage.write_dataframe(fitted.processed, out_loc, "parquet", lineage=lineage)


def _common_output(
    source: Location, out_loc: Location, pipe_loc: Location, fitted: _Fitted, config: PreprocessingConfig
) -> dict[str, Any]:
    return {
        "output_s3_uri": out_loc.uri,
        "pipeline_s3_uri": pipe_loc.uri,
        "source_s3_uri": source.uri,
        "n_rows": len(fitted.processed),
        "n_features": len(fitted.feature_names),
        "feature_names": fitted.feature_names,
        "raw_feature_columns": fitted.raw_features,
        "numeric_columns": fitted.numeric,
        "categorical_columns": fitted.categorical,
        "excluded_columns": fitted.excluded,
        "dropped_rows": sum(fitted.dropped.values()),
        "dropped_by_reason": fitted.dropped,
        "preprocessing_config": config.model_dump(),
        "warnings": fitted.warnings,
    }


def _result(data: PreprocessOutput, out_loc: Location, pipe_loc: Location) -> ToolOutput:
    return ToolOutput(
        data=data,
        artifacts=[
            Artifact(out_loc.uri, out_loc.name, MIME["parquet"], "processed data (Parquet, with lineage)"),
            Artifact(pipe_loc.uri, pipe_loc.name, MIME["skops"], "fitted preprocessing pipeline (skops)"),
        ],
        summary=(
            f"Processed {data.n_rows} rows into {data.n_features} features at {out_loc.uri} "
            f"(pipeline: {pipe_loc.uri}; dropped {data.dropped_rows} rows)"
        ),
    )
