"""Every object key of the default storage location (the bucket, or the local root), for MCP
`resources/list` and completions. Bounded: a listing stops after `limit` keys."""

from __future__ import annotations

import os

from mcp_server.common.s3_utils import S3Utils

# Server-internal scratch and bookkeeping: never listed as resources.
HIDDEN_PREFIXES = (".mlops-tmp/", ".locks/", "jobs/", "github/deliveries/", "pipelines/keys/")
MAX_KEYS = 10_000


def list_keys(storage: S3Utils, prefix: str = "", limit: int = MAX_KEYS) -> list[str]:
    """Sorted keys under `prefix` (relative to the bucket or root), hidden prefixes left out."""
    keys: list[str] = []
    bucket = storage.config.s3_bucket
    if bucket:
        paginator = storage.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if not _hidden(item["Key"]):
                    keys.append(item["Key"])
                if len(keys) >= limit:
                    return keys
        return keys
    root = storage.root
    start = root / prefix.rsplit("/", 1)[0] if "/" in prefix else root  # walk only the prefix's folder
    for directory, dirs, files in os.walk(start):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_dir = os.path.relpath(directory, root)
        for name in sorted(files):
            if name.startswith("."):
                continue
            key = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            if key.startswith(prefix) and not _hidden(key):
                keys.append(key)
                if len(keys) >= limit:
                    return sorted(keys)
    return sorted(keys)


def is_hidden(key: str) -> bool:
    """Server-internal: never listed or read as a resource."""
    return _hidden(key.lstrip("/"))


def _hidden(key: str) -> bool:
    return key.startswith(HIDDEN_PREFIXES) or any(part.startswith(".") for part in key.split("/"))


DATA_SUFFIXES = (".csv", ".parquet", ".csv.gz")
_NOT_DATA = ("registry/", "pipelines/")


def is_dataset_key(key: str) -> bool:
    """Tabular data a tool can read: CSV and Parquet anywhere, JSON under datasets/ (other JSON is
    metadata, evaluations or records)."""
    if key.startswith(_NOT_DATA) or "/evaluations/" in key:
        return False
    return key.endswith(DATA_SUFFIXES) or (key.startswith("datasets/") and key.endswith(".json"))


def dataset_keys(storage: S3Utils, prefix: str = "") -> list[str]:
    folder = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    return [k for k in list_keys(storage, folder) if k.startswith(prefix) and is_dataset_key(k)]
