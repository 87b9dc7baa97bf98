"""save_processed_data: copy or convert a dataset to another location and format."""

from __future__ import annotations

from mcp_server.capabilities.base import Artifact, ToolContext, ToolOutput
from mcp_server.capabilities.data_preparation.schemas import SaveProcessedDataInput, SaveProcessedDataOutput
from mcp_server.capabilities.data_preparation.tools.common import MIME, check_data_output
from mcp_server.common.datasets import read_frame
from mcp_server.common.s3_utils import data_format_of


def save_processed_data(ctx: ToolContext, params: SaveProcessedDataInput) -> ToolOutput:
    out_loc = ctx.storage.resolve(params.output_s3_uri, "output_s3_uri")
    fmt = data_format_of(out_loc, params.file_format, "output_s3_uri")
    loc, frame = read_frame(ctx.storage, params.data_s3_uri, "data_s3_uri", params.input_format)
    check_data_output(ctx, out_loc, loc, "output_s3_uri")
    # Lineage only survives in Parquet; other formats are exports for people and other tools.
    lineage = ctx.storage.read_lineage(loc) if fmt == "parquet" else {}
    ctx.check_cancelled()
    digest = ctx.storage.write_dataframe(frame, out_loc, fmt, lineage=lineage or None)
    data = SaveProcessedDataOutput(
        output_s3_uri=out_loc.uri,
        rows=len(frame),
        columns=frame.shape[1],
        file_format=fmt,
        sha256=digest,
        lineage_preserved=bool(lineage),
    )
    return ToolOutput(
        data=data,
        artifacts=[Artifact(out_loc.uri, out_loc.name, MIME[fmt], "saved dataset")],
        summary=f"Saved {len(frame)} rows as {fmt} to {out_loc.uri} (sha256 {digest[:12]}...)",
    )
