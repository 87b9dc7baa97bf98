"""Helpers every data_preparation tool uses: reading a frame, naming outputs, checking columns."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from mcp_server.capabilities.base import ToolContext
from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.s3_utils import Location

_DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")
_COMPRESSION = (".gz", ".bz2", ".zip", ".xz", ".zst")
MIME = {
    "csv": "text/csv",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
    "skops": "application/octet-stream",
}


def stem(loc: Location) -> str:
    """The file name without its data extension: `raw/x.csv.gz` -> `x`."""
    name = loc.name
    for suffix in _COMPRESSION:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for suffix in _DATA_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def output_location(
    ctx: ToolContext, given: str | None, source: Location, suffix: str, field: str = "output_s3_uri"
) -> Location:
    """`given`, or `<source stem>.<suffix>` next to the source; never the source itself."""
    loc = ctx.storage.resolve(given, field) if given else ctx.storage.sibling(source, f"{stem(source)}.{suffix}")
    check_data_output(ctx, loc, source, field)
    return loc


def check_data_output(ctx: ToolContext, out: Location, source: Location, field: str) -> None:
    """Every place a data tool writes: not the source, not a server-owned prefix, not a model bundle."""
    if out.uri == source.uri:
        raise InvalidInputError(
            f"{out.uri} is the input itself; refusing to overwrite the source data",
            field=field,
            hint="Choose another output URI.",
        )
    ctx.storage.check_output(out, field, "data")


def json_values(values: Iterable[Any]) -> list[Any]:
    """Plain JSON values (numpy scalars, timestamps and NaN made safe), as `to_json` renders them."""
    rendered = pd.Series(list(values), dtype=object).to_json(orient="split", date_format="iso")
    return list(json.loads(rendered)["data"])
