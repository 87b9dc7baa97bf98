"""Reading a table for a tool, the same way in every capability: resolve the URI, read it (within
the size limits of `S3Utils`), name the columns as strings, and check the columns a call names
(with close-name suggestions)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pandas as pd

from mcp_server.common.exceptions import InvalidInputError
from mcp_server.common.s3_utils import Location, S3Utils, sha256_file

# `frame.attrs` key of a frame read by `read_dataset`: the lineage its file carries ({}: none), so
# inference can tell processed data from raw data whose columns have the same names.
LINEAGE_ATTR = "mlops_lineage"


@dataclass
class Dataset:
    """A table read from storage with its fingerprint and the lineage a preprocessing tool left."""

    uri: str
    frame: pd.DataFrame
    fingerprint: str  # sha256 of the stored bytes
    lineage: dict[str, Any]


def read_frame(storage: S3Utils, uri: str, field: str, file_format: str | None = None) -> tuple[Location, pd.DataFrame]:
    """Resolve and read a table; column names become strings so every tool can name them."""
    loc = storage.resolve(uri, field)
    frame = storage.read_dataframe(loc, file_format, field)
    frame.columns = [str(c) for c in frame.columns]
    return loc, frame


def read_dataset(storage: S3Utils, uri: str, field: str) -> Dataset:
    """Read a table that must have rows, with its lineage and content sha256, in one download."""
    loc = storage.resolve_existing(uri, field)
    with storage.local_file(loc) as path, ThreadPoolExecutor(max_workers=1) as pool:
        # hashlib and the Parquet reader both release the GIL: hash while parsing.
        digest = pool.submit(sha256_file, path)
        # A local Location over the downloaded copy lets the storage readers parse it without a
        # second download; its key keeps the original name so the format is still detected.
        local = loc if loc.scheme == "local" else Location("local", loc.key, path=path)
        lineage = storage.read_lineage(local)
        frame = storage.read_dataframe(local, field=field)
        frame.columns = [str(c) for c in frame.columns]
        sha = digest.result()
    if frame.empty:
        raise InvalidInputError(f"{loc.uri} has no rows", field=field, hint="Pass a table with data.")
    frame.attrs[LINEAGE_ATTR] = lineage  # travels with the frame (and its row selections) to inference
    return Dataset(uri=loc.uri, frame=frame, fingerprint=sha, lineage=lineage)


def require_columns(frame: pd.DataFrame, columns: Iterable[str], field: str) -> None:
    """Every name must be a column; the error names the first unknown one and the choices."""
    available = [str(c) for c in frame.columns]
    for column in columns:
        if column not in frame.columns:
            close = difflib.get_close_matches(column, available, n=3)
            maybe = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise InvalidInputError(
                f"column {column!r} is not in the data.{maybe} Available columns: {available[:50]}",
                field=field,
            )
