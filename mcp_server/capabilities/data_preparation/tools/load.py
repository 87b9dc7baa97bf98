"""load_dataset: read a tabular file and describe it."""

from __future__ import annotations

import json

from mcp_server.capabilities.base import ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import LoadDatasetInput, LoadDatasetOutput
from mcp_server.common.datasets import read_frame

# Per-column listings beyond this would make one answer megabytes long (a 10,001-column CSV):
# the first columns are listed, `columns` still counts them all.
MAX_LISTED_COLUMNS = 200


def load_dataset(ctx: ToolContext, params: LoadDatasetInput) -> ToolOutput:
    loc, frame = read_frame(ctx.storage, params.s3_uri, "s3_uri", params.file_format)
    listed = frame.iloc[:, :MAX_LISTED_COLUMNS]
    # to_json handles NaN, timestamps and numpy scalars; the preview must be plain JSON.
    preview = json.loads(listed.head(params.preview_rows).to_json(orient="records", date_format="iso"))
    truncated = frame.shape[1] > MAX_LISTED_COLUMNS
    data = LoadDatasetOutput(
        s3_uri=loc.uri,
        rows=len(frame),
        columns=frame.shape[1],
        column_names=[str(c) for c in listed.columns],
        dtypes={str(c): str(t) for c, t in listed.dtypes.items()},
        missing_values={str(c): int(n) for c, n in listed.isna().sum().items()},
        preview=preview,
        memory_bytes=int(frame.memory_usage(deep=False).sum()),
        columns_truncated=truncated,
    )
    more = f" (the first {MAX_LISTED_COLUMNS} columns are listed; the rest are in the file)" if truncated else ""
    return ToolOutput(data=data, summary=f"Loaded {data.rows} rows x {data.columns} columns from {loc.uri}{more}")
