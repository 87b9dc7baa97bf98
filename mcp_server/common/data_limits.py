"""`MLOPS_MAX_DATASET_MB` applied to what data expands to, not only to what it occupies in storage.

A 38 KB `.csv.gz` can hold millions of rows, and a small zstd/dictionary-encoded Parquet file
more. The stored size is checked by `S3Utils.local_file`; these helpers bound the loaded size:
Parquet from its footer before a byte of data is decoded, CSV and JSON lines while streaming (a
chunk at a time, stopping at the limit), a JSON document by its decompressed text, and every
frame by its in-memory size at the end.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcp_server.common.exceptions import DatasetTooLargeError

if TYPE_CHECKING:
    import pandas as pd

_FIRST_CHUNK_ROWS = 1_000  # then as many rows as make about _CHUNK_CELLS values (wide files: fewer)
_CHUNK_CELLS = 2_000_000
# Smallest in-memory width of one value per Parquet physical type (pandas holds at least this).
_PARQUET_WIDTH = {"BOOLEAN": 1, "INT32": 4, "FLOAT": 4, "INT64": 8, "DOUBLE": 8, "INT96": 8}
_POINTER = 8  # strings and other byte arrays: at least an object reference each


def too_large(uri: str, field: str, limit: int, size: int, what: str) -> DatasetTooLargeError:
    return DatasetTooLargeError(
        f"{uri} expands to about {_mb(size)} when loaded ({what}), over the MLOPS_MAX_DATASET_MB limit of {_mb(limit)}",
        field=field,
        hint="Use a smaller dataset or fewer columns, or raise MLOPS_MAX_DATASET_MB.",
    )


def _mb(size: int) -> str:
    return f"{size / 1024**2:.1f} MB" if size < 10 * 1024**2 else f"{size // 1024**2} MB"


def check_parquet(path: Path, columns: list[str] | None, limit: int, uri: str, field: str) -> None:
    """Estimate a Parquet file's loaded size from its footer (rows x column widths, and the
    uncompressed page sizes) and refuse it before reading when that is over `limit`."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    wanted = set(columns) if columns else None
    width = 0
    count = 0
    for i in range(meta.num_columns):
        column = meta.schema.column(i)
        if wanted is not None and column.path.split(".")[0] not in wanted:
            continue
        width += _PARQUET_WIDTH.get(column.physical_type, _POINTER)
        count += 1
    uncompressed = sum(meta.row_group(g).total_byte_size for g in range(meta.num_row_groups))
    estimate = max(meta.num_rows * width, uncompressed if wanted is None else 0)
    if estimate > limit:
        raise too_large(uri, field, limit, estimate, f"{meta.num_rows} rows x {count} columns")


def read_csv(path: Path, sep: str, columns: list[str] | None, limit: int, uri: str, field: str) -> pd.DataFrame:
    import pandas as pd

    with pd.read_csv(path, sep=sep, usecols=columns, chunksize=_FIRST_CHUNK_ROWS) as reader:

        def chunks() -> Any:
            rows = _FIRST_CHUNK_ROWS
            while True:
                try:
                    chunk = reader.get_chunk(rows)
                except StopIteration:
                    return
                yield chunk
                rows = max(_FIRST_CHUNK_ROWS, _CHUNK_CELLS // max(1, chunk.shape[1]))

        return _gather(chunks(), limit, uri, field)


def read_json_lines(path: Path, limit: int, uri: str, field: str) -> pd.DataFrame:
    import pandas as pd

    with pd.read_json(path, lines=True, chunksize=_FIRST_CHUNK_ROWS) as reader:
        return _gather(reader, limit, uri, field)


def check_text(path: Path, limit: int, uri: str, field: str) -> None:
    """A JSON document is parsed whole: refuse it when its decompressed text is over `limit`."""
    from pandas.io.common import get_handle

    seen = 0
    with get_handle(path, "rb", compression="infer") as handles:
        handle: Any = handles.handle
        while chunk := handle.read(1024 * 1024):
            seen += len(chunk)
            if seen > limit:
                raise too_large(uri, field, limit, seen, "decompressed text")


def check_frame(frame: pd.DataFrame, limit: int, uri: str, field: str) -> pd.DataFrame:
    size = int(frame.memory_usage(deep=True, index=False).sum())
    if size > limit:
        raise too_large(uri, field, limit, size, f"{len(frame)} rows x {frame.shape[1]} columns")
    return frame


def _gather(chunks: Any, limit: int, uri: str, field: str) -> pd.DataFrame:
    import pandas as pd

    parts = []
    size = 0
    rows = 0
    for chunk in chunks:
        parts.append(chunk)
        rows += len(chunk)
        size += int(chunk.memory_usage(deep=True, index=False).sum())
        if size > limit:  # stop reading here: the rest is never decompressed
            raise too_large(uri, field, limit, size, f"over {rows} rows x {chunk.shape[1]} columns so far")
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
