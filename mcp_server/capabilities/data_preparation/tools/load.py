"""load_dataset: read a tabular file and describe it."""

from __future__ import annotations

import json

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import LoadDatasetInput, LoadDatasetOutput


def load_dataset(ctx: ToolContext, params: LoadDatasetInput) -> ToolOutput:
    loc = ctx.storage.resolve(params.s3_uri, "s3_uri")
    frame = ctx.storage.read_dataframe(loc, params.file_format, "s3_uri")
    # to_json handles NaN, timestamps and numpy scalars; the preview must be plain JSON.
    preview = json.loads(frame.head(params.preview_rows).to_json(orient="records", date_format="iso"))
    data = LoadDatasetOutput(
        s3_uri=loc.uri,
        rows=len(frame),
        columns=frame.shape[1],
        column_names=[str(c) for c in frame.columns],
        dtypes={str(c): str(t) for c, t in frame.dtypes.items()},
        missing_values={str(c): int(n) for c, n in frame.isna().sum().items()},
        preview=preview,
        memory_bytes=int(frame.memory_usage(deep=False).sum()),
    )
    return ToolOutput(data=data, summary=f"Loaded {data.rows} rows x {data.columns} columns from {loc.uri}")
